"""Motion-text folders (HumanML3D / KIT-ML layout) as `datasets.DatasetDict`s.

Layout (both datasets, and any custom mocap folder in the same shape):

    <root>/new_joints/<id>.npy     float (T, J, 3) joint positions (or <id>.bvh: a BVH file, whose rig
                                   gives the skeleton unless one is named, and whose frame rate is used)
    <root>/texts/<id>.txt          caption#tokens#from#to, one annotation per line
    <root>/train.txt val.txt test.txt   one id per line

Each row is one (motion, caption set): captions tagged `0.0#0.0` (or NaN) describe the whole motion,
captions with a `from#to` window (seconds) describe a sub-clip, which becomes a row of its own with
id `<id>#<from>#<to>`. Mirrored `M` ids are ordinary rows. Listed ids without files, files that cannot
be read (empty, damaged, a `.npz` archive, a malformed BVH: counted by `MotionFileError.reason`), motions
with NaN/inf, wrong joint counts and clips outside the length limits are skipped and counted in the log,
with one example file per reason. When every motion of a split has the wrong joint count, the error says
which count the files have and which `--skeleton` fits them.

Motions are resampled to 20 fps by linear interpolation. The reference code instead repeats frames
to bring KIT-ML from 12.5 fps to 20 fps (blocks of 12 frames become 20, so motions play 12.5/12 times
faster with duplicated poses); `kit_repeat_frames=True` reproduces that for its checkpoints.
"""

import logging
import math
import os

import datasets
import numpy as np

from motionpatches.processors.bvh import load_bvh
from motionpatches.processors.feature_extraction_motionpatches import (
    repeat_frames_to_fps,
    resample_frame_rate,
)
from motionpatches.processors.motion_files import MotionFileError, check_fps
from motionpatches.processors.motion_readers import read_motion_file
from motionpatches.processors.rig_chains import skeleton_from_bvh
from motionpatches.processors.skeletons import resolve_skeleton, skeleton_hint

from .common import SPLIT_FILES, TARGET_FPS, describe_examples, describe_skipped, read_split_ids

logger = logging.getLogger(__name__)


def motion_features(num_joints: int) -> datasets.Features:
    return datasets.Features(
        {
            "id": datasets.Value("string"),
            "captions": datasets.List(datasets.Value("string")),
            "motion": datasets.Array3D(shape=(None, num_joints, 3), dtype="float32"),
        }
    )


def parse_annotation_line(line: str) -> tuple[str, float, float] | None:
    """(caption, from, to) of `caption#tokens#from#to`; NaN times mean 0 (the whole motion)."""
    parts = line.strip().split("#")
    if not parts or not parts[0].strip():
        return None
    caption = parts[0].strip()
    start = end = 0.0
    if len(parts) >= 4:
        try:
            start, end = float(parts[2]), float(parts[3])
        except ValueError:
            start = end = 0.0
    start = 0.0 if math.isnan(start) else start
    end = 0.0 if math.isnan(end) else end
    return caption, start, end


def index_split(root: str, split_file: str) -> tuple[list[dict], dict[str, int]]:
    """One entry per (motion file, caption window), plus counts of listed ids that could not be used."""
    ids = read_split_ids(split_file)
    entries, skipped = [], {"no motion file": 0, "no text file": 0, "no captions": 0}
    for motion_id in ids:
        motion_path = _motion_path(root, motion_id)
        text_path = os.path.join(root, "texts", f"{motion_id}.txt")
        if motion_path is None:
            skipped["no motion file"] += 1
            continue
        if not os.path.isfile(text_path):
            skipped["no text file"] += 1
            continue
        windows: dict[tuple[float, float], list[str]] = {}
        with open(text_path, encoding="utf-8") as f:
            for line in f:
                parsed = parse_annotation_line(line)
                if parsed is not None:
                    caption, start, end = parsed
                    key = (0.0, 0.0) if start == end == 0.0 else (start, end)
                    windows.setdefault(key, []).append(caption)
        if not windows:
            skipped["no captions"] += 1
            continue
        # the file's modification time makes datasets' cache notice a changed motion
        mtime = os.path.getmtime(motion_path)
        for (start, end), captions in windows.items():
            row_id = motion_id if end == 0.0 else f"{motion_id}#{start:g}#{end:g}"
            entries.append(
                {"id": row_id, "path": motion_path, "start": start, "end": end, "captions": captions, "mtime": mtime}
            )
    return entries, skipped


# .npz is looked for so that such a file is reported as unsupported rather than as missing
MOTION_SUFFIXES = (".npy", ".bvh", ".npz")


def _motion_path(root: str, motion_id: str) -> str | None:
    candidates = (os.path.join(root, "new_joints", motion_id + suffix) for suffix in MOTION_SUFFIXES)
    return next((path for path in candidates if os.path.isfile(path)), None)


def _index_generator(entries):
    yield from entries


def _load_batch(batch, num_joints, source_fps, min_frames, max_frames, repeat_frames):
    columns = {"motion": [], "skip_reason": [], "skip_detail": [], "found_joints": []}
    resample = repeat_frames_to_fps if repeat_frames else resample_frame_rate
    for path, start, end in zip(batch["path"], batch["start"], batch["end"]):
        clip, fps, reason, detail, found = _load_row(path, start, end, num_joints, source_fps, min_frames, max_frames)
        motion = np.zeros((0, num_joints, 3), dtype=np.float32) if reason else resample(clip, fps, TARGET_FPS)
        columns["motion"].append(motion)
        columns["skip_reason"].append(reason)
        columns["skip_detail"].append(detail)
        columns["found_joints"].append(found)
    return columns


def _load_row(path, start, end, num_joints, source_fps, min_frames, max_frames):
    """(clip, fps, "", "", joints) for a usable row, else (None, None, reason, a message naming the file, joints
    found or -1): the joint count lets an all-skipped split say which skeleton its files have."""
    try:
        values, fps, _ = read_motion_file(path)
    except MotionFileError as err:  # also a missing file (deleted since indexing)
        return None, None, err.reason, str(err), -1
    found = values.shape[1] if values.ndim == 3 and values.shape[2] == 3 else -1
    if found != num_joints:
        return None, None, "wrong shape", f"{path} has shape {values.shape}, expected (frames, {num_joints}, 3)", found
    fps = source_fps if fps is None else fps
    clip = values[int(start * fps) : int(end * fps)] if end > 0.0 else values
    if not np.isfinite(clip).all():
        return None, None, "NaN or inf", f"{path} holds NaN or inf", found
    if len(clip) < max(min_frames, 1):
        return None, None, "too short", f"{path}: {len(clip)} frames, fewer than min_frames={min_frames}", found
    if max_frames is not None and len(clip) > max_frames:
        return None, None, "too long", f"{path}: {len(clip)} frames, more than max_frames={max_frames}", found
    return clip.astype(np.float32), fps, "", "", found


def _skip_examples(loaded) -> dict[str, str]:
    """The first message of each skip reason, so the log names a file to look at."""
    examples = {}
    for reason, detail in zip(loaded["skip_reason"], loaded["skip_detail"]):
        if reason:
            examples.setdefault(reason, detail)
    return examples


def _all_skipped_error(split: str, skipped: dict, examples: dict, loaded, skeleton) -> ValueError:
    counts = ", ".join(f"{reason}: {n}" for reason, n in skipped.items() if n)
    message = f"{split}: every motion was skipped ({counts}){describe_examples(examples)}"
    found = sorted({n for n in loaded["found_joints"] if n >= 0 and n != skeleton.num_joints})
    if set(examples) == {"wrong shape"} and len(found) == 1:
        message += (
            f". The files have {found[0]} joints, skeleton {skeleton.name!r} expects {skeleton.num_joints}: "
            f"{skeleton_hint(found[0])}"
        )
    return ValueError(message)


def folder_skeleton(root: str, skeleton=None):
    """`skeleton` resolved; when None, the rig of the folder's first readable BVH file, else HumanML3D's SMPL-22."""
    if skeleton is not None:
        return resolve_skeleton(skeleton)
    folder = os.path.join(root, "new_joints")
    bvh_files = sorted(n for n in os.listdir(folder) if n.lower().endswith(".bvh")) if os.path.isdir(folder) else []
    errors = []
    for name in bvh_files:
        try:
            return skeleton_from_bvh(load_bvh(os.path.join(folder, name)))
        except MotionFileError as err:  # skipped and counted with the split; another file gives the rig
            errors.append(err)
    if errors:
        raise errors[0].with_context(f"{root}: no readable BVH file to take the rig from (pass --skeleton)")
    return resolve_skeleton("humanml3d")


def load_motion_folder(
    root: str,
    skeleton=None,
    fps: float | None = None,
    min_frames: int = 1,
    max_frames: int | None = None,
    kit_repeat_frames: bool = False,
    num_proc: int | None = None,
    cache_dir: str | None = None,
) -> datasets.DatasetDict:
    """A `DatasetDict` (train / validation / test, those whose split file exists) from a motion folder.

    skeleton: preset name, JSON skeleton file or `Skeleton` (default: see `folder_skeleton`); fps: the files' frame rate (default: the skeleton's,
    else 20); min_frames / max_frames: length limits in source frames; kit_repeat_frames: the reference's
    frame-repeating upsampling instead of interpolation.
    """
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"dataset folder not found: {root}")
    skeleton = folder_skeleton(root, skeleton)
    source_fps = check_fps(fps, "fps", root) if fps is not None else float(skeleton.fps or TARGET_FPS)
    features = motion_features(skeleton.num_joints)
    splits = {}
    for split, filename in SPLIT_FILES.items():
        split_file = os.path.join(root, filename)
        if not os.path.isfile(split_file):
            if split == "train":
                raise FileNotFoundError(f"{root} has no {filename}: a motion folder needs at least a train split")
            logger.warning(f"{root}: no {filename}, so no {split} split")
            continue
        entries, skipped = index_split(root, split_file)
        if not entries:
            raise ValueError(
                f"{split_file}: none of its ids has both new_joints/<id>.npy and texts/<id>.txt ({skipped})"
            )
        index = datasets.Dataset.from_generator(
            _index_generator, gen_kwargs={"entries": entries}, cache_dir=cache_dir, keep_in_memory=False
        )
        loaded = index.map(
            _load_batch,
            batched=True,
            batch_size=64,
            num_proc=num_proc,
            fn_kwargs={
                "num_joints": skeleton.num_joints,
                "source_fps": source_fps,
                "min_frames": min_frames,
                "max_frames": max_frames,
                "repeat_frames": kit_repeat_frames,
            },
            features=datasets.Features(
                {
                    **index.features,
                    "motion": features["motion"],
                    "skip_reason": datasets.Value("string"),
                    "skip_detail": datasets.Value("string"),
                    "found_joints": datasets.Value("int32"),
                }
            ),
            desc=f"loading {split} motions",
        )
        reasons = loaded["skip_reason"]
        for reason in sorted(set(reasons) - {""}):
            skipped[reason] = reasons.count(reason)
        examples = _skip_examples(loaded)
        kept = loaded.filter(lambda r: [x == "" for x in r], input_columns="skip_reason", batched=True)
        if len(kept) == 0:
            raise _all_skipped_error(split, skipped, examples, loaded, skeleton)
        splits[split] = kept.select_columns(list(features)).cast(features)
        summary = f"{describe_skipped(skipped)}{describe_examples(examples)}"
        logger.warning(f"{split}: {len(kept)} rows from {root}{summary}")
    return datasets.DatasetDict(splits)

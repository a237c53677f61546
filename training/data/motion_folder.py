"""Motion-text folders (HumanML3D / KIT-ML layout) as `datasets.DatasetDict`s.

Layout (both datasets, and any custom mocap folder in the same shape):

    <root>/new_joints/<id>.npy     float (T, J, 3) joint positions (or <id>.bvh: a BVH file, whose rig
                                   gives the skeleton unless one is named, and whose frame rate is used)
    <root>/texts/<id>.txt          caption#tokens#from#to, one annotation per line
    <root>/train.txt val.txt test.txt   one id per line

Each row is one (motion, caption set): captions tagged `0.0#0.0` (or NaN) describe the whole motion,
captions with a `from#to` window (seconds) describe a sub-clip, which becomes a row of its own with
id `<id>#<from>#<to>`. Mirrored `M` ids are ordinary rows. Listed ids without files, motions with
NaN/inf, wrong joint counts and clips outside the length limits are skipped and counted in the log.

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
from motionpatches.processors.feature_extraction_motionpatches import repeat_frames_to_fps, resample_frame_rate
from motionpatches.processors.rig_chains import skeleton_from_bvh
from motionpatches.processors.skeletons import resolve_skeleton

from .common import SPLIT_FILES, TARGET_FPS, describe_skipped, read_split_ids

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
        motion_path = os.path.join(root, "new_joints", f"{motion_id}.npy")
        if not os.path.isfile(motion_path):
            motion_path = motion_path[: -len(".npy")] + ".bvh"
        text_path = os.path.join(root, "texts", f"{motion_id}.txt")
        if not os.path.isfile(motion_path):
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


def _index_generator(entries):
    yield from entries


def _load_batch(batch, num_joints, source_fps, min_frames, max_frames, repeat_frames):
    motions, reasons = [], []
    for path, start, end in zip(batch["path"], batch["start"], batch["end"]):
        motion, reason = np.zeros((0, num_joints, 3), dtype=np.float32), ""
        fps = source_fps
        try:
            if path.endswith(".bvh"):
                bvh = load_bvh(path)
                array, fps = bvh.positions, bvh.fps
            else:
                array = np.load(path, allow_pickle=False)
        except (ValueError, OSError):
            array, reason = None, "unreadable file"
        if array is not None:
            if array.ndim != 3 or array.shape[1:] != (num_joints, 3):
                reason = "wrong shape"
            else:
                if end > 0.0:
                    array = array[int(start * fps) : int(end * fps)]
                if not np.isfinite(array).all():
                    reason = "NaN or inf"
                elif len(array) < max(min_frames, 1):
                    reason = "too short"
                elif max_frames is not None and len(array) > max_frames:
                    reason = "too long"
                else:
                    array = array.astype(np.float32)
                    if repeat_frames:
                        motion = repeat_frames_to_fps(array, fps, TARGET_FPS)
                    else:
                        motion = resample_frame_rate(array, fps, TARGET_FPS)
        motions.append(motion)
        reasons.append(reason)
    return {"motion": motions, "skip_reason": reasons}


def folder_skeleton(root: str, skeleton=None):
    """`skeleton` resolved; when None, the rig of the folder's first BVH file, else HumanML3D's SMPL-22."""
    if skeleton is not None:
        return resolve_skeleton(skeleton)
    folder = os.path.join(root, "new_joints")
    bvh_files = sorted(n for n in os.listdir(folder) if n.lower().endswith(".bvh")) if os.path.isdir(folder) else []
    if bvh_files:
        return skeleton_from_bvh(load_bvh(os.path.join(folder, bvh_files[0])))
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
    source_fps = float(fps or skeleton.fps or TARGET_FPS)
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
                {**index.features, "motion": features["motion"], "skip_reason": datasets.Value("string")}
            ),
            desc=f"loading {split} motions",
        )
        reasons = loaded["skip_reason"]
        for reason in sorted(set(reasons) - {""}):
            skipped[reason] = reasons.count(reason)
        kept = loaded.filter(lambda r: [x == "" for x in r], input_columns="skip_reason", batched=True)
        if len(kept) == 0:
            raise ValueError(f"{split}: every motion was skipped ({skipped})")
        splits[split] = kept.select_columns(list(features)).cast(features)
        logger.warning(f"{split}: {len(kept)} rows from {root}{describe_skipped(skipped)}")
    return datasets.DatasetDict(splits)

"""Motion-text folders (HumanML3D / KIT-ML layout) as `datasets.DatasetDict`s.

Layout (both datasets, and any custom mocap folder in the same shape):

    <root>/new_joints/<id>.npy     float (T, J, 3) joint positions (or <id>.bvh: a BVH file, whose rig
                                   gives the skeleton unless one is named, and whose frame rate is used;
                                   or <id>.npz: AMASS SMPL-H / SMPL-X parameters, read with body models at
                                   their capture rate, in the joints of an smpl24 / smplx skeleton, else
                                   HumanML3D's 22)
    <root>/texts/<id>.txt          caption#tokens#from#to, one annotation per line
    <root>/train.txt val.txt test.txt   one id per line

Each row is one (motion, caption set): captions tagged `0.0#0.0` (or NaN) describe the whole motion,
captions with a `from#to` window (seconds) describe a sub-clip, which becomes a row of its own with
id `<id>#<from>#<to>`. Mirrored `M` ids are ordinary rows. `new_joints/` may mix `.npy`, `.bvh` and
`.npz` files; each is read on its own through `read_motion_file(path, options)`. Listed ids without files,
files that cannot be read (empty, damaged, truncated, a malformed BVH: by `MotionFileError.reason`),
motions with NaN/inf and wrong joint counts are skipped (`on_error="skip"`) and recorded in `skipped` (a
`SkippedFiles`, with path, reason and message), or stop the loading at the first (`on_error="raise"`).
Clips outside the length limits are left out by design, not recorded. The log counts every reason per
split with one example file each; a wrong joint count names the `--skeleton` that fits the files.

Motions are resampled to 20 fps by linear interpolation. The reference code instead repeats frames
to bring KIT-ML from 12.5 fps to 20 fps (blocks of 12 frames become 20, so motions play 12.5/12 times
faster with duplicated poses); `kit_repeat_frames=True` reproduces that for its checkpoints.
"""

import logging
import math
import os

import datasets
import numpy as np

from motionpatches.processors.feature_extraction_motionpatches import (
    repeat_frames_to_fps,
    resample_frame_rate,
)
from motionpatches.processors.motion_files import MotionFileError, check_fps
from motionpatches.processors.motion_readers import MotionFileOptions, file_options_for_skeleton
from motionpatches.processors.skeletons import resolve_skeleton
from motionpatches.skipped import SkippedFiles, bvh_rig, check_finite, check_on_error, read_positions, try_file

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
    """One entry per (motion file, caption window), plus counts of listed ids whose captions cannot be used.
    An id without a motion file gets one entry: reading it fails like any unreadable file, so a missing file
    is skipped and recorded, or raised, as the others are."""
    entries, skipped = [], {"no text file": 0, "no captions": 0}
    for motion_id in read_split_ids(split_file):
        motion_path = _motion_path(root, motion_id)
        text_path = os.path.join(root, "texts", f"{motion_id}.txt")
        if not os.path.isfile(motion_path):
            windows, mtime = {(0.0, 0.0): []}, -1.0
        elif not os.path.isfile(text_path):
            skipped["no text file"] += 1
            continue
        else:
            # the file's modification time makes datasets' cache notice a changed motion
            windows, mtime = _caption_windows(text_path), os.path.getmtime(motion_path)
        if not windows:
            skipped["no captions"] += 1
        for (start, end), captions in windows.items():
            row_id = motion_id if end == 0.0 else f"{motion_id}#{start:g}#{end:g}"
            entries.append(
                {"id": row_id, "path": motion_path, "start": start, "end": end, "captions": captions, "mtime": mtime}
            )
    return entries, skipped


def _caption_windows(text_path: str) -> dict[tuple[float, float], list[str]]:
    """{(from, to): captions}; (0, 0) is the whole motion."""
    windows = {}
    with open(text_path, encoding="utf-8") as f:
        for line in f:
            parsed = parse_annotation_line(line)
            if parsed is not None:
                caption, start, end = parsed
                key = (0.0, 0.0) if start == end == 0.0 else (start, end)
                windows.setdefault(key, []).append(caption)
    return windows


MOTION_SUFFIXES = (".npy", ".bvh", ".npz")
# rows left out by the dataset's length limits: by design, not a file problem
LENGTH_REASONS = ("too short", "too long")


def _motion_path(root: str, motion_id: str) -> str:
    """The id's motion file; the `.npy` name when there is none, which reading then reports as missing."""
    candidates = [os.path.join(root, "new_joints", motion_id + suffix) for suffix in MOTION_SUFFIXES]
    return next((path for path in candidates if os.path.isfile(path)), candidates[0])


def _index_generator(entries):
    yield from entries


def _load_batch(batch, num_joints, source_fps, min_frames, max_frames, repeat_frames, options, on_error, where):
    columns = {"motion": [], "skip_reason": [], "skip_detail": []}
    resample = repeat_frames_to_fps if repeat_frames else resample_frame_rate
    for path, start, end in zip(batch["path"], batch["start"], batch["end"]):
        reading = (path, start, end, num_joints, source_fps, options)
        loaded, error = try_file(path, _read_clip, *reading, on_error=on_error, where=where)
        reason, detail = (
            (error.reason, str(error)) if error else _length_problem(path, loaded[0], min_frames, max_frames)
        )
        motion = np.zeros((0, num_joints, 3), dtype=np.float32) if reason else resample(*loaded, TARGET_FPS)
        columns["motion"].append(motion)
        columns["skip_reason"].append(reason)
        columns["skip_detail"].append(detail)
    return columns


def _read_clip(path, start, end, num_joints, source_fps, options) -> tuple[np.ndarray, float]:
    """(the row's frames, their rate): NaN or inf is looked for in those frames only."""
    motion = read_positions(path, options, num_joints, finite=False)
    fps = source_fps if motion.fps is None else motion.fps
    clip = motion.values[int(start * fps) : int(end * fps)] if end > 0.0 else motion.values
    check_finite(path, clip)
    return clip, fps


def _length_problem(path, clip, min_frames, max_frames) -> tuple[str, str]:
    """(reason, message) when the clip is outside the length limits, else ("", "")."""
    if len(clip) < max(min_frames, 1):
        return "too short", f"{path}: {len(clip)} frames, fewer than min_frames={min_frames}"
    if max_frames is not None and len(clip) > max_frames:
        return "too long", f"{path}: {len(clip)} frames, more than max_frames={max_frames}"
    return "", ""


def _skip_examples(loaded) -> dict[str, str]:
    """The first message of each skip reason, so the log names a file to look at."""
    examples = {}
    for reason, detail in zip(loaded["skip_reason"], loaded["skip_detail"]):
        if reason:
            examples.setdefault(reason, detail)
    return examples


def _record_split(loaded, split_file: str, skipped: SkippedFiles, read: set) -> None:
    """Adds the split's unusable files to `skipped` (named with the split file that lists them) and the others
    to `read` (rows outside the length limits come from files that were read)."""
    for path, reason, detail in zip(loaded["path"], loaded["skip_reason"], loaded["skip_detail"]):
        if reason and reason not in LENGTH_REASONS:
            skipped.add(path, reason, detail, where=split_file)
    read.update(path for path in loaded["path"] if path not in skipped)


def _all_skipped_error(split: str, skipped: dict, examples: dict) -> ValueError:
    counts = ", ".join(f"{reason}: {n}" for reason, n in skipped.items() if n)
    return ValueError(f"{split}: every motion was skipped ({counts}){describe_examples(examples)}")


def folder_skeleton(root: str, skeleton=None, options: MotionFileOptions | None = None):
    """`skeleton` resolved; when None, the rig of the folder's first readable BVH file, else HumanML3D's SMPL-22."""
    if skeleton is not None:
        return resolve_skeleton(skeleton)
    folder = os.path.join(root, "new_joints")
    bvh_files = sorted(n for n in os.listdir(folder) if n.lower().endswith(".bvh")) if os.path.isdir(folder) else []
    errors = []
    for name in bvh_files:
        try:
            return bvh_rig(os.path.join(folder, name), options)
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
    options: MotionFileOptions | None = None,
    on_error: str = "skip",
    skipped: SkippedFiles | None = None,
) -> datasets.DatasetDict:
    """A `DatasetDict` (train / validation / test, those whose split file exists) from a motion folder.

    skeleton: preset name, JSON skeleton file or `Skeleton` (default: see `folder_skeleton`); fps: the files'
    frame rate when they carry none (default: the skeleton's, else 20); min_frames / max_frames: length
    limits in source frames; kit_repeat_frames: the reference's frame-repeating upsampling instead of
    interpolation; options: how motion files are read (a default `smpl_joints` follows an `smpl24` or `smplx`
    skeleton, see `file_options_for_skeleton`); on_error: "skip" unusable files (recorded in
    `skipped` when given) or "raise" at the first.
    """
    root = os.fspath(root)
    check_on_error(on_error)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"dataset folder not found: {root}")
    skeleton = folder_skeleton(root, skeleton, options)
    options = file_options_for_skeleton(options, skeleton)  # .npz files give the skeleton's SMPL joint set
    record, read = SkippedFiles(), set()  # files read in any split count once
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
        entries, counts = index_split(root, split_file)
        if not entries:
            raise ValueError(f"{split_file}: none of its ids has a texts/<id>.txt with captions ({counts})")
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
                "options": options,
                "on_error": on_error,
                "where": split_file,
            },
            features=datasets.Features(
                {
                    **index.features,
                    "motion": features["motion"],
                    "skip_reason": datasets.Value("string"),
                    "skip_detail": datasets.Value("string"),
                }
            ),
            desc=f"loading {split} motions",
        )
        reasons = loaded["skip_reason"]
        for reason in sorted(set(reasons) - {""}):
            counts[reason] = reasons.count(reason)
        examples = _skip_examples(loaded)
        _record_split(loaded, split_file, record, read)
        kept = loaded.filter(lambda r: [x == "" for x in r], input_columns="skip_reason", batched=True)
        if len(kept) == 0:
            raise _all_skipped_error(split, counts, examples)
        splits[split] = kept.select_columns(list(features)).cast(features)
        summary = f"{describe_skipped(counts)}{describe_examples(examples)}"
        logger.warning(f"{split}: {len(kept)} rows from {root}{summary}")
    record.read = len(read)
    if skipped is not None:
        skipped.merge(record)
    return datasets.DatasetDict(splits)

"""Labelled motion clips for zero-shot action classification, as `datasets.Dataset`s.

Every loader returns the columns `id` (string), `motion` (`(T, J, 3)` float32 joint positions at
20 fps, resampled by linear interpolation from the files' rate) and `label` (string).

- `load_label_csv`: your own clips, listed in a CSV (`file,label`, optionally `start,end` in seconds).
- `load_babel`: BABEL's action annotations (Punnakkal et al., CVPR 2021) of AMASS motions.

BABEL annotates AMASS, which stores SMPL body parameters, not joint positions, so the positions must be
computed beforehand (with the SMPL body model, as HumanML3D's scripts do) and saved as one `.npy` per
AMASS file, in the layout of BABEL's `feat_p` with the `.npz` suffix replaced by `.npy`:

    <joints_dir>/CMU/CMU/86/86_05_poses.npy    (T, J, 3) positions at `fps` frames per second

The loader reads whatever joint set those files hold (22 SMPL joints for HumanML3D-trained models).
"""

import csv
import json
import logging
import math
import os
from collections import Counter

import datasets
import numpy as np

from motionpatches.processors.feature_extraction_motionpatches import (
    load_motion,
    resample_frame_rate,
)
from motionpatches.processors.motion_files import MotionFileError, check_fps
from motionpatches.processors.motion_readers import read_motion_file

from .common import TARGET_FPS, describe_skipped

logger = logging.getLogger(__name__)

BABEL_LABEL_KEYS = ("proc_label", "raw_label", "act_cat")


def classification_features(num_joints: int) -> datasets.Features:
    return datasets.Features(
        {
            "id": datasets.Value("string"),
            "motion": datasets.Array3D(shape=(None, num_joints, 3), dtype="float32"),
            "label": datasets.Value("string"),
        }
    )


def frame_index(seconds: float, fps: float) -> int:
    """The frame at `seconds`; the tolerance keeps 0.15 s * 20 fps (= 2.9999...) on frame 3."""
    return int(math.floor(seconds * fps + 1e-6))


def cut_clip(motion: np.ndarray, start: float | None, end: float | None, fps: float) -> np.ndarray:
    """Frames `[start * fps, end * fps)` of `motion`; a missing bound means the motion's start or end."""
    first = 0 if start is None else frame_index(start, fps)
    last = len(motion) if end is None else frame_index(end, fps)
    return motion[first:last]


def _to_dataset(rows: list[dict], num_joints: int) -> datasets.Dataset:
    columns = {name: [row[name] for row in rows] for name in ("id", "motion", "label")}
    return datasets.Dataset.from_dict(columns, features=classification_features(num_joints))


# --------------------------------------------------------------------------------------------- CSV


def load_label_csv(csv_path, motions_dir=None, fps: float = 20.0, num_joints: int | None = None) -> datasets.Dataset:
    """Clips listed in a CSV with header `file,label` and optional `start,end` columns (seconds).

    `file` is a `.npy` of `(T, J, 3)` positions at `fps`, relative to `motions_dir` (default: the CSV's
    folder); an empty `start`/`end` cell means the motion's start/end. The list is the user's own, so a
    missing file or a bad clip stops the loader with the CSV line at fault rather than being skipped.
    num_joints: expected joint count (default: the first file's); every clip must have the same.
    """
    csv_path = os.fspath(csv_path)
    fps = check_fps(fps, "fps", csv_path)
    motions_dir = os.fspath(motions_dir) if motions_dir is not None else os.path.dirname(os.path.abspath(csv_path))
    rows = []
    for line, entry in _read_csv(csv_path):
        where = f"{csv_path}, line {line}"
        start, end = _optional_seconds(entry, "start", where), _optional_seconds(entry, "end", where)
        if start is not None and end is not None and end <= start:
            raise ValueError(f"{where}: end {end} is not after start {start}")
        try:
            motion = load_motion(os.path.join(motions_dir, entry["file"]))
        except MotionFileError as err:
            raise err.with_context(where) from None
        except (OSError, ValueError, TypeError) as err:
            raise type(err)(f"{where}: {err}") from None
        num_joints = num_joints or motion.shape[1]
        if motion.shape[1] != num_joints:
            raise ValueError(f"{where}: {entry['file']} has {motion.shape[1]} joints, expected {num_joints}")
        clip = cut_clip(motion, start, end, fps)
        if len(clip) == 0:
            raise ValueError(
                f"{where}: the clip {start}..{end} s holds no frames of {entry['file']} ({len(motion)} frames at {fps} fps)"
            )
        motion = resample_frame_rate(clip, fps, TARGET_FPS)
        rows.append({"id": _clip_id(entry["file"], start, end), "motion": motion, "label": entry["label"]})
    if not rows:
        raise ValueError(f"{csv_path} lists no clips")
    return _to_dataset(rows, num_joints)


def _read_csv(csv_path: str):
    """(line number, row) pairs with stripped cells, after checking the header."""
    with open(csv_path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f, skipinitialspace=True)
        missing = {"file", "label"} - {name.strip() for name in reader.fieldnames or []}
        if missing:
            raise ValueError(
                f"{csv_path}: header {reader.fieldnames} lacks {sorted(missing)}; expected file,label[,start,end]"
            )
        for entry in reader:
            entry = {key.strip(): (value or "").strip() for key, value in entry.items() if key is not None}
            if not entry["file"] or not entry["label"]:
                raise ValueError(f"{csv_path}, line {reader.line_num}: empty file or label")
            yield reader.line_num, entry


def _clip_id(name: str, start: float | None, end: float | None) -> str:
    """`name` for a whole motion, `name#start#end` (seconds, an open end left empty) for a clip of it."""
    if start is None and end is None:
        return name
    return f"{name}#{start or 0.0:g}#{'' if end is None else format(end, 'g')}"


def _optional_seconds(entry: dict, column: str, where: str) -> float | None:
    value = entry.get(column, "")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        raise ValueError(f"{where}: {column}={value!r} is not a number of seconds") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{where}: {column}={value!r} must be a non-negative number of seconds")
    return seconds


# --------------------------------------------------------------------------------------------- BABEL


def load_babel(
    babel_json,
    joints_dir,
    fps: float,
    num_joints: int | None = None,
    min_seconds: float = 0.5,
    label_key: str = "proc_label",
    use_sequence_labels: bool = False,
) -> datasets.Dataset:
    """One row per BABEL action segment of one split file (`train.json`, `val.json`, ...).

    Segments are the frame-level labels (`frame_ann`, `start_t`..`end_t` seconds); a sequence without
    them -- or every sequence, with `use_sequence_labels` -- gives one row per sequence-level label over
    the whole motion. Row ids are `<babel_sid>#<index of the label in its annotation list>`.
    label_key: `proc_label` (BABEL's normalised label), `raw_label` or `act_cat` (the first action category).
    Joint positions come from `joints_dir` (see the module docstring) at `fps` frames per second.
    Segments shorter than `min_seconds`, without a label, in missing or wrongly shaped files, or holding
    NaN/inf, are skipped; the counts are logged on this module's logger.
    """
    if label_key not in BABEL_LABEL_KEYS:
        raise ValueError(f"label_key={label_key!r}; expected one of {BABEL_LABEL_KEYS}")
    fps = check_fps(fps, "fps", "BABEL joint files")
    with open(babel_json, encoding="utf-8") as f:
        annotations = json.load(f)
    rows, skipped = [], Counter()
    for sid, annotation in annotations.items():
        segments = _babel_segments(annotation, label_key, use_sequence_labels, min_seconds, skipped)
        if not segments:
            continue
        motion, reason = _read_joints(_joints_path(joints_dir, annotation["feat_p"]), num_joints)
        if motion is None:
            skipped[reason] += len(segments)
            continue
        num_joints = motion.shape[1]
        for index, label, start, end in segments:
            clip = cut_clip(motion, start, end, fps)
            if len(clip) == 0:
                skipped["outside the motion"] += 1
            elif not np.isfinite(clip).all():
                skipped["NaN or inf"] += 1
            else:
                motion_20fps = resample_frame_rate(clip, fps, TARGET_FPS)
                rows.append({"id": f"{sid}#{index}", "motion": motion_20fps, "label": label})
    if not rows:
        raise ValueError(f"{babel_json}: no usable segment{describe_skipped(skipped)}")
    logger.warning(f"{babel_json}: {len(rows)} segments{describe_skipped(skipped)}")
    return _to_dataset(rows, num_joints)


def _joints_path(joints_dir, feat_p: str) -> str:
    """BABEL's `feat_p` (an AMASS `.npz`) mapped to its joint-position `.npy` under `joints_dir`."""
    return os.path.join(os.fspath(joints_dir), os.path.splitext(feat_p)[0] + ".npy")


def _babel_segments(annotation: dict, label_key: str, use_sequence_labels: bool, min_seconds: float, skipped: Counter):
    """(index, label, start, end) of a sequence's usable segments, counting those it drops in `skipped`."""
    frame_ann = annotation.get("frame_ann")
    if frame_ann and not use_sequence_labels:
        spans = [(entry, float(entry["start_t"]), float(entry["end_t"])) for entry in frame_ann["labels"]]
    else:
        duration = annotation.get("dur")
        end = None if duration is None else float(duration)
        spans = [(entry, 0.0, end) for entry in (annotation.get("seq_ann") or {}).get("labels", [])]
    segments, seen = [], set()
    for index, (entry, start, end) in enumerate(spans):
        label = _babel_label(entry, label_key)
        if not label:
            skipped["no label"] += 1
        elif end is not None and end - start < min_seconds:
            skipped["too short"] += 1
        elif (label, start, end) in seen:  # e.g. two raw labels of one span sharing an act_cat
            skipped["duplicate"] += 1
        else:
            seen.add((label, start, end))
            segments.append((index, label, start, end))
    return segments


def _babel_label(entry: dict, label_key: str) -> str | None:
    value = entry.get(label_key)
    if label_key == "act_cat":
        value = value[0] if value else None
    return value.strip() if isinstance(value, str) else None


def _read_joints(path: str, num_joints: int | None) -> tuple[np.ndarray | None, str]:
    """(motion, "") or (None, why it cannot be used); NaN is judged per clip, not for the whole file."""
    if not os.path.isfile(path):
        return None, "missing file"
    try:
        motion = read_motion_file(path).values
    except MotionFileError as err:
        return None, err.reason
    if motion.ndim != 3 or motion.shape[2] != 3 or (num_joints is not None and motion.shape[1] != num_joints):
        return None, "wrong shape"
    return motion.astype(np.float32, copy=False), ""

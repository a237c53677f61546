"""Labelled motion clips for zero-shot action classification, as `datasets.Dataset`s.

Every loader returns the columns `id` (string), `motion` (`(T, J, 3)` float32 joint positions at
20 fps, resampled by linear interpolation from the files' rate) and `label` (string).

- `load_label_csv`: your own clips, listed in a CSV (`file,label`, optionally `start,end` in seconds), of
  any motion file `read_motion_file` reads (`.npy`, `.bvh`, `.npz`).
- `load_babel`: BABEL's action annotations (Punnakkal et al., CVPR 2021) of AMASS motions.

BABEL annotates AMASS, which stores SMPL-H / SMPL-X body parameters, not joint positions. `load_babel`
takes them either way:

- straight from the AMASS release, with body models (`file_options.body_model_dir`, see
  `processors/smpl.py`): `feat_p` names the `.npz` under `amass_dir` (or under `joints_dir` when that is
  the AMASS folder), read at its own capture rate and turned into the joint set `file_options.smpl_joints`
  (HumanML3D's 22 by default):

      <amass_dir>/CMU/CMU/86/86_05_poses.npz     (also found as <amass_dir>/CMU/86/86_05_poses.npz)

- or from joint positions computed beforehand (e.g. with HumanML3D's scripts), one `.npy` per AMASS file
  in the layout of `feat_p` with `.npz` replaced by `.npy`, at `fps` frames per second:

      <joints_dir>/CMU/CMU/86/86_05_poses.npy    (T, J, 3) positions

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

from motionpatches.processors.feature_extraction_motionpatches import resample_frame_rate
from motionpatches.processors.motion_files import MotionFile, MotionFileError, check_fps
from motionpatches.processors.motion_readers import DEFAULT_OPTIONS, MotionFileOptions
from motionpatches.skipped import SkippedFiles, check_on_error, read_positions, try_file

from .common import TARGET_FPS, describe_skipped

logger = logging.getLogger(__name__)

BABEL_LABEL_KEYS = ("proc_label", "raw_label", "act_cat")
# problems of the machine, not of one file (every AMASS file would fail alike): raised, not counted
SETUP_REASONS = ("smplx not installed", "no body models", "pickled body model", "bad body model")


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


def load_label_csv(
    csv_path,
    motions_dir=None,
    fps: float = TARGET_FPS,
    num_joints: int | None = None,
    *,
    file_options: MotionFileOptions | None = None,
    on_error: str = "raise",
    skipped: SkippedFiles | None = None,
) -> datasets.Dataset:
    """Clips listed in a CSV with header `file,label` and optional `start,end` columns (seconds).

    `file` is a motion file relative to `motions_dir` (default: the CSV's folder), read with `file_options`
    (`.npy` joint positions or feature rows, `.bvh`, `.npz` SMPL parameters; see `read_motion_file`). A BVH or
    SMPL file is cut at its own frame rate, other files at `fps`. An empty `start`/`end` cell means the
    motion's start/end. num_joints: expected joint count (default: the first file's); every clip must have it.
    on_error: what to do with a file that cannot be used (missing, damaged, NaN/inf, another joint count):
    "raise" (the default, as the list is the user's own: the loader stops, naming the file and its CSV
    line) or "skip" (left out and recorded in `skipped` when given, else logged). Problems of the CSV itself
    (header, empty cells, bad seconds, a clip holding no frames) raise either way.
    """
    csv_path = os.fspath(csv_path)
    fps = check_fps(fps, "fps", csv_path)
    check_on_error(on_error)
    motions_dir = os.fspath(motions_dir) if motions_dir is not None else os.path.dirname(os.path.abspath(csv_path))
    record, read, rows = SkippedFiles(), set(), []
    for line, entry in _read_csv(csv_path):
        where = f"{csv_path}, line {line}"
        start, end = _optional_seconds(entry, "start", where), _optional_seconds(entry, "end", where)
        if start is not None and end is not None and end <= start:
            raise ValueError(f"{where}: end {end} is not after start {start}")
        path = os.path.join(motions_dir, entry["file"])
        motion = record.attempt(path, read_positions, path, file_options, num_joints, on_error=on_error, where=where)
        if motion is None:
            continue
        read.add(path)
        num_joints = motion.values.shape[1]
        clip = _csv_clip(motion.values, start, end, motion.fps or fps, entry["file"], where)
        rows.append({"id": _clip_id(entry["file"], start, end), "motion": clip, "label": entry["label"]})
    record.read = len(read)
    if not rows:
        raise ValueError(
            "\n".join([f"{csv_path}: no clip could be loaded; {record.summary()}", *record.lines()])
            if len(record)
            else f"{csv_path} lists no clips"
        )
    _hand_over(record, skipped, csv_path)
    return _to_dataset(rows, num_joints)


def _csv_clip(motion: np.ndarray, start: float | None, end: float | None, fps: float, name: str, where: str):
    """The clip `start`..`end` of `motion` (at `fps`), at 20 fps."""
    clip = cut_clip(motion, start, end, fps)
    if len(clip) == 0:
        raise ValueError(
            f"{where}: the clip {start}..{end} s holds no frames of {name} ({len(motion)} frames at {fps} fps)"
        )
    return resample_frame_rate(clip, fps, TARGET_FPS)


def _hand_over(record: SkippedFiles, skipped: SkippedFiles | None, source: str) -> None:
    """The files a loader left out go to the caller's record, or to the log when the caller keeps none."""
    if skipped is not None:
        skipped.merge(record)
    elif len(record):
        logger.warning("\n".join([f"{source}: {record.summary()}", *record.lines()]))


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
    joints_dir=None,
    fps: float | None = None,
    num_joints: int | None = None,
    min_seconds: float = 0.5,
    label_key: str = "proc_label",
    use_sequence_labels: bool = False,
    amass_dir=None,
    file_options: MotionFileOptions | None = None,
    on_error: str = "skip",
    skipped: SkippedFiles | None = None,
) -> datasets.Dataset:
    """One row per BABEL action segment of one split file (`train.json`, `val.json`, ...).

    Segments are the frame-level labels (`frame_ann`, `start_t`..`end_t` seconds); a sequence without
    them -- or every sequence, with `use_sequence_labels` -- gives one row per sequence-level label over
    the whole motion. Row ids are `<babel_sid>#<index of the label in its annotation list>`.
    label_key: `proc_label` (BABEL's normalised label), `raw_label` or `act_cat` (the first action category).
    Motions (see the module docstring and `babel_motion_path`): with `file_options.body_model_dir`, the AMASS
    `.npz` files under `amass_dir` (or `joints_dir`) at their capture rate; otherwise, or where no `.npz` is,
    the `.npy` joint files under `joints_dir` at `fps` frames per second.
    Segments shorter than `min_seconds`, without a label, or holding NaN/inf are left out (NaN is judged per
    segment: one bad frame costs only the segments over it). A file that cannot be read (missing, damaged,
    another joint count) is, with `on_error="skip"` (the default), left out with its segments and recorded in
    `skipped` (where: "<babel_json>, sequence <sid>") when given, else logged; `on_error="raise"` stops at
    the first. Counts per reason, in segments, are logged on this module's logger. Missing smplx or body
    models are problems of the machine, not of a file: they stop the loader either way, with the message
    saying what to install or where the models were looked for.
    """
    if label_key not in BABEL_LABEL_KEYS:
        raise ValueError(f"label_key={label_key!r}; expected one of {BABEL_LABEL_KEYS}")
    check_on_error(on_error)
    babel_json = os.fspath(babel_json)
    options = file_options or DEFAULT_OPTIONS
    fps = _check_babel_sources(joints_dir, amass_dir, options, fps)
    with open(babel_json, encoding="utf-8") as f:
        annotations = json.load(f)
    record, read, rows, counts = SkippedFiles(), set(), [], Counter()
    for sid, annotation in annotations.items():
        segments = _babel_segments(annotation, label_key, use_sequence_labels, min_seconds, counts)
        if not segments:
            continue
        path = babel_motion_path(annotation["feat_p"], joints_dir, amass_dir, options)
        where = f"{babel_json}, sequence {sid}"
        reading = (path, options, num_joints, fps)
        motion, error = try_file(
            path, _read_sequence, *reading, on_error=on_error, where=where, stop_reasons=SETUP_REASONS
        )
        if error is not None:
            record.add_error(error, where)
            counts[error.reason] += len(segments)
            continue
        read.add(path)
        num_joints = motion.values.shape[1]
        rows.extend(_babel_rows(sid, motion.values, motion.fps, segments, counts))
    record.read = len(read)
    if not rows:
        raise ValueError("\n".join([f"{babel_json}: no usable segment{describe_skipped(counts)}", *record.lines()]))
    logger.warning(f"{babel_json}: {len(rows)} segments{describe_skipped(counts)}")
    _hand_over(record, skipped, babel_json)
    return _to_dataset(rows, num_joints)


def _check_babel_sources(joints_dir, amass_dir, options: MotionFileOptions, fps: float | None) -> float | None:
    """`fps` checked, once the folders and options are known to name motions `load_babel` can read."""
    if amass_dir is not None and options.body_model_dir is None:
        raise ValueError(
            "amass_dir holds SMPL parameters, which need body models: pass "
            "file_options=MotionFileOptions(body_model_dir=...)"
        )
    if joints_dir is None and amass_dir is None:
        raise ValueError(
            "load_babel needs joints_dir (joint-position .npy files) or, with body models, amass_dir (the AMASS .npz)"
        )
    if fps is None and options.body_model_dir is None:
        raise ValueError("load_babel needs fps, the frame rate of the .npy joint files in joints_dir")
    return None if fps is None else check_fps(fps, "fps", "BABEL motion files")


def babel_motion_path(feat_p: str, joints_dir=None, amass_dir=None, options: MotionFileOptions | None = None) -> str:
    """The file `load_babel` reads for BABEL's `feat_p`: with body models, the AMASS `.npz` under `amass_dir`
    (else `joints_dir`), also looked for without `feat_p`'s first folder (archives unpacked one level higher);
    else, or when no such `.npz` exists, the joint-position `.npy` under `joints_dir`. The first candidate
    when none exists, so that the file is reported missing."""
    candidates = []
    if (options or DEFAULT_OPTIONS).body_model_dir is not None:
        root = os.fspath(amass_dir if amass_dir is not None else joints_dir)
        parts = feat_p.replace("\\", "/").split("/")
        candidates.append(os.path.join(root, *parts))
        if len(parts) > 1:
            candidates.append(os.path.join(root, *parts[1:]))
    if joints_dir is not None:
        candidates.append(_joints_path(joints_dir, feat_p))
    return next((path for path in candidates if os.path.isfile(path)), candidates[0])


def _joints_path(joints_dir, feat_p: str) -> str:
    """BABEL's `feat_p` (an AMASS `.npz`) mapped to its joint-position `.npy` under `joints_dir`."""
    return os.path.join(os.fspath(joints_dir), os.path.splitext(feat_p)[0] + ".npy")


def _babel_rows(sid: str, motion: np.ndarray, fps: float, segments, skipped: Counter) -> list[dict]:
    rows = []
    for index, label, start, end in segments:
        clip = cut_clip(motion, start, end, fps)
        if len(clip) == 0:
            skipped["outside the motion"] += 1
        elif not np.isfinite(clip).all():
            skipped["NaN or inf"] += 1
        else:
            rows.append({"id": f"{sid}#{index}", "motion": resample_frame_rate(clip, fps, TARGET_FPS), "label": label})
    return rows


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


def _read_sequence(path: str, options: MotionFileOptions, num_joints: int | None, fps: float | None) -> MotionFile:
    """The positions of a BABEL sequence's file with their frame rate: the file's own (AMASS), else `fps`. NaN is
    left in: it is judged per segment, not for the whole file."""
    motion = read_positions(path, options, num_joints, finite=False)
    if motion.fps is None and fps is None:
        raise MotionFileError(
            path,
            f"{path} carries no frame rate: pass load_babel's fps (the rate of the .npy joint files)",
            "no frame rate",
        )
    return motion._replace(fps=motion.fps or fps)

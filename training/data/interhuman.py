"""Two-person interaction data (InterHuman / InterGen style) as a `datasets.DatasetDict`.

Assumed layout (that of InterHuman's processed release, simplified):

    <root>/motions_processed/person1/<id>.npy   person 1: (T, 22, 3) joint positions, or (T, D) feature
    <root>/motions_processed/person2/<id>.npy   rows whose first 66 values are the 22 SMPL joints' x, y, z
    <root>/annots/<id>.txt                      one caption per line
    <root>/split/train.txt val.txt test.txt     one id per line

InterHuman is recorded at 30 fps; motions are resampled to 20 fps by linear interpolation. Each row
holds `motion` as `(T, 2, 22, 3)`: both persons in one world frame, sharing every time step, so a
crop cuts both at the same moments. Missing files, files that cannot be read (counted by
`MotionFileError.reason`), NaN motions and persons of different lengths are skipped and counted in the log.
"""

import logging
import os

import datasets
import numpy as np

from motionpatches.processors.feature_extraction_motionpatches import resample_frame_rate
from motionpatches.processors.motion_files import MotionFileError, check_fps
from motionpatches.processors.motion_readers import MotionFileOptions, read_motion_file

from .common import SPLIT_FILES, TARGET_FPS, describe_examples, describe_skipped, read_split_ids

logger = logging.getLogger(__name__)

NUM_JOINTS = 22
# InterGen's rows (positions first, then other features) are read as stored, not as HumanML3D feature rows
INTERGEN_ROWS = MotionFileOptions(motion_format="joints")
FEATURES = datasets.Features(
    {
        "id": datasets.Value("string"),
        "captions": datasets.List(datasets.Value("string")),
        "motion": datasets.Array4D(shape=(None, 2, NUM_JOINTS, 3), dtype="float32"),
    }
)


def joint_positions(array: np.ndarray) -> np.ndarray | None:
    """(T, 22, 3) positions from either stored form; None when the shape is neither."""
    if array.ndim == 3 and array.shape[1:] == (NUM_JOINTS, 3):
        return array
    if array.ndim == 2 and array.shape[1] >= NUM_JOINTS * 3:
        return array[:, : NUM_JOINTS * 3].reshape(len(array), NUM_JOINTS, 3)
    return None


def _rows(root: str, ids: list[str], fps: float, skipped: dict, examples: dict):
    """Usable rows; the others are counted in `skipped` by reason, with the first message of each in `examples`."""
    for motion_id in ids:
        paths = [
            os.path.join(root, "motions_processed", person, f"{motion_id}.npy") for person in ("person1", "person2")
        ]
        annotation = os.path.join(root, "annots", f"{motion_id}.txt")
        if not all(os.path.isfile(p) for p in paths) or not os.path.isfile(annotation):
            skipped["missing file"] += 1
            continue
        try:
            people = [joint_positions(read_motion_file(p, INTERGEN_ROWS).values) for p in paths]
        except MotionFileError as err:
            skipped[err.reason] = skipped.get(err.reason, 0) + 1
            examples.setdefault(err.reason, str(err))
            continue
        if any(person is None for person in people):
            skipped["wrong shape"] += 1
            continue
        if len(people[0]) != len(people[1]) or len(people[0]) == 0:
            skipped["persons of different lengths"] += 1
            continue
        motion = np.stack(people, axis=1).astype(np.float32)
        if not np.isfinite(motion).all():
            skipped["NaN or inf"] += 1
            continue
        with open(annotation, encoding="utf-8") as f:
            captions = [line.strip() for line in f if line.strip()]
        if not captions:
            skipped["no captions"] += 1
            continue
        yield {"id": motion_id, "captions": captions, "motion": resample_frame_rate(motion, fps, TARGET_FPS)}


def load_interhuman(root: str, fps: float = 30.0) -> datasets.DatasetDict:
    root = os.fspath(root)
    fps = check_fps(fps, "fps", "InterHuman motions")
    if not os.path.isdir(root):
        raise FileNotFoundError(f"InterHuman folder not found: {root}")
    splits = {}
    for split, filename in SPLIT_FILES.items():
        split_file = os.path.join(root, "split", filename)
        if not os.path.isfile(split_file):
            if split == "train":
                raise FileNotFoundError(f"{root} has no split/{filename}")
            continue
        ids = read_split_ids(split_file)
        skipped = {
            "missing file": 0,
            "wrong shape": 0,
            "persons of different lengths": 0,
            "NaN or inf": 0,
            "no captions": 0,
        }
        examples = {}
        rows = list(_rows(root, ids, fps, skipped, examples))
        if not rows:
            raise ValueError(f"{split}: no usable interaction in {split_file} ({skipped}){describe_examples(examples)}")
        splits[split] = datasets.Dataset.from_list(rows, features=FEATURES)
        summary = f"{describe_skipped(skipped)}{describe_examples(examples)}"
        logger.warning(f"{split}: {len(rows)} interactions from {root}{summary}")
    return datasets.DatasetDict(splits)

"""What every data loader shares: the model's frame rate, split file names, split lists, skip reports."""

import logging
import os

logger = logging.getLogger(__name__)

# every loader resamples motions to the frame rate the models are trained at
TARGET_FPS = 20.0
SPLIT_FILES = {"train": "train.txt", "validation": "val.txt", "test": "test.txt"}


def read_split_ids(path: str | os.PathLike) -> list[str]:
    """The ids of a split file, one per line, blank lines ignored."""
    with open(path, encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()]


def describe_skipped(skipped: dict[str, int]) -> str:
    """`"; skipped 3 (no motion file), 1 (NaN or inf)"`, or `""` when nothing was skipped."""
    counts = ", ".join(f"{n} ({reason})" for reason, n in skipped.items() if n)
    return f"; skipped {counts}" if counts else ""


def describe_examples(examples: dict[str, str]) -> str:
    """`"; e.g. <message naming a file>; ..."`, one message per skip reason, or `""`: counts alone do not
    say which file to look at."""
    return "; e.g. " + "; ".join(examples.values()) if examples else ""

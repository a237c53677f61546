"""Motion files read one at a time, and the record of those that could not be used.

A folder of mocap is rarely clean: one truncated download or one NaN frame must not cost the other files.
The command line, the dataset loaders and the evaluation scripts read each file on its own through
`read_motion_file` and check it (`read_positions`, `check_finite`). A file that fails is either left out
and recorded (`on_error="skip"`, the default) with its path, a short reason (a `MotionFileError.reason`
such as "truncated file" or "NaN or inf") and the message saying what to do, or stops the run naming it
(`on_error="raise"`). `SkippedFiles` prints as "read N motion files, skipped M (...)" followed by one line
per file, and is written beside an output as `<output stem>.skipped.json`, atomically.
"""

import json
import os
import sys
from collections import Counter
from dataclasses import asdict, dataclass

import numpy as np

from motionpatches.atomic import write_text_atomically
from motionpatches.processors.motion_files import MotionFile, MotionFileError
from motionpatches.processors.motion_readers import MotionFileOptions, read_motion_file
from motionpatches.processors.skeletons import skeleton_hint

ON_ERROR_CHOICES = ("skip", "raise")
REPORT_SUFFIX = ".skipped.json"


def check_on_error(on_error: str) -> str:
    if on_error not in ON_ERROR_CHOICES:
        raise ValueError(f"on_error={on_error!r}; expected one of {ON_ERROR_CHOICES}")
    return on_error


# ----------------------------------------------------------------------------- reading one file
def read_positions(
    path, options: MotionFileOptions | None = None, num_joints: int | None = None, finite: bool = True
) -> MotionFile:
    """`read_motion_file(path, options)` with its values checked to be float32 joint positions
    `(frames, joints, 3)` (`num_joints` of them when given) without NaN or inf (`finite=False` leaves that to
    the caller: a dataset clip is judged on its own frames)."""
    motion = read_motion_file(path, options)
    values = np.asarray(motion.values)
    if values.ndim != 3 or values.shape[2] != 3:
        raise MotionFileError(path, f"{path} has shape {values.shape}, expected (frames, joints, 3)", "wrong shape")
    if num_joints not in (None, values.shape[1]):
        raise MotionFileError(
            path,
            f"{path} has shape {values.shape}, expected (frames, {num_joints}, 3): {skeleton_hint(values.shape[1])}",
            "wrong shape",
        )
    if len(values) == 0:
        raise MotionFileError(path, f"{path} has no frames", "no frames")
    if finite:
        check_finite(path, values)
    return motion._replace(values=values.astype(np.float32, copy=False))


def check_finite(path, values: np.ndarray) -> None:
    # a sum is non-finite whenever an element is, so the element-wise search runs only for bad motions
    if np.isfinite(values.sum(dtype=np.float64)) or np.isfinite(values).all():
        return
    frame, joint = np.argwhere(~np.isfinite(values))[0][:2]
    raise MotionFileError(path, f"{path} holds NaN or inf (first at frame {frame}, joint {joint})", "NaN or inf")


def bvh_rig(path, options: MotionFileOptions | None = None):
    """The skeleton of a BVH file's rig (its joint names and the five chains built from them)."""
    from motionpatches.processors import load_bvh, skeleton_from_bvh

    options = options or MotionFileOptions()
    return skeleton_from_bvh(load_bvh(path, scale=options.bvh_scale, up_axis=options.bvh_up_axis))


def as_motion_file_error(path, err: Exception) -> MotionFileError:
    """`err` as the error of the file at `path`: other errors keep their message and get their type as reason."""
    if isinstance(err, MotionFileError):
        return err
    message = str(err) if os.fspath(path) in str(err) else f"{os.fspath(path)}: {err}"
    return MotionFileError(path, message, type(err).__name__)


def try_file(path, function, *args, on_error: str = "skip", where: str = "", stop_reasons: tuple[str, ...] = ()):
    """`(function(*args), None)`, or `(None, error)` when the work on the file at `path` fails, the error a
    `MotionFileError` naming the file; with `on_error="raise"`, or when its reason is one of `stop_reasons`
    (problems of the machine, e.g. "smplx not installed", that every file would meet alike), that error is
    raised instead, its message prefixed with `where` the file was listed."""
    check_on_error(on_error)
    try:
        return function(*args), None
    # any error: third-party readers (zip, body models) raise their own types on damaged files, and one
    # damaged file must not stop the others; its type is kept as the reason
    except Exception as err:
        error = as_motion_file_error(path, err)
        if on_error == "raise" or error.reason in stop_reasons:
            if error is err and not where:
                raise
            raise (error.with_context(where) if where else error) from err
        return None, error


# ----------------------------------------------------------------------------- the record
@dataclass(frozen=True)
class SkippedFile:
    path: str
    reason: str  # a short category, counted in the summary
    message: str  # what is wrong and what to do
    where: str = ""  # where the file was listed, e.g. "HumanML3D/test.txt" or "clips.csv, line 4"


class SkippedFiles:
    """The files a run could not use, each once (where it was first met), in that order, and how many it read."""

    def __init__(self):
        self.read = 0
        self._files: dict[str, SkippedFile] = {}

    def add(self, path, reason: str, message: str, where: str = "") -> None:
        # a file listed again (another split, another CSV line) fails again: once is enough
        self._files.setdefault(os.fspath(path), SkippedFile(os.fspath(path), reason, message, where))

    def merge(self, other: "SkippedFiles") -> "SkippedFiles":
        self.read += other.read
        for entry in other.files:
            self._files.setdefault(entry.path, entry)
        return self

    def __contains__(self, path) -> bool:
        return os.fspath(path) in self._files

    def add_error(self, error: MotionFileError, where: str = "") -> None:
        self.add(error.path, error.reason, str(error), where)

    def attempt(self, path, function, *args, on_error: str = "skip", where: str = ""):
        """`function(*args)`, the work done on the file at `path`, or None once its failure is recorded
        (see `try_file`)."""
        result, error = try_file(path, function, *args, on_error=on_error, where=where)
        if error is not None:
            self.add_error(error, where)
        return result

    @property
    def files(self) -> list[SkippedFile]:
        return list(self._files.values())

    def __len__(self) -> int:
        return len(self._files)

    def reasons(self) -> dict[str, int]:
        return dict(Counter(entry.reason for entry in self._files.values()).most_common())

    def summary(self) -> str:
        counts = ", ".join(f"{n} {reason}" for reason, n in self.reasons().items())
        return f"read {self.read} motion files, skipped {len(self)}" + (f" ({counts})" if counts else "")

    def lines(self) -> list[str]:
        """One line per skipped file: path, reason, then the message without the path it usually starts with."""
        lines = []
        for entry in self._files.values():
            message = entry.message.removeprefix(entry.path).lstrip(": ") or entry.message
            where = f" [{entry.where}]" if entry.where else ""
            lines.append(f"  {entry.path}{where}: {entry.reason}: {message}")
        return lines

    def print(self, file=None) -> None:
        print("\n".join([self.summary(), *self.lines()]), file=file or sys.stderr)

    def to_dict(self) -> dict:
        return {
            "read": self.read,
            "skipped": len(self),
            "reasons": self.reasons(),
            "files": [asdict(entry) for entry in self._files.values()],
        }

    def write_report(self, path) -> None:
        write_text_atomically(path, json.dumps(self.to_dict(), indent=2) + "\n")


def report_path(output) -> str:
    """Where the skipped-file report of `output` goes: beside it, `<stem>.skipped.json`."""
    return os.path.splitext(os.fspath(output))[0] + REPORT_SUFFIX


def report_skipped(skipped: SkippedFiles, output=None) -> str | None:
    """Print the record (stderr) and write it beside `output` when given; the report's path, or None. Silent
    when no file was read nor skipped: generated data have nothing to report."""
    if not skipped.read and not len(skipped):
        return None
    skipped.print()
    if output is None:
        return None
    path = report_path(output)
    skipped.write_report(path)
    print(f"wrote {path}")
    return path

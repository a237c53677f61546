"""What every motion-file format shares: the error they raise, the frame rates they accept, the `.npy` reader.

`motion_readers.read_motion_file` is the one entry point that picks a format by suffix; the formats live
here (`.npy`), in `humanml3d_features.py`, `bvh.py` and `smpl.py`, which import this module (so this one
cannot import them).

Accepted frame rates: 1 to 1000 frames per second (`MIN_FPS`, `MAX_FPS`), for files, for the rate a caller
states (`motion_fps`) and for the model's rate. Motion capture runs from keyframed clips at a few frames
per second to high-speed optical systems at 1000 Hz; below 1 fps a "motion" is a handful of poses (and a
rate like 1e-3 is a unit mistake that would ask the resampler for thousands of times more frames), above
1000 fps it is almost always a frame time written in the wrong unit.

Shipped with saved checkpoints as remote code: imports only numpy and the standard library.
"""

import errno
import numbers
import os
from typing import NamedTuple

import numpy as np

MIN_FPS = 1.0
MAX_FPS = 1000.0
FPS_RANGE = f"{MIN_FPS:g} to {MAX_FPS:g} frames per second"


class MotionFileError(ValueError):
    """A motion file that cannot be used. `path` names it; `reason` is a short category ("empty file",
    "not a .npy array", ...) that dataset loaders count skipped files under; the message says what to do."""

    def __init__(self, path, message: str, reason: str = "unreadable file"):
        super().__init__(message)
        self.path = os.fspath(path)
        self.reason = reason

    def __str__(self) -> str:  # OSError's __str__ would win for the FileNotFoundError subclass
        return str(self.args[0]) if self.args else ""

    def __reduce__(self):  # the default would call __init__ with the message alone (multiprocessing, pickle)
        return type(self), (self.path, str(self), self.reason)

    def with_context(self, where: str) -> "MotionFileError":
        """The same error, its message prefixed with where the file was named (a CSV line, a split file)."""
        return type(self)(self.path, f"{where}: {self}", self.reason)


class MotionFileNotFoundError(MotionFileError, FileNotFoundError):
    """Also a `FileNotFoundError`, so callers that handle missing files as such keep working."""

    def __init__(self, path, message: str | None = None, reason: str = "no motion file"):
        super().__init__(path, message or f"motion file not found: {os.fspath(path)}", reason)
        self.errno, self.strerror, self.filename = errno.ENOENT, str(self), self.path


class MotionFile(NamedTuple):
    values: np.ndarray  # the stored numbers (any shape for .npy joints; (T, J, 3) positions for the other formats)
    fps: float | None  # known for BVH and SMPL files, else None
    joint_names: tuple[str, ...] | None  # known for BVH files, else None


def check_fps(value, name: str = "fps", where: str = "") -> float:
    """`value` as a float frame rate, or an error naming the parameter, `where` it applies and the accepted range."""
    prefix = f"{where}: " if where else ""
    if hasattr(value, "item") and np.ndim(value) == 0:  # numpy and torch scalars
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{prefix}{name} must be a number, a frame rate from {FPS_RANGE}; got {value!r} ({type(value).__name__})"
        )
    fps = float(value)
    if not MIN_FPS <= fps <= MAX_FPS:  # NaN fails this too
        raise ValueError(f"{prefix}{name}={value!r} is outside the accepted frame rates, {FPS_RANGE}")
    return fps


# ------------------------------------------------------------------------------------------------- .npy

_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK"  # .npz archives are zip files


def read_npy(path) -> MotionFile:
    """A numeric (integer or floating) array from a `.npy` file; anything else is a `MotionFileError` saying why.

    The header is checked before the data are read, so a damaged file that declares a huge shape fails
    without allocating it, and object arrays are refused without ever being unpickled.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            head = f.read(len(_NPY_MAGIC))
            if head != _NPY_MAGIC:
                raise _not_npy(path, head)
            f.seek(0)
            shape, fortran_order, dtype = _npy_header(f, path)
            data_offset = f.tell()
        size = os.path.getsize(path)
    except FileNotFoundError:
        raise MotionFileNotFoundError(path) from None
    except IsADirectoryError:
        raise MotionFileError(path, f"{path} is a folder, not a motion file", "not a file") from None
    except PermissionError as err:
        raise MotionFileError(path, f"cannot read {path}: {err.strerror}", "unreadable file") from None
    _check_npy_contents(path, shape, dtype, size - data_offset)
    return MotionFile(np.load(path, allow_pickle=False), None, None)


def _not_npy(path: str, head: bytes) -> MotionFileError:
    save = "save joint positions with numpy.save(path, array) as a (frames, joints, 3) float array"
    if not head:
        return MotionFileError(path, f"{path} is empty (0 bytes), not a .npy array; {save}", "empty file")
    if head.startswith(_ZIP_MAGIC):
        return MotionFileError(
            path,
            f"{path} is a .npz archive, not a .npy array; SMPL-H / SMPL-X parameter archives (AMASS) are read under a "
            f".npz name, with body models; otherwise {save}",
            "unsupported .npz",
        )
    return MotionFileError(path, f"{path} is not a numeric .npy array (no .npy header); {save}", "not a .npy array")


def _npy_header(f, path: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            return np.lib.format.read_array_header_1_0(f)
        return np.lib.format.read_array_header_2_0(f)
    except (ValueError, SyntaxError, EOFError) as err:
        raise MotionFileError(
            path, f"{path} is not a numeric .npy array: its header is damaged ({err})", "not a .npy array"
        ) from None


def _check_npy_contents(path: str, shape: tuple[int, ...], dtype: np.dtype, data_bytes: int) -> None:
    if dtype.hasobject:
        raise MotionFileError(
            path,
            f"{path} is not a numeric .npy array: it holds Python objects; save joint positions as a float array",
            "not a numeric array",
        )
    if dtype.kind not in "iuf":  # signed, unsigned, floating: not bool, complex, text or records
        raise MotionFileError(
            path, f"{path} is not a numeric .npy array: its values are {dtype}, not numbers", "not a numeric array"
        )
    expected = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
    if data_bytes < expected:
        raise MotionFileError(
            path,
            f"{path} is truncated: its header declares a {shape} array of {expected} bytes but only {data_bytes} "
            "follow; write the file again",
            "truncated file",
        )

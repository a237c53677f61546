"""The one entry point for motion files: `read_motion_file(path, options)` picks the reader by suffix.

- `.npy`: joint positions `(frames, joints, 3)`, or HumanML3D / KIT-ML feature rows `(frames, 263 | 251)`
  (`options.motion_format` says which when the shape alone should not decide);
- `.bvh`: a motion-capture file, its units and up axis detected from the animation or given;
- `.npz`: SMPL / SMPL-H / SMPL-X parameters (AMASS layout), turned into joints with body models the user
  supplies (`options.body_model_dir`).

Every problem raises `MotionFileError` naming the file and what to do. Shipped with saved checkpoints as
remote code: readers that need more than numpy import it only when such a file comes.
"""

import os
from dataclasses import dataclass

from .motion_files import MotionFile, MotionFileError, MotionFileNotFoundError, read_npy

MOTION_FORMATS = ("auto", "joints", "features")
SMPL_JOINT_SETS = ("humanml3d", "smpl24", "smplx")


@dataclass(frozen=True)
class MotionFileOptions:
    """What a motion file does not say about itself; every field's default means "detect it".

    bvh_scale: metres per BVH length unit (e.g. 0.01 for centimetres). bvh_up_axis: the BVH animation's
    up axis, "x", "y" or "z" (with an optional "-" for a downward axis). motion_format: for `.npy` files,
    "joints" (positions), "features" (HumanML3D / KIT-ML rows) or "auto" (by shape). body_model_dir: the
    folder holding SMPL-family body models for `.npz` parameter files. smpl_joints: which joints a `.npz`
    file becomes: "humanml3d" (the first 22 SMPL joints), "smpl24" or "smplx" (all 55).
    """

    bvh_scale: float | None = None
    bvh_up_axis: str | None = None
    motion_format: str = "auto"
    body_model_dir: str | None = None
    smpl_joints: str = "humanml3d"

    def __post_init__(self):
        if self.motion_format not in MOTION_FORMATS:
            raise ValueError(f"motion_format={self.motion_format!r}; expected one of {MOTION_FORMATS}")
        if self.smpl_joints not in SMPL_JOINT_SETS:
            raise ValueError(f"smpl_joints={self.smpl_joints!r}; expected one of {SMPL_JOINT_SETS}")


DEFAULT_OPTIONS = MotionFileOptions()


def _read_npy(path: str, options: MotionFileOptions) -> MotionFile:
    return read_npy(path)


def _read_bvh(path: str, options: MotionFileOptions) -> MotionFile:
    from .bvh import load_bvh  # BVH support costs nothing until a BVH file comes

    bvh = load_bvh(path, scale=options.bvh_scale, up_axis=options.bvh_up_axis)
    return MotionFile(bvh.positions, bvh.fps, bvh.joint_names)


def _read_npz(path: str, options: MotionFileOptions) -> MotionFile:
    raise MotionFileError(
        path,
        f"{path}: .npz motions (e.g. AMASS/SMPL parameters) are not read yet; compute (frames, joints, 3) joint "
        "positions and save them with numpy.save as .npy",
        "unsupported .npz",
    )


# by suffix; any other suffix is read as .npy, whose header check then says what the file is not
MOTION_FILE_READERS = {".npy": _read_npy, ".bvh": _read_bvh, ".npz": _read_npz}


def read_motion_file(path, options: MotionFileOptions | None = None) -> MotionFile:
    """The stored motion of `path`: `values` (joint positions `(frames, joints, 3)`, in metres with Y up for
    BVH and SMPL files), `fps` (when the file knows it) and `joint_names` (for BVH rigs)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise MotionFileNotFoundError(path)
    reader = MOTION_FILE_READERS.get(os.path.splitext(path)[1].lower(), _read_npy)
    return reader(path, options or DEFAULT_OPTIONS)

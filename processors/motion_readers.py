"""The one entry point for motion files: `read_motion_file(path, options)` picks the reader by suffix.

- `.npy`: joint positions `(frames, joints, 3)`, or HumanML3D / KIT-ML feature rows `(frames, 263 | 251)`
  turned into positions (`humanml3d_features.py`; `options.motion_format` says which when the shape alone
  should not decide);
- `.bvh`: a motion-capture file, its units and up axis detected from the animation or given;
- `.npz`: SMPL-H / SMPL-X parameters (AMASS layout), turned into joints with body models the user
  supplies (`options.body_model_dir`; `smpl.py`), Y up, at the file's capture rate.

Every problem raises `MotionFileError` naming the file and what to do. Shipped with saved checkpoints as
remote code: readers that need more than numpy import it only when such a file comes.
"""

import dataclasses
import os
from dataclasses import dataclass

from .humanml3d_features import ACCEPTED_WIDTHS, is_feature_rows, positions_from_features
from .motion_files import MotionFile, MotionFileError, MotionFileNotFoundError, read_npy
from .skeletons import SKELETON_PRESETS

MOTION_FORMATS = ("auto", "joints", "features")
SMPL_JOINT_SETS = ("humanml3d", "smpl24", "smplx")


@dataclass(frozen=True)
class MotionFileOptions:
    """What a motion file does not say about itself; every field's default means "detect it".

    bvh_scale: metres per BVH length unit (e.g. 0.01 for centimetres). bvh_up_axis: the BVH animation's
    up axis, "x", "y" or "z" (with an optional "-" for a downward axis). motion_format: for `.npy` files,
    "joints" (the array as stored), "features" (HumanML3D / KIT-ML rows, refused when not 263 or 251 wide)
    or "auto" (2-D rows of those widths are features, 3-D arrays joints, other 2-D widths refused).
    body_model_dir: the folder holding SMPL-H / SMPL-X body models for `.npz` parameter files (see
    `smpl.py` for the layouts). smpl_joints: which joints a `.npz` file becomes: "humanml3d" (the first 22
    SMPL joints), "smpl24" (those and each middle finger's base standing in for SMPL's hand joints) or
    "smplx" (all 55 of an SMPL-X file). Readers that know their skeleton take a default "humanml3d" as
    "smpl24" / "smplx" when the skeleton is that preset (`file_options_for_skeleton`).
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
# skeletons whose joints an SMPL-family file can give as they are: joint names -> MotionFileOptions.smpl_joints
SMPL_JOINT_SET_OF_SKELETON = {SKELETON_PRESETS[name].joint_names: name for name in ("smpl24", "smplx")}


def file_options_for_skeleton(options: MotionFileOptions | None, skeleton) -> MotionFileOptions:
    """`options` for files read into `skeleton` (a `Skeleton`, or None when it is not known): a default
    `smpl_joints` becomes the skeleton's joint set when it is the `smpl24` or `smplx` preset, so SMPL-family
    files give the joints the skeleton has without the user saying so twice. An explicit `smpl_joints` stays."""
    options = options or DEFAULT_OPTIONS
    joint_set = SMPL_JOINT_SET_OF_SKELETON.get(getattr(skeleton, "joint_names", None))
    if joint_set and options.smpl_joints == DEFAULT_OPTIONS.smpl_joints:
        return dataclasses.replace(options, smpl_joints=joint_set)
    return options


def _read_npy(path: str, options: MotionFileOptions) -> MotionFile:
    """Joint positions, or HumanML3D / KIT-ML feature rows turned into them.

    "auto" decides by shape: 2-D rows 263 or 251 wide are features, 3-D arrays joints, and any other 2-D
    width is refused (a `MotionFileError` naming the width) rather than guessed at. "joints" returns the
    array as stored (its shape is the caller's to check); "features" insists on feature rows.
    """
    stored = read_npy(path)
    array = stored.values
    if options.motion_format == "joints" or (options.motion_format == "auto" and array.ndim != 2):
        return stored
    if not is_feature_rows(array):
        raise _not_feature_rows(path, array)
    return MotionFile(positions_from_features(array), stored.fps, stored.joint_names)


def _not_feature_rows(path: str, array) -> MotionFileError:
    if array.ndim == 2:
        what = f"its rows are {array.shape[1]} values wide"
    else:
        what = f"it holds a {array.ndim}-D array of shape {array.shape}"
    return MotionFileError(
        path,
        f"{path} is not HumanML3D / KIT-ML feature rows: {what}; feature rows are (frames, width) with width "
        f"{ACCEPTED_WIDTHS}, joint positions (frames, joints, 3)",
        "not feature rows",
    )


def _read_bvh(path: str, options: MotionFileOptions) -> MotionFile:
    from .bvh import load_bvh  # BVH support costs nothing until a BVH file comes

    bvh = load_bvh(path, scale=options.bvh_scale, up_axis=options.bvh_up_axis)
    return MotionFile(bvh.positions, bvh.fps, bvh.joint_names)


def _read_npz(path: str, options: MotionFileOptions) -> MotionFile:
    from .smpl import read_smpl_file  # torch and smplx are imported only when an SMPL file comes

    return read_smpl_file(path, options.body_model_dir, options.smpl_joints)


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

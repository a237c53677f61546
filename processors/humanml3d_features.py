"""HumanML3D / KIT-ML feature rows (Guo et al., CVPR 2022, `new_joint_vecs`) turned back into joint positions.

A row of a motion with J joints holds, in order (12 J - 1 values: 263 for HumanML3D's 22 joints, 251 for
KIT-ML's 21):

- `[0]` the root's rotation about Y from this frame to the next, stored as HALF the angle step: the
  published code takes the arcsine of a quaternion's sine component, and its `recover_from_ric` builds
  quaternions (cos a, 0, sin a, 0) from the cumulative sum a, i.e. rotations by 2a;
- `[1:3]` the root's XZ velocity to the next frame, in the facing frame of the NEXT frame;
- `[3]` the root height;
- `(J-1) x 3` joint positions relative to the root's XZ, in the frame's facing frame ("ric");
- `(J-1) x 6` joint rotations (6-D), `J x 3` local joint velocities and 4 foot contacts, which the
  positions do not need and this reader ignores.

`positions_from_features` is the published `recover_from_ric`: the root's rotation is integrated from 0,
so frame 0 keeps its stored facing; the root's XZ starts at the origin and adds each velocity rotated back
with the rotation of the frame it leads to; joints are the ric block rotated back plus the root's XZ. T
rows give T frames. The HumanML3D release's `new_joints` are exactly this of its `new_joint_vecs`. The
rows carry no frame rate (HumanML3D's are 20 fps, KIT-ML's 12.5 fps): callers state it, as for `.npy` joints.

Shipped with saved checkpoints as remote code: numpy and the standard library only.
"""

import numpy as np

# row width -> joint count; the published layout gives 12 J - 1 values per row
FEATURE_WIDTHS = {263: 22, 251: 21}
ACCEPTED_WIDTHS = "263 for 22 joints (HumanML3D) or 251 for 21 joints (KIT-ML)"


def feature_width(num_joints: int) -> int:
    """The row width of a motion with `num_joints` joints: 4 root values, ric, 6-D rotations, velocities, 4 contacts."""
    return 4 + (num_joints - 1) * 3 + (num_joints - 1) * 6 + num_joints * 3 + 4


def is_feature_rows(array) -> bool:
    """Whether `array`'s shape is that of HumanML3D / KIT-ML feature rows, `(frames, 263 | 251)`."""
    return np.ndim(array) == 2 and np.shape(array)[1] in FEATURE_WIDTHS


def _rotate_about_y(vectors: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """`vectors` (..., 3) turned by `angles` (radians, broadcast over the leading axes) about +Y, right-handed
    (+Z towards +X)."""
    cos, sin = np.cos(angles)[..., None], np.sin(angles)[..., None]
    x, y, z = vectors[..., 0:1], vectors[..., 1:2], vectors[..., 2:3]
    return np.concatenate([cos * x + sin * z, y, cos * z - sin * x], axis=-1)


def root_rotation_angles(rows: np.ndarray) -> np.ndarray:
    """`(T,)` rotation of every frame's facing frame about Y, in radians, 0 at frame 0: twice the cumulative
    sum of the stored half steps of the frames before."""
    half_angles = np.zeros(len(rows))
    half_angles[1:] = np.cumsum(rows[:-1, 0], dtype=np.float64)
    return 2.0 * half_angles


def root_positions(rows: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """`(T, 3)` root positions: XZ summed from the velocities rotated back to the world, height from `[3]`."""
    steps = np.zeros((len(rows), 3))
    steps[1:, [0, 2]] = rows[:-1, 1:3]
    # a row's velocity is in the facing frame of the frame it leads to, so frame t's rotation undoes step t
    root = np.cumsum(_rotate_about_y(steps, -angles), axis=0)
    root[:, 1] = rows[:, 3]
    return root


def positions_from_features(rows, num_joints: int | None = None) -> np.ndarray:
    """Joint positions `(T, J, 3)` float32 from feature rows `(T, 12 J - 1)` (J from the width unless given)."""
    rows = np.asarray(rows, dtype=np.float64)
    if rows.ndim != 2:
        raise ValueError(f"feature rows must be a (frames, width) array, got shape {rows.shape}")
    num_joints = num_joints or FEATURE_WIDTHS.get(rows.shape[1])
    if num_joints is None or rows.shape[1] != feature_width(num_joints):
        raise ValueError(f"feature rows of width {rows.shape[1]}; expected {ACCEPTED_WIDTHS}")
    angles = root_rotation_angles(rows)
    root = root_positions(rows, angles)
    relative = rows[:, 4 : 4 + (num_joints - 1) * 3].reshape(len(rows), num_joints - 1, 3)
    joints = _rotate_about_y(relative, -angles[:, None])
    joints[..., 0] += root[:, None, 0]
    joints[..., 2] += root[:, None, 2]
    return np.concatenate([root[:, None], joints], axis=1).astype(np.float32)

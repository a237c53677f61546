"""Rotations and forward kinematics over a parent list: joint positions from local joint rotations.

One implementation for every caller (the BVH reader, the procedural demo data, checks of SMPL joint
positions), so that they share one convention:

- Rotations are right-handed and act on column vectors (`R @ v`); angles are in degrees.
- Euler angles compose intrinsically, like BVH CHANNELS and scipy's upper-case orders:
  `euler_rotations(angles, "zxy")` is `R_z(angles[..., 0]) @ R_x(angles[..., 1]) @ R_y(angles[..., 2])`.
- Forward kinematics takes local rotations joint-major, `(J, T, 3, 3)`, because it walks the tree one
  joint at a time and a joint's frames are then one contiguous block; it returns positions
  frame-major, `(T, J, 3)`, the layout of motion arrays everywhere else.

Shipped with saved checkpoints as remote code (`bvh.py` imports it): numpy and the standard library only.
"""

import numpy as np

__all__ = ["axis_rotation", "euler_rotations", "forward_kinematics"]


def axis_rotation(axis: str | int, degrees) -> np.ndarray:
    """`(..., 3, 3)` rotations by `degrees` (any shape) about one axis, "x", "y", "z" or 0, 1, 2.

    About X turns +Y towards +Z, about Y turns +Z towards +X, about Z turns +X towards +Y.
    """
    if isinstance(axis, str) and axis.lower() in ("x", "y", "z"):
        axis = "xyz".index(axis.lower())
    elif axis not in (0, 1, 2):
        raise ValueError(f"axis must be 'x', 'y', 'z', 0, 1 or 2, got {axis!r}")
    angle = np.radians(degrees)
    cos, sin = np.cos(angle), np.sin(angle)
    a, b = [(1, 2), (2, 0), (0, 1)][axis]  # the plane the rotation turns
    out = np.zeros((*np.shape(angle), 3, 3))
    out[..., axis, axis] = 1.0
    out[..., a, a] = cos
    out[..., a, b] = -sin
    out[..., b, a] = sin
    out[..., b, b] = cos
    return out


def euler_rotations(degrees, order: str) -> np.ndarray:
    """`(..., 3, 3)` products `R_order[0] @ R_order[1] @ ...` of rotations about the axes in `order`.

    `degrees[..., k]` is the angle about axis `order[k]` (e.g. order "zxy"), so the last axis of
    `degrees` has one entry per letter of `order`. An empty `order` gives identities. The rotation
    about the last axis is applied to a vector first (intrinsic order, as BVH CHANNELS list them).
    """
    degrees = np.asarray(degrees, dtype=np.float64)
    if degrees.shape[-1:] != (len(order),):
        raise ValueError(f"degrees must end in an axis of {len(order)} angles for order {order!r}, got {degrees.shape}")
    if not order:
        return np.broadcast_to(np.eye(3), (*degrees.shape[:-1], 3, 3)).copy()
    rotation = axis_rotation(order[0], degrees[..., 0])
    for k in range(1, len(order)):
        rotation = rotation @ axis_rotation(order[k], degrees[..., k])
    return rotation


def forward_kinematics(parents, local_rotations: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """World joint positions `(T, J, 3)` for all frames at once, walking the tree one joint at a time.

    `parents[j]` is the index of joint j's parent, -1 for a root; every parent must come before its
    children. `local_rotations` `(J, T, 3, 3)`: joint j's rotation relative to its parent's frame (it
    turns the bones to j's children, not j's own bone); a root's is its world rotation. `offsets` is
    `(J, 3)` (rest offsets, the same in every frame) or `(J, T, 3)` (per-frame translations, e.g. a
    root trajectory or BVH position channels): joint j's position in its parent's frame, for a root
    its world position.
    """
    local_rotations = np.asarray(local_rotations, dtype=np.float64)
    offsets = np.asarray(offsets, dtype=np.float64)
    if local_rotations.ndim != 4 or len(local_rotations) != len(parents) or local_rotations.shape[2:] != (3, 3):
        raise ValueError(f"local_rotations must be (J={len(parents)}, T, 3, 3), got {local_rotations.shape}")
    num_joints, num_frames = local_rotations.shape[:2]
    if offsets.shape not in ((num_joints, 3), (num_joints, num_frames, 3)):
        raise ValueError(f"offsets must be ({num_joints}, 3) or ({num_joints}, {num_frames}, 3), got {offsets.shape}")
    world = np.empty_like(local_rotations)
    positions = np.empty((num_frames, num_joints, 3))
    for joint, parent in enumerate(parents):
        if parent < 0:
            world[joint] = local_rotations[joint]
            positions[:, joint] = offsets[joint]
            continue
        if parent >= joint:
            raise ValueError(f"parents[{joint}] = {parent}: a parent must come before its children")
        # matmul on a column, not einsum: the two round differently, and the demo data were made with matmul
        positions[:, joint] = positions[:, parent] + (world[parent] @ offsets[joint][..., None])[..., 0]
        world[joint] = world[parent] @ local_rotations[joint]
    return positions

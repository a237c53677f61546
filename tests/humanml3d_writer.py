"""Joint positions -> HumanML3D / KIT-ML feature rows, after Guo et al.'s published `process_file`, for tests.

Written from the published construction so that the package's reader (`processors/humanml3d_features.py`)
is checked against rows it did not make itself:

- facing: across = (right hip - left hip) + (right shoulder - left shoulder), forward = up x across,
  Gaussian-smoothed over time (sigma 20 frames, edges repeated, as the publication's
  `inverse_kinematics_np(smooth_forward=True)`; `smooth_sigma=None` turns it off) and normalised. The
  publication's IK unpacks its hip pair the other way round (left minus right hips plus right minus
  left shoulders); `published_hip_order=True` does the same, which reproduces the release's rows;
- root rotation: about Y, turning the forward to +Z; frame 0's is the identity, as the publication sets it
  (`root_quat[0] = 1`), so every frame's facing is relative to frame 0's stored frame;
- `[0]`: half the angle step to the next frame. The publication takes the arcsine of the step quaternion's
  sine, which flips sign when the heading crosses +-180 degrees; here the step is wrapped to (-pi, pi]
  first, so turning motions stay right;
- `[1:3]` root XZ velocity in the next frame's facing frame, `[3]` root height, the (J-1) x 3 ric block
  (joints minus the root's XZ, in the frame's facing frame), then the (J-1) x 6 rotation block, filled
  with identity rotations (the reader ignores it; the real one needs the publication's IK and rest
  offsets), the J x 3 local velocities (next minus this frame, in this frame's facing frame) and the 4
  foot contacts (squared foot-joint speed below 0.002, left feet then right).

T positions give T - 1 rows (the last frame has no velocity), so a round trip loses the last frame.
"""

import numpy as np

# (right hip, left hip, right shoulder, left shoulder) and (left feet, right feet), as the publication
# lists them for each dataset (KIT-ML's naming follows its own files)
FACE_JOINTS = {22: (2, 1, 17, 16), 21: (11, 16, 5, 8)}
FOOT_JOINTS = {22: ((7, 10), (8, 11)), 21: ((19, 20), (14, 15))}
IDENTITY_6D = np.array([1.0, 0.0, 0.0, 0.0, 1.0, 0.0])


def gaussian_smooth(values: np.ndarray, sigma: float) -> np.ndarray:
    """scipy.ndimage.gaussian_filter1d(values, sigma, axis=0, mode="nearest") (truncate 4) in numpy."""
    radius = int(4.0 * sigma + 0.5)
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    kernel /= kernel.sum()
    padded = np.concatenate([np.repeat(values[:1], radius, 0), values, np.repeat(values[-1:], radius, 0)])
    return sum(weight * padded[k : k + len(values)] for k, weight in enumerate(kernel))


def facing_angles(positions, smooth_sigma: float | None = 20.0, published_hip_order: bool = False) -> np.ndarray:
    """`(T,)` root rotation about Y (radians) that turns each frame's forward to +Z; 0 at frame 0."""
    r_hip, l_hip, r_shoulder, l_shoulder = FACE_JOINTS[positions.shape[1]]
    if published_hip_order:
        r_hip, l_hip = l_hip, r_hip
    across = positions[:, r_hip] - positions[:, l_hip] + positions[:, r_shoulder] - positions[:, l_shoulder]
    across /= np.linalg.norm(across, axis=-1, keepdims=True)
    forward = np.cross([0.0, 1.0, 0.0], across)
    if smooth_sigma:
        forward = gaussian_smooth(forward, smooth_sigma)
    angles = -np.arctan2(forward[:, 0], forward[:, 2])
    angles[0] = 0.0
    return angles


def rotate_about_y(vectors: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """`vectors` (T, ..., 3) turned by `angles` (T,) about +Y (+Z towards +X), written apart from the package's."""
    cos, sin = np.cos(angles), np.sin(angles)
    matrices = np.zeros((len(angles), 3, 3))
    matrices[:, 0, 0] = matrices[:, 2, 2] = cos
    matrices[:, 0, 2], matrices[:, 2, 0] = sin, -sin
    matrices[:, 1, 1] = 1.0
    matrices = matrices.reshape(len(angles), *[1] * (vectors.ndim - 2), 3, 3)
    return (matrices @ vectors[..., None])[..., 0]


def foot_contacts(positions: np.ndarray, threshold: float = 0.002) -> np.ndarray:
    """`(T - 1, 4)` flags: a foot joint's squared displacement to the next frame below `threshold`."""
    left, right = FOOT_JOINTS[positions.shape[1]]
    speed = ((positions[1:] - positions[:-1]) ** 2).sum(-1)
    return np.concatenate([speed[:, list(left)], speed[:, list(right)]], axis=1) < threshold


def features_from_positions(positions, smooth_sigma: float | None = 20.0, published_hip_order: bool = False):
    """`(T - 1, 12 J - 1)` float32 feature rows of `(T, J, 3)` positions (J = 22 or 21)."""
    positions = np.asarray(positions, dtype=np.float64)
    frames, joints = positions.shape[:2]
    angles = facing_angles(positions, smooth_sigma, published_hip_order)
    step = np.angle(np.exp(1j * (angles[1:] - angles[:-1])))  # wrapped to (-pi, pi]
    root = positions[:, 0]
    velocity = rotate_about_y(root[1:] - root[:-1], angles[1:])
    root_xz = root * np.array([1.0, 0.0, 1.0])
    ric = rotate_about_y(positions[:, 1:] - root_xz[:, None], angles)
    local_velocity = rotate_about_y(positions[1:] - positions[:-1], angles[:-1])
    columns = [
        step[:, None] / 2.0,
        velocity[:, [0, 2]],
        root[:-1, 1:2],
        ric[:-1].reshape(frames - 1, -1),
        np.tile(IDENTITY_6D, (frames - 1, joints - 1)),
        local_velocity.reshape(frames - 1, -1),
        foot_contacts(positions),
    ]
    return np.concatenate(columns, axis=1).astype(np.float32)


def kit_shaped(smpl_positions: np.ndarray) -> np.ndarray:
    """A 21-joint motion in KIT-ML's joint order made from SMPL-22 positions (mid-feet between ankle and toes)."""
    p = np.asarray(smpl_positions, dtype=np.float64)
    mid_left, mid_right = (p[:, 7] + p[:, 10]) / 2, (p[:, 8] + p[:, 11]) / 2
    # root, spine (BP, BT), neck (BLN), head (BUN), left arm, right arm, left leg, right leg
    body = [0, 3, 6, 12, 15, 16, 18, 20, 17, 19, 21, 1, 4, 7]
    return np.concatenate([p[:, body], mid_left[:, None], p[:, [10, 2, 5, 8]], mid_right[:, None], p[:, [11]]], axis=1)

"""The demo's body: the SMPL-22 skeleton, a randomly sized adult, posing it and placing it on the floor.

Positions follow the HumanML3D `new_joints` convention (metres, Y up, SMPL left side towards +X, the
floor at y = 0).
"""

from dataclasses import dataclass

import numpy as np

from motionpatches.processors.kinematics import axis_rotation, euler_rotations, forward_kinematics

# SMPL-22 kinematic tree: PARENTS[j] is the joint whose rotation carries joint j's bone.
PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19)
# Joint j and its mirror image across the body's sagittal plane (X -> -X).
MIRROR = (0, 2, 1, 3, 5, 4, 6, 8, 7, 9, 11, 10, 12, 14, 13, 15, 17, 16, 19, 18, 21, 20)
FEET = (7, 8, 10, 11)  # ankles and toes: what touches the floor

# Rest pose (standing, arms hanging): offset of each joint from its parent, in metres, for a ~1.7 m
# adult, read off a HumanML3D sample. Right-side joints are exact mirrors of the left ones, so
# mirroring a finished motion yields the same body performing with the other side.
REST_OFFSETS = np.array(
    [
        [0.000, 0.000, 0.000],  # 0 pelvis (the root; placed by the trajectory)
        [0.065, -0.090, 0.000],  # 1 l_hip
        [-0.065, -0.090, 0.000],  # 2 r_hip
        [0.000, 0.120, -0.030],  # 3 spine1
        [0.000, -0.390, 0.000],  # 4 l_knee
        [0.000, -0.390, 0.000],  # 5 r_knee
        [0.000, 0.135, 0.010],  # 6 spine2
        [0.000, -0.420, -0.020],  # 7 l_ankle
        [0.000, -0.420, -0.020],  # 8 r_ankle
        [0.000, 0.055, 0.020],  # 9 spine3
        [0.000, -0.050, 0.130],  # 10 l_foot
        [0.000, -0.050, 0.130],  # 11 r_foot
        [0.000, 0.210, -0.020],  # 12 neck
        [0.070, 0.120, -0.010],  # 13 l_collar
        [-0.070, 0.120, -0.010],  # 14 r_collar
        [0.000, 0.090, 0.050],  # 15 head
        [0.120, -0.020, -0.010],  # 16 l_shoulder
        [-0.120, -0.020, -0.010],  # 17 r_shoulder
        [0.000, -0.260, 0.000],  # 18 l_elbow
        [0.000, -0.260, 0.000],  # 19 r_elbow
        [0.000, -0.250, 0.000],  # 20 l_wrist
        [0.000, -0.250, 0.000],  # 21 r_wrist
    ]
)
_LEG_BONES, _ARM_BONES = (4, 5, 7, 8, 10, 11), (16, 17, 18, 19, 20, 21)
LEG = {"left": (1, 4, 7), "right": (2, 5, 8)}  # hip, knee, ankle: each rotates the next bone
ARM = {"left": (16, 18), "right": (17, 19)}  # shoulder, elbow
SIGN = {"left": 1.0, "right": -1.0}  # sideways rotations point towards +X for the left limbs

# Joint angles are stored (pitch, yaw, roll), i.e. about (X, Y, Z), and composed R_y(yaw) @ R_x(pitch)
# @ R_z(roll): roll first keeps a sideways-raised arm's yaw a pure swing to the front. Positive pitch
# tips +Y towards +Z, positive yaw turns +Z towards +X (to the person's left), positive roll turns -Y
# towards +X (a hanging left limb moves outwards).
_YAW_PITCH_ROLL = [1, 0, 2]  # (pitch, yaw, roll) -> angles in the order "yxz"


@dataclass(frozen=True)
class Body:
    offsets: np.ndarray  # (22, 3) bone offsets in metres
    leg_length: float  # hip to ankle, sets how far a step carries the body


def random_body(rng: np.random.Generator) -> Body:
    """Overall size ±5% and slightly different leg/arm proportions, the same on both sides."""
    offsets = REST_OFFSETS * rng.uniform(0.95, 1.05)
    offsets[list(_LEG_BONES)] *= rng.uniform(0.97, 1.03)
    offsets[list(_ARM_BONES)] *= rng.uniform(0.97, 1.03)
    leg_length = float(np.linalg.norm(offsets[4]) + np.linalg.norm(offsets[7]))
    return Body(offsets, leg_length)


def pose(offsets: np.ndarray, joint_degrees: np.ndarray, heading_degrees: np.ndarray) -> np.ndarray:
    """Joint positions (T, 22, 3) with the pelvis at the origin, all frames at once.

    `joint_degrees` (22, T, 3) are local (pitch, yaw, roll) rotations (joint j's rotates the bones of
    its children); `heading_degrees` (T,) turns the whole body about the vertical axis.
    """
    local = euler_rotations(joint_degrees[..., _YAW_PITCH_ROLL], "yxz")
    local[0] = axis_rotation("y", heading_degrees) @ local[0]
    return forward_kinematics(PARENTS, local, offsets)


def place(
    body: Body,
    joint_degrees: np.ndarray,
    heading_degrees: np.ndarray,
    steps: np.ndarray,
    airborne: np.ndarray,
    anchor: tuple[int, ...],
) -> np.ndarray:
    """World positions (T, 22, 3): FK, then the root moved so feet meet the floor and do not skate.

    `steps` (T, 2) is the root displacement per frame in the body frame, (left, forward); `airborne`
    (T,) the height of the feet above the floor; the `anchor` joints keep their mean floor position
    while the body moves over them (none for locomotion, where `steps` carries the body).
    """
    posed = pose(body.offsets, joint_degrees, heading_degrees)
    heading = np.radians(heading_degrees)
    left, forward = steps.T
    # body frame -> world: forward is (sin h, cos h) in (x, z), left is (cos h, -sin h)
    world_steps = np.stack(
        [forward * np.sin(heading) + left * np.cos(heading), forward * np.cos(heading) - left * np.sin(heading)],
        axis=-1,
    )
    root_xz = np.cumsum(world_steps, axis=0) - world_steps[0]
    if anchor:
        anchor_xz = posed[:, list(anchor)][:, :, [0, 2]].mean(axis=1)
        root_xz -= anchor_xz - anchor_xz[0]
    root_y = airborne - posed[:, list(FEET), 1].min(axis=1)
    return posed + np.stack([root_xz[:, 0], root_y, root_xz[:, 1]], axis=-1)[:, None, :]


def mirror(motion: np.ndarray) -> np.ndarray:
    """The same motion performed with the other side of the body (reflected across x = 0)."""
    return motion[:, list(MIRROR)] * np.array([-1.0, 1.0, 1.0])

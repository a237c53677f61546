"""BVH text for tests.

`bvh_text`: a small Mixamo-named rig with random joint rotations. `exporter_sample`: files shaped like
real exporters write them (MotionBuilder, a Maya game rig, Mixamo, 3ds Max Biped, CMU), with the joint
positions they encode computed here by a simple per-frame forward kinematics.
"""

from typing import NamedTuple

import numpy as np

# (name, parent, offset in centimetres)
MIXAMO_RIG = [
    ("Hips", None, (0, 95, 0)),
    ("Spine", "Hips", (0, 10, 0)),
    ("Spine1", "Spine", (0, 12, 0)),
    ("Neck", "Spine1", (0, 20, 0)),
    ("Head", "Neck", (0, 10, 0)),
    ("LeftShoulder", "Spine1", (6, 16, 0)),
    ("LeftArm", "LeftShoulder", (12, 0, 0)),
    ("LeftForeArm", "LeftArm", (26, 0, 0)),
    ("LeftHand", "LeftForeArm", (24, 0, 0)),
    ("RightShoulder", "Spine1", (-6, 16, 0)),
    ("RightArm", "RightShoulder", (-12, 0, 0)),
    ("RightForeArm", "RightArm", (-26, 0, 0)),
    ("RightHand", "RightForeArm", (-24, 0, 0)),
    ("LeftUpLeg", "Hips", (9, -5, 0)),
    ("LeftLeg", "LeftUpLeg", (0, -42, 0)),
    ("LeftFoot", "LeftLeg", (0, -40, 0)),
    ("LeftToeBase", "LeftFoot", (0, -5, 12)),
    ("RightUpLeg", "Hips", (-9, -5, 0)),
    ("RightLeg", "RightUpLeg", (0, -42, 0)),
    ("RightFoot", "RightLeg", (0, -40, 0)),
    ("RightToeBase", "RightFoot", (0, -5, 12)),
]


def bvh_text(frames: int = 30, fps: float = 30.0, seed: int = 0, rename=None) -> str:
    """A BVH file: root with position + ZXY rotation channels, other joints ZXY rotations, smooth random angles."""
    rename = rename or {}
    children = {}
    for name, parent, _ in MIXAMO_RIG:
        children.setdefault(parent, []).append(name)
    offsets = {name: offset for name, _, offset in MIXAMO_RIG}
    lines = ["HIERARCHY"]

    def write(name, depth):
        pad = "  " * depth
        keyword = "ROOT" if depth == 0 else "JOINT"
        lines.append(f"{pad}{keyword} {rename.get(name, name)}")
        lines.append(f"{pad}{{")
        lines.append(f"{pad}  OFFSET {' '.join(f'{v:.4f}' for v in offsets[name])}")
        channels = (
            "6 Xposition Yposition Zposition Zrotation Xrotation Yrotation"
            if depth == 0
            else "3 Zrotation Xrotation Yrotation"
        )
        lines.append(f"{pad}  CHANNELS {channels}")
        for child in children.get(name, []):
            write(child, depth + 1)
        if name not in children:
            lines.extend([f"{pad}  End Site", f"{pad}  {{", f"{pad}    OFFSET 0 5 0", f"{pad}  }}"])
        lines.append(f"{pad}}}")

    write("Hips", 0)
    rng = np.random.default_rng(seed)
    t = np.arange(frames)[:, None]
    angles = 25 * np.sin(
        2 * np.pi * t / frames * rng.uniform(0.5, 2, (1, 3 * len(MIXAMO_RIG)))
        + rng.uniform(0, 6, (1, 3 * len(MIXAMO_RIG)))
    )
    root = np.concatenate([t * 2.0, np.full((frames, 1), 95.0), t * 1.0], axis=1)
    values = np.concatenate([root, angles], axis=1)
    lines += ["MOTION", f"Frames: {frames}", f"Frame Time: {1 / fps:.8f}"]
    lines += [" ".join(f"{v:.5f}" for v in row) for row in values]
    return "\n".join(lines) + "\n"


# --- files shaped like real exporters write them -------------------------------------------------
#
# A plausible motion of a person is made on a canonical rig (metres, Y up, facing +Z, the character's
# left at +X, every joint frame aligned with the world at rest), then written as an exporter would:
# in another unit and up axis, with a rest pose that is not upright (joint j's frame turned by Q_j, so
# that its rotation channels carry the difference), with position channels on every joint, with an
# extra root at the origin. With C the change from Y up to the file's axes and s the units per metre:
#     OFFSET_j = s Q_parent^T C o_j,   rotation_j = Q_parent^T C L_j C^T Q_j,   positions = s C p.
# `simple_forward_kinematics` reads the joint positions back from the numbers written, frame by frame
# and independently of processors/kinematics.py; `ExporterSample.positions` are those in metres, Y up.

UNITS_PER_METRE = {"m": 1.0, "dm": 10.0, "cm": 100.0, "mm": 1000.0, "inch": 1 / 0.0254, "cmu": 0.45 / 0.0254}

# rest positions (metres) of the canonical T-pose, 1.74 m to the top of the head; "r_" mirrors "l_"
LANDMARKS = {
    "origin": (0.0, 0.0, 0.0),
    "hips": (0.0, 0.95, 0.0),
    "spine": (0.0, 1.05, 0.0),
    "spine1": (0.0, 1.17, 0.0),
    "spine2": (0.0, 1.29, 0.0),
    "neck": (0.0, 1.44, 0.0),
    "neck1": (0.0, 1.49, 0.0),
    "head": (0.0, 1.54, 0.0),
    "head_top": (0.0, 1.72, 0.0),
    "head_tip": (0.0, 1.74, 0.0),
    "l_clavicle": (0.05, 1.39, 0.0),
    "l_upperarm": (0.17, 1.39, 0.0),
    "l_forearm": (0.44, 1.39, 0.0),
    "l_hand": (0.69, 1.39, 0.0),
    "l_thigh": (0.09, 0.90, 0.0),
    "l_calf": (0.09, 0.48, 0.0),
    "l_foot": (0.09, 0.06, 0.0),
    "l_toe": (0.09, 0.0, 0.12),
    "l_toe_end": (0.09, 0.0, 0.18),
    "l_toe_tip": (0.09, 0.0, 0.2),
}
# the left hand's fingers: (base, direction); three phalanges of 3.5 cm, then an End Site
FINGERS = {
    "Index": ((0.77, 1.39, 0.02), (1.0, 0.0, 0.0)),
    "Thumb": ((0.71, 1.38, 0.03), (0.6, 0.0, 0.8)),
    "Middle": ((0.775, 1.39, 0.0), (1.0, 0.0, 0.0)),
    "Ring": ((0.77, 1.39, -0.02), (1.0, 0.0, 0.0)),
    "Pinky": ((0.76, 1.39, -0.035), (1.0, 0.0, 0.0)),
}

# how each kind of joint moves: base and amplitude (degrees) of its X, Y, Z rotations (left side; the right
# side is mirrored); "root" turns and carries the trajectory, "origin" and "fixed" never move
ROLE_MOTION = {
    "spine": ((3, 0, 0), (5, 6, 4)),
    "neck": ((0, 0, 0), (8, 15, 4)),
    "head": ((0, 0, 0), (8, 20, 4)),
    "clavicle": ((0, 0, 0), (0, 4, 6)),
    "upperarm": ((0, 0, -65), (20, 20, 15)),
    "forearm": ((0, -30, 0), (0, 20, 0)),
    "hand": ((0, 0, 0), (15, 10, 15)),
    "finger": ((0, 0, -10), (0, 0, 10)),
    "thigh": ((-5, 0, 0), (30, 5, 3)),
    "calf": ((25, 0, 0), (20, 0, 0)),
    "foot": ((0, 0, 0), (12, 3, 3)),
    "toe": ((0, 0, 0), (10, 0, 0)),
    "fixed": ((0, 0, 0), (0, 0, 0)),
    "origin": ((0, 0, 0), (0, 0, 0)),
}

# the canonical (Y up) axes as the file's, the inverses of the turns to Y up that the loader documents:
# Z up (x, y, z) -> (x, z, -y), -Z up (x, y, z) -> (x, -z, y), -Y up (x, y, z) -> (x, -y, -z)
TO_FILE_AXES = {
    "y": np.eye(3),
    "z": np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]]),
    "-z": np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]]),
    "-y": np.diag([1.0, -1, -1]),
}


class Joint(NamedTuple):
    name: str
    parent: str | None
    at: tuple  # rest position, metres, canonical axes
    role: str  # a key of ROLE_MOTION, or "root"


class Rig(NamedTuple):
    joints: list  # parents before children
    end_sites: dict  # joint name -> rest position of its End Site
    order: str  # rotation channel order, e.g. "zyx"
    six_channels: bool  # position channels on every joint (else on the root and the trajectory joint)
    defaults: dict  # what this exporter usually writes: units, up, rest
    chains: dict  # the body chains the names and hierarchy should give


class ExporterSample(NamedTuple):
    text: str
    joint_names: tuple
    parents: tuple
    positions: np.ndarray | None  # (T, J, 3): the written numbers read back frame by frame, metres, Y up
    canonical: np.ndarray  # (T, J, 3): the motion before it was written, metres, Y up
    chains: dict
    scale: float  # metres per file unit
    up_axis: str
    fps: float


def at(key: str) -> tuple:
    if key.startswith("r_"):
        x, y, z = LANDMARKS["l_" + key[2:]]
        return (-x, y, z)
    return LANDMARKS[key]


def finger_at(side: str, finger: str, phalanx: int) -> tuple:
    (x, y, z), (dx, dy, dz) = FINGERS[finger]
    step = 0.035 * phalanx
    x, y, z = x + dx * step, y + dy * step, z + dz * step
    return (x if side == "l" else -x, y, z)


def chain_joints(links, parent=None) -> list:
    """(name, landmark, role) links, each the parent of the next."""
    joints = []
    for name, key, role in links:
        joints.append(Joint(name, parent, at(key), role))
        parent = name
    return joints


def side_joints(side, name, finger_name, *, arm_parent, leg_parent, fingers, hip_joint=None, toe_nub=None):
    """One side's arm (with `fingers` fingers) and leg; `name(part)` names its joints. Returns joints, End Sites."""
    arm = chain_joints([(name(p), f"{side}_{p}", p) for p in ("clavicle", "upperarm", "forearm", "hand")], arm_parent)
    ends = {}
    for finger in list(FINGERS)[:fingers]:
        parent = name("hand")
        for n in (1, 2, 3):
            arm.append(Joint(finger_name(finger, n), parent, finger_at(side, finger, n - 1), "finger"))
            parent = arm[-1].name
        ends[parent] = finger_at(side, finger, 3)
    if not fingers:
        ends[name("hand")] = finger_at(side, "Middle", 1)
    leg_links = [(hip_joint, "hips", "fixed")] if hip_joint else []
    leg_links += [(name(p), f"{side}_{p}", p) for p in ("thigh", "calf", "foot", "toe")]
    leg_links += [(toe_nub, f"{side}_toe_end", "fixed")] if toe_nub else []
    leg = chain_joints(leg_links, leg_parent)
    ends[leg[-1].name] = at(f"{side}_toe_tip" if toe_nub else f"{side}_toe_end")
    return arm + leg, ends


def both_sides(words, name, finger_name, **kwargs) -> tuple[list, dict]:
    """`side_joints` for the left then the right side; `name(word, part)` and callable kwargs take the
    side's word ("Left", "L", "l", ...)."""
    joints, ends = [], {}
    for side, word in zip("lr", words):
        more, more_ends = side_joints(
            side,
            lambda part, w=word: name(w, part),
            lambda finger, n, w=word: finger_name(w, finger, n),
            **{key: value(word) if callable(value) else value for key, value in kwargs.items()},
        )
        joints += more
        ends.update(more_ends)
    return joints, ends


def expected_chains(torso, arm_anchor, leg_anchor, words, name, hip_joint=None) -> dict:
    chains = {"torso": list(torso)}
    for part_side, word in zip(("left", "right"), words):
        arm = [name(word, part) for part in ("clavicle", "upperarm", "forearm", "hand")]
        leg = [hip_joint(word)] if hip_joint else []
        leg += [name(word, part) for part in ("thigh", "calf", "foot", "toe")]
        chains[f"{part_side}_arm"] = [arm_anchor, *arm]
        chains[f"{part_side}_leg"] = [leg_anchor, *leg]
    return chains


# landmark and role of the torso joints, hips to head
TORSO_KEYS = [
    ("hips", "root"),
    ("spine", "spine"),
    ("spine1", "spine"),
    ("spine2", "spine"),
    ("neck", "neck"),
    ("head", "head"),
]


HUMANIK_PARTS = {
    "clavicle": "Shoulder",
    "upperarm": "Arm",
    "forearm": "ForeArm",
    "hand": "Hand",
    "thigh": "UpLeg",
    "calf": "Leg",
    "foot": "Foot",
    "toe": "ToeBase",
}


def motionbuilder_rig(fingers: int = 1) -> Rig:
    """MotionBuilder-like: a "Reference" root at the origin above the hips, HumanIK names, 6 channels on every
    joint; usually written Z up in centimetres, with the rest pose lying along +X."""
    c = "Character1_"
    torso = [c + "Hips", c + "Spine", c + "Spine1", c + "Spine2", c + "Neck", c + "Head"]
    joints = chain_joints([("Reference", "origin", "origin")] + [(n, *k) for n, k in zip(torso, TORSO_KEYS)])

    def name(word, part):
        return f"{c}{word}{HUMANIK_PARTS[part]}"

    limbs, ends = both_sides(
        ("Left", "Right"),
        name,
        lambda w, f, n: f"{c}{w}Hand{f}{n}",
        arm_parent=torso[3],
        leg_parent=torso[0],
        fingers=fingers,
    )
    ends[torso[-1]] = at("head_top")
    chains = expected_chains(torso, torso[3], torso[0], ("Left", "Right"), name)
    return Rig(joints + limbs, ends, "zyx", True, {"units": "cm", "up": "z", "rest": "+x"}, chains)


def game_rig(fingers: int = 1) -> Rig:
    """A game-studio rig exported from Maya: Unreal-style names, a "root" at the origin above the pelvis with
    IK helper bones under it (left on the floor), 6 channels on every joint; Z up, centimetres, every bone
    along +X at rest (Maya joint orients)."""
    torso = ["pelvis", "spine_01", "spine_02", "spine_03", "neck_01", "head"]
    joints = chain_joints([("root", "origin", "origin")] + [(n, *k) for n, k in zip(torso, TORSO_KEYS)])
    parts = {**{part: part for part in HUMANIK_PARTS}, "forearm": "lowerarm", "toe": "ball"}

    def name(word, part):
        return f"{parts[part]}_{word}"

    limbs, ends = both_sides(
        ("l", "r"),
        name,
        lambda w, f, n: f"{f.lower()}_0{n}_{w}",
        arm_parent=torso[3],
        leg_parent=torso[0],
        fingers=fingers,
    )
    helpers = chain_joints([("ik_foot_root", "origin", "fixed")], "root")
    helpers += [Joint(f"ik_foot_{w}", "ik_foot_root", at(f"{w}_foot"), "fixed") for w in "lr"]
    helpers += chain_joints([("ik_hand_root", "origin", "fixed"), ("ik_hand_gun", "r_hand", "fixed")], "root")
    helpers += [Joint(f"ik_hand_{w}", "ik_hand_gun", at(f"{w}_hand"), "fixed") for w in "lr"]
    ends.update(
        {"ik_foot_l": at("l_toe"), "ik_foot_r": at("r_toe"), "ik_hand_l": at("l_hand"), "ik_hand_r": at("r_hand")}
    )
    ends[torso[-1]] = at("head_top")
    chains = expected_chains(torso, torso[3], torso[0], ("l", "r"), name)
    return Rig(joints + limbs + helpers, ends, "xyz", True, {"units": "cm", "up": "z", "rest": "bones"}, chains)


def mixamo_rig(fingers: int = 1) -> Rig:
    """Mixamo-like: `mixamorig:` names, end joints (HeadTop_End, LeftToe_End), position channels on the hips
    only; Y up, centimetres, upright T-pose."""
    p = "mixamorig:"
    torso = [p + n for n in ("Hips", "Spine", "Spine1", "Spine2", "Neck", "Head")]
    links = [(n, *k) for n, k in zip(torso, TORSO_KEYS)] + [(p + "HeadTop_End", "head_top", "fixed")]

    def name(word, part):
        return f"{p}{word}{HUMANIK_PARTS[part]}"

    limbs, ends = both_sides(
        ("Left", "Right"),
        name,
        lambda w, f, n: f"{p}{w}Hand{f}{n}",
        arm_parent=torso[3],
        leg_parent=torso[0],
        fingers=fingers,
        toe_nub=lambda w: f"{p}{w}Toe_End",
    )
    ends[p + "HeadTop_End"] = at("head_tip")
    chains = expected_chains(torso, torso[3], torso[0], ("Left", "Right"), name)
    return Rig(chain_joints(links) + limbs, ends, "zxy", False, {"units": "cm", "up": "y", "rest": "upright"}, chains)


def biped_rig(fingers: int = 1) -> Rig:
    """3ds Max Biped-like: `Bip01` names, thighs under `Bip01 Spine` and clavicles under `Bip01 Neck` (as Biped
    builds them), Nub end joints; Z up, inches (3ds Max's default unit), upright."""
    links = [
        ("Bip01", "hips", "root"),
        ("Bip01 Pelvis", "hips", "fixed"),
        ("Bip01 Spine", "spine", "spine"),
        ("Bip01 Spine1", "spine1", "spine"),
        ("Bip01 Spine2", "spine2", "spine"),
        ("Bip01 Neck", "neck", "neck"),
        ("Bip01 Head", "head", "head"),
        ("Bip01 HeadNub", "head_top", "fixed"),
    ]
    parts = {"clavicle": "Clavicle", "upperarm": "UpperArm", "forearm": "Forearm", "hand": "Hand"}
    parts.update({"thigh": "Thigh", "calf": "Calf", "foot": "Foot", "toe": "Toe0"})

    def name(word, part):
        return f"Bip01 {word} {parts[part]}"

    def finger_name(word, finger, n):
        return f"Bip01 {word} Finger{list(FINGERS).index(finger)}{'' if n == 1 else n - 1}"

    limbs, ends = both_sides(
        ("L", "R"),
        name,
        finger_name,
        arm_parent="Bip01 Neck",
        leg_parent="Bip01 Spine",
        fingers=fingers,
        toe_nub=lambda w: f"Bip01 {w} Toe0Nub",
    )
    ends["Bip01 HeadNub"] = at("head_tip")
    torso = ["Bip01 Spine", "Bip01 Spine1", "Bip01 Spine2", "Bip01 Neck", "Bip01 Head"]
    chains = expected_chains(torso, "Bip01 Neck", "Bip01 Spine", ("L", "R"), name)
    return Rig(chain_joints(links) + limbs, ends, "yxz", False, {"units": "inch", "up": "z", "rest": "upright"}, chains)


def cmu_rig(fingers: int = 1) -> Rig:
    """The CMU database converted to BVH: `LHipJoint`, `LowerBack`, `Neck1`; Y up, CMU units of 1/0.45 inch."""
    links = [
        ("Hips", "hips", "root"),
        ("LowerBack", "spine", "spine"),
        ("Spine", "spine1", "spine"),
        ("Spine1", "spine2", "spine"),
        ("Neck", "neck", "neck"),
        ("Neck1", "neck1", "neck"),
        ("Head", "head", "head"),
    ]

    def name(word, part):
        return f"{word}{HUMANIK_PARTS[part]}"

    def finger_name(word, finger, n):
        return f"{word}{'FingerBase' if n == 1 else f'Hand{finger}{n - 1}'}"

    limbs, ends = both_sides(
        ("Left", "Right"),
        name,
        finger_name,
        arm_parent="Spine1",
        leg_parent="Hips",
        fingers=fingers,
        hip_joint=lambda w: f"{w[0]}HipJoint",
    )
    ends["Head"] = at("head_top")
    torso = [link[0] for link in links]
    chains = expected_chains(torso, "Spine1", "Hips", ("Left", "Right"), name, hip_joint=lambda w: f"{w[0]}HipJoint")
    return Rig(chain_joints(links) + limbs, ends, "zyx", False, {"units": "cmu", "up": "y", "rest": "upright"}, chains)


EXPORTER_RIGS = {
    "motionbuilder": motionbuilder_rig,
    "game": game_rig,
    "mixamo": mixamo_rig,
    "biped": biped_rig,
    "cmu": cmu_rig,
}


# --- rotations, written out here rather than taken from processors/kinematics.py -------------------


def axis_matrix(axis: int, degrees) -> np.ndarray:
    """`(..., 3, 3)` right-handed rotations about X (0), Y (1) or Z (2), acting on column vectors."""
    angle = np.radians(np.asarray(degrees, dtype=np.float64))
    c, s, o, i = np.cos(angle), np.sin(angle), np.zeros_like(angle), np.ones_like(angle)
    rows = {
        0: [[i, o, o], [o, c, -s], [o, s, c]],
        1: [[c, o, s], [o, i, o], [-s, o, c]],
        2: [[c, -s, o], [s, c, o], [o, o, i]],
    }[axis]
    return np.stack([np.stack(row, axis=-1) for row in rows], axis=-2)


def euler_angles(rotations: np.ndarray, order: str) -> np.ndarray:
    """Degrees `(..., 3)` with rotations = R_order[0] @ R_order[1] @ R_order[2] (the BVH channel order)."""
    i, j, k = ("xyz".index(letter) for letter in order)
    sign = 1.0 if (i, j, k) in ((0, 1, 2), (1, 2, 0), (2, 0, 1)) else -1.0
    middle = np.arcsin(np.clip(sign * rotations[..., i, k], -1.0, 1.0))
    first = np.arctan2(-sign * rotations[..., j, k], rotations[..., k, k])
    last = np.arctan2(-sign * rotations[..., i, j], rotations[..., i, i])
    # gimbal lock (middle = +-90 degrees, which exporters write, e.g. a -90 turn of a reference root): only
    # first and last together are known; take first = 0 and read last from R_middle^T R = R_last
    locked = np.abs(np.cos(middle)) < 1e-9
    if np.any(locked):
        rest = np.swapaxes(axis_matrix(j, np.degrees(middle)), -1, -2) @ rotations
        p, q = [(1, 2), (2, 0), (0, 1)][k]
        first = np.where(locked, 0.0, first)
        last = np.where(locked, np.arctan2(rest[..., q, p], rest[..., p, p]), last)
    return np.degrees(np.stack([first, middle, last], axis=-1))


def rotation_between(u, v) -> np.ndarray:
    """The rotation turning unit vector u onto v (about u x v; half a turn about an axis across u if opposite)."""
    u, v = np.asarray(u, dtype=np.float64), np.asarray(v, dtype=np.float64)
    axis = np.cross(u, v)
    if np.linalg.norm(axis) < 1e-9:
        if u @ v > 0:
            return np.eye(3)
        axis = np.cross(u, [1.0, 0, 0] if abs(u[0]) < 0.9 else [0, 1.0, 0])
    axis /= np.linalg.norm(axis)
    angle = np.arctan2(np.linalg.norm(np.cross(u, v)), u @ v)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def frame_along(direction) -> np.ndarray:
    """A joint frame whose +X points along `direction` (a Maya joint orient), twisted by a fixed rule."""
    length = np.linalg.norm(direction)
    if length < 1e-9:
        return np.eye(3)
    x = np.asarray(direction, dtype=np.float64) / length
    helper = np.array([0, 0, 1.0]) if abs(x[2]) < 0.9 else np.array([0, 1.0, 0])
    y = np.cross(helper, x)
    y /= np.linalg.norm(y)
    return np.stack([x, y, np.cross(x, y)], axis=1)


# --- the motion ------------------------------------------------------------------------------------


def canonical_motion(rig: Rig, frames: int, fps: float, seed: int, posture: str, heading: float, turn: float):
    """Local rotations `(J, T, 3, 3)` and translations `(J, T, 3)` of a person walking (or, with posture
    "lying", sliding along the floor on their back) in metres, Y up, the lowest point of the body on the
    floor (Y = 0) in every frame."""
    rng = np.random.default_rng(seed)
    time = np.arange(frames)[:, None] / fps
    index = {joint.name: j for j, joint in enumerate(rig.joints)}
    local = np.empty((len(rig.joints), frames, 3, 3))
    translation = np.empty((len(rig.joints), frames, 3))
    for j, joint in enumerate(rig.joints):
        parent_at = rig.joints[index[joint.parent]].at if joint.parent else (0.0, 0.0, 0.0)
        translation[j] = np.subtract(joint.at, parent_at)
        if joint.role == "root":
            continue
        base, amplitude = ROLE_MOTION[joint.role]
        waves = np.sin(2 * np.pi * rng.uniform(0.4, 1.1, 3) * time + rng.uniform(0, 2 * np.pi, 3))
        angles = np.asarray(base) + np.asarray(amplitude) * waves
        if joint.at[0] < 0:  # the right side mirrors the left: rotations about Y and Z change sign
            angles[:, 1:] *= -1
        local[j] = axis_matrix(0, angles[:, 0]) @ axis_matrix(1, angles[:, 1]) @ axis_matrix(2, angles[:, 2])
    root = next(j for j, joint in enumerate(rig.joints) if joint.role == "root")
    yaw = heading + turn * np.sin(2 * np.pi * 0.15 * time[:, 0] + rng.uniform(0, 2 * np.pi))
    sway = 3 * np.sin(2 * np.pi * 0.5 * time[:, 0] + rng.uniform(0, 2 * np.pi, (2, 1)))
    local[root] = axis_matrix(1, yaw) @ axis_matrix(0, sway[0]) @ axis_matrix(2, sway[1])
    if posture == "lying":
        local[root] = local[root] @ axis_matrix(0, 90)  # the head along the heading, the back on the floor
    step = (
        (1.1 if posture == "upright" else 0.5) / fps * np.stack([np.sin(np.radians(yaw)), np.cos(np.radians(yaw))], 1)
    )
    translation[root][:, [0, 2]] += np.cumsum(step, axis=0)
    points = canonical_positions(rig, local, translation)
    carried = [j for j in range(len(points[0])) if _carried_by(rig, j, root)]
    translation[root][:, 1] -= points[:, carried, 1].min(axis=1)
    return local, translation


def _carried_by(rig: Rig, point: int, root: int) -> bool:
    """Whether a point (a joint, or an End Site numbered after the joints) moves with the root joint."""
    names = [joint.name for joint in rig.joints]
    name = names[point] if point < len(names) else list(rig.end_sites)[point - len(names)]
    while name is not None:
        if name == names[root]:
            return True
        name = rig.joints[names.index(name)].parent
    return False


def canonical_positions(rig: Rig, local: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """`(T, J + End Sites, 3)` world positions, all frames at once, for generating the motion."""
    index = {joint.name: j for j, joint in enumerate(rig.joints)}
    world, positions = [], []
    for j, joint in enumerate(rig.joints):
        if joint.parent is None:
            world.append(local[j])
            positions.append(translation[j])
            continue
        parent = index[joint.parent]
        positions.append(positions[parent] + np.einsum("tab,tb->ta", world[parent], translation[j]))
        world.append(world[parent] @ local[j])
    for name, end in rig.end_sites.items():
        j = index[name]
        positions.append(positions[j] + world[j] @ (np.asarray(end) - rig.joints[j].at))
    return np.stack(positions, axis=1)


# --- writing it as an exporter would ------------------------------------------------------------------


def rest_frames(rig: Rig, rest: str, to_file: np.ndarray) -> list:
    """Q_j, the frame of each joint at rest in the file's axes. "upright": the world's; "+x", "+z", ...: the
    upright body turned so that its up points there; "upside_down": half a turn about X; "bones": each
    joint's +X along its bone to its first child."""
    up = to_file @ np.array([0, 1.0, 0])
    if rest == "bones":
        first_child = {}
        for joint in rig.joints:
            first_child.setdefault(joint.parent, joint.at)
        for name, end in rig.end_sites.items():
            first_child.setdefault(name, end)
        return [frame_along(to_file @ np.subtract(first_child[j.name], j.at)) for j in rig.joints]
    if rest == "upside_down":
        turn = axis_matrix(0, 180.0)
    else:
        target = {"upright": up, "+x": [1.0, 0, 0], "+y": [0, 1.0, 0], "+z": [0, 0, 1.0], "-x": [-1.0, 0, 0]}[rest]
        turn = rotation_between(up, target)
    return [turn.T] * len(rig.joints)


def dfs_order(rig: Rig) -> list[int]:
    """Joint indices in the order a BVH file lists them (depth first, children in the rig's order)."""
    children = {}
    for j, joint in enumerate(rig.joints):
        children.setdefault(joint.parent, []).append(j)
    order, stack = [], list(reversed(children[None]))
    while stack:
        order.append(stack.pop())
        stack.extend(reversed(children.get(rig.joints[order[-1]].name, [])))
    return order


class FileJoint(NamedTuple):
    name: str
    parent: int  # index in file order, -1 for the root
    offset: np.ndarray
    channels: list  # (kind, axis): kind "position" or "rotation", axis 0-2, in file order
    end_site: np.ndarray | None


def exported(rig: Rig, local, translation, units: str, up: str, rest: str, six_channels: bool):
    """The file's joints (file order) and its `(T, channels)` numbers, rounded as they are written."""
    scale, to_file = UNITS_PER_METRE[units], TO_FILE_AXES[up]
    frames = rest_frames(rig, rest, to_file)
    order = dfs_order(rig)
    index = {joint.name: j for j, joint in enumerate(rig.joints)}
    position_in_file = {rig.joints[j].name: i for i, j in enumerate(order)}
    joints, columns = [], []
    for j in order:
        joint = rig.joints[j]
        parent = index.get(joint.parent)
        parent_frame = frames[parent] if parent is not None else np.eye(3)
        into_parent = scale * parent_frame.T @ to_file
        channels = []
        if six_channels or joint.parent is None or joint.role == "root":
            channels += [("position", axis) for axis in range(3)]
            columns.append(translation[j] @ into_parent.T)
        rotations = parent_frame.T @ to_file @ local[j] @ to_file.T @ frames[j]
        channels += [("rotation", "xyz".index(letter)) for letter in rig.order]
        columns.append(euler_angles(rotations, rig.order))
        rest_offset = np.subtract(joint.at, rig.joints[parent].at if parent is not None else (0.0, 0.0, 0.0))
        end = rig.end_sites.get(joint.name)
        end = None if end is None else np.round(scale * frames[j].T @ to_file @ np.subtract(end, joint.at), 6)
        parent_index = position_in_file[joint.parent] if joint.parent else -1
        joints.append(FileJoint(joint.name, parent_index, np.round(into_parent @ rest_offset, 6), channels, end))
    return joints, np.round(np.concatenate(columns, axis=1), 6)


def bvh_file_text(joints: list, values: np.ndarray, frame_time: str) -> str:
    lines = ["HIERARCHY"]
    depth = []
    for i, joint in enumerate(joints):
        while depth and depth[-1] != joint.parent:
            depth.pop()
            lines.append("  " * len(depth) + "}")
        pad = "  " * len(depth)
        lines += [f"{pad}{'ROOT' if joint.parent < 0 else 'JOINT'} {joint.name}", f"{pad}{{"]
        lines.append(f"{pad}  OFFSET " + " ".join(f"{v:.6f}" for v in joint.offset))
        names = [f"{'XYZ'[axis]}{kind}" for kind, axis in joint.channels]
        lines.append(f"{pad}  CHANNELS {len(names)} {' '.join(names)}")
        if joint.end_site is not None:
            offset = " ".join(f"{v:.6f}" for v in joint.end_site)
            lines += [f"{pad}  End Site", f"{pad}  {{", f"{pad}    OFFSET {offset}", f"{pad}  }}"]
        depth.append(i)
    while depth:
        depth.pop()
        lines.append("  " * len(depth) + "}")
    lines += ["MOTION", f"Frames: {len(values)}", f"Frame Time: {frame_time}"]
    lines += [" ".join(f"{v:.6f}" for v in row) for row in values]
    return "\n".join(lines) + "\n"


def simple_forward_kinematics(joints: list, values: np.ndarray) -> np.ndarray:
    """`(T, J, 3)` joint positions in the file's units and axes, one frame and one joint at a time: each
    joint's rotation is the product of its channel rotations in file order, position channels replace
    their OFFSET components, and a child sits at parent position + parent world rotation @ its offset."""
    positions = np.zeros((len(values), len(joints), 3))
    for t, row in enumerate(values):
        world, column = [], 0
        for j, joint in enumerate(joints):
            offset, rotation = np.array(joint.offset, dtype=np.float64), np.eye(3)
            for kind, axis in joint.channels:
                if kind == "position":
                    offset[axis] = row[column]
                else:
                    rotation = rotation @ axis_matrix(axis, row[column])
                column += 1
            if joint.parent < 0:
                positions[t, j] = offset
                world.append(rotation)
            else:
                positions[t, j] = positions[t, joint.parent] + world[joint.parent] @ offset
                world.append(world[joint.parent] @ rotation)
    return positions


def to_y_up(points: np.ndarray, up: str) -> np.ndarray:
    """The loader's documented turn to Y up (see TO_FILE_AXES)."""
    x, y, z = points[..., 0], points[..., 1], points[..., 2]
    return np.stack({"y": (x, y, z), "z": (x, z, -y), "-z": (x, -z, y), "-y": (x, -y, -z)}[up], axis=-1)


def exporter_sample(
    style: str,
    *,
    units: str | None = None,
    up: str | None = None,
    rest: str | None = None,
    six_channels: bool | None = None,
    frames: int = 60,
    fps: int = 30,
    seed: int = 0,
    posture: str = "upright",
    heading: float = 0.0,
    turn: float = 40.0,
    fingers: int = 1,
    ground_truth: bool = True,
) -> ExporterSample:
    """A BVH file as `style` (a key of EXPORTER_RIGS) writes it, by default in that exporter's usual units,
    up axis, rest pose and channels; any of them can be changed. The Frame Time is written to 7 decimals
    (0.0333333 at 30 fps). `heading` and `turn` (degrees) set where the body faces and how far it turns."""
    rig = EXPORTER_RIGS[style](fingers)
    units, up, rest = units or rig.defaults["units"], up or rig.defaults["up"], rest or rig.defaults["rest"]
    six_channels = rig.six_channels if six_channels is None else six_channels
    local, translation = canonical_motion(rig, frames, fps, seed, posture, heading, turn)
    joints, values = exported(rig, local, translation, units, up, rest, six_channels)
    order = dfs_order(rig)
    canonical = canonical_positions(rig, local, translation)[:, order]
    positions = None
    if ground_truth:
        positions = to_y_up(simple_forward_kinematics(joints, values), up) / UNITS_PER_METRE[units]
    return ExporterSample(
        text=bvh_file_text(joints, values, f"{1 / fps:.7f}"),
        joint_names=tuple(joint.name for joint in joints),
        parents=tuple(joint.parent for joint in joints),
        positions=positions,
        canonical=canonical,
        chains=rig.chains,
        scale=1 / UNITS_PER_METRE[units],
        up_axis=up,
        fps=float(fps),
    )

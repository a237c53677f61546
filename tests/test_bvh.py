"""BVH reading: forward kinematics checked against hand-computed positions, units, up axis, errors,
and the body chains found from the joint names of common rigs."""

import re

import numpy as np
import pytest
from bvh_samples import EXPORTER_RIGS, LANDMARKS, exporter_sample

from motionpatches.processors import chains_from_joint_names, load_bvh, skeleton_from_bvh
from motionpatches.processors.skeletons import CANONICAL_PART_ORDER, SKELETON_PRESETS

# Line numbers matter below: line 4 is the root OFFSET, 8 the mid OFFSET, 24-25 the two frames.
TINY_CHAIN = """\
HIERARCHY
ROOT root
{
  OFFSET 5 5 5
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT mid
  {
    OFFSET 1 0 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    JOINT tip
    {
      OFFSET 2 0 0
      CHANNELS 3 Zrotation Xrotation Yrotation
      End Site
      {
        OFFSET 1 0 0
      }
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.04
10 20 30 90 0 0 0 0 90 0 0 0
0 0 0 0 0 0 0 0 0 0 0 0
"""


def write(tmp_path, text, name="motion.bvh"):
    path = tmp_path / name
    path.write_text(text)
    return path


def load_exact(path, **kwargs):
    """File units and axes kept as they are (the tiny test rigs have no human height)."""
    return load_bvh(path, scale=1.0, up_axis="y", **kwargs)


# --- forward kinematics ------------------------------------------------------------------------


def test_tiny_chain_matches_hand_computed_positions(tmp_path):
    motion = load_exact(write(tmp_path, TINY_CHAIN))
    assert motion.joint_names == ("root", "mid", "tip")
    assert motion.parents == (-1, 0, 1)
    assert motion.positions.dtype == np.float32 and motion.positions.shape == (2, 3, 3)
    # frame 1: the root position channels replace OFFSET 5 5 5; root Rz(90) turns mid's +x offset
    # into +y; mid Ry(90) turns tip's (2, 0, 0) into (0, 0, -2), which Rz(90) leaves alone
    np.testing.assert_allclose(motion.positions[0], [[10, 20, 30], [10, 21, 30], [10, 21, 28]], atol=1e-5)
    # frame 2: no rotation, root at the origin: the offsets add up
    np.testing.assert_allclose(motion.positions[1], [[0, 0, 0], [1, 0, 0], [3, 0, 0]], atol=1e-5)
    assert motion.fps == pytest.approx(25.0)
    assert (motion.scale, motion.up_axis) == (1.0, "y")


def two_joint_rig(root_channels, values):
    return f"""\
HIERARCHY
ROOT root
{{
  OFFSET 0 0 0
  CHANNELS {root_channels}
  JOINT child
  {{
    OFFSET 1 0 0
    CHANNELS 0
    End Site
    {{
      OFFSET 1 0 0
    }}
  }}
}}
MOTION
Frames: 1
Frame Time: 0.0333333
{values}
"""


@pytest.mark.parametrize(
    "channels, values, expected_child",
    [
        # R = Rz(90) Rx(0) Ry(90): Ry sends +x to -z, Rz keeps -z
        ("3 Zrotation Xrotation Yrotation", "90 0 90", [0, 0, -1]),
        # R = Rx(0) Ry(90) Rz(90): Rz sends +x to +y, Ry keeps +y
        ("3 Xrotation Yrotation Zrotation", "0 90 90", [0, 1, 0]),
        # R = Rz(90) Rx(90) Ry(90): +x -> -z -> +y -> -x
        ("3 Zrotation Xrotation Yrotation", "90 90 90", [-1, 0, 0]),
        # R = Rx(90) Ry(90) Rz(90): +x -> +y -> +y -> +z
        ("3 Xrotation Yrotation Zrotation", "90 90 90", [0, 0, 1]),
    ],
)
def test_channel_order_sets_the_rotation_order(tmp_path, channels, values, expected_child):
    motion = load_exact(write(tmp_path, two_joint_rig(channels, values)))
    np.testing.assert_allclose(motion.positions[0, 1], expected_child, atol=1e-6)
    assert motion.fps == pytest.approx(30.0, rel=1e-5)


def test_position_channels_replace_only_their_offset_components_on_any_joint(tmp_path):
    text = TINY_CHAIN.replace("OFFSET 5 5 5", "OFFSET 5 6 7")
    text = text.replace(
        "CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation", "CHANNELS 1 Yposition"
    )
    text = text.replace(
        "OFFSET 1 0 0\n    CHANNELS 3 Zrotation Xrotation Yrotation",
        "OFFSET 1 0 0\n    CHANNELS 3 Xposition Yposition Zposition",
    )
    frames = "2 0 3 0 0 0 0\n-1 0 0 0 0 0 0\n"
    text = text.split("Frames:")[0] + "Frames: 2\nFrame Time: 0.01\n" + frames
    motion = load_exact(write(tmp_path, text))
    # frame 1: root y from its channel, x and z from the OFFSET; mid's translation is (0, 3, 0)
    np.testing.assert_allclose(motion.positions[0], [[5, 2, 7], [5, 5, 7], [7, 5, 7]], atol=1e-6)
    np.testing.assert_allclose(motion.positions[1], [[5, -1, 7], [5, -1, 7], [7, -1, 7]], atol=1e-6)
    assert motion.fps == pytest.approx(100.0)


# --- synthetic rigs -----------------------------------------------------------------------------


def mixamo_rig(prefix="mixamorig:"):
    """A Mixamo-style rig in centimetres (1.75 m tall), fingers on the left hand only."""
    p = prefix

    def arm(side, sign, hand_children):
        hand = (f"{p}{side}Hand", (sign * 25, 0, 0), hand_children)
        forearm = (f"{p}{side}ForeArm", (sign * 26, 0, 0), [hand])
        return (f"{p}{side}Shoulder", (sign * 6, 10, 0), [(f"{p}{side}Arm", (sign * 12, 0, 0), [forearm])])

    def leg(side, sign):
        toe = (f"{p}{side}ToeBase", (0, -8, 12), [(f"{p}{side}Toe_End", (0, 0, 6), [("End Site", (0, 0, 2), [])])])
        foot = (f"{p}{side}Foot", (0, -42, 0), [toe])
        return (f"{p}{side}UpLeg", (sign * 9, -6, 0), [(f"{p}{side}Leg", (0, -42, 0), [foot])])

    fingers = [
        (f"{p}LeftHandIndex1", (9, 0, 2), [(f"{p}LeftHandIndex2", (3, 0, 0), [("End Site", (2, 0, 0), [])])]),
        (f"{p}LeftHandThumb1", (3, 0, 3), [(f"{p}LeftHandThumb2", (3, 0, 0), [("End Site", (2, 0, 0), [])])]),
    ]
    head = (f"{p}Head", (0, 10, 0), [(f"{p}HeadTop_End", (0, 18, 0), [("End Site", (0, 0, 0), [])])])
    spine2 = (
        f"{p}Spine2",
        (0, 12, 0),
        [(f"{p}Neck", (0, 15, 0), [head]), arm("Left", 1, fingers), arm("Right", -1, [("End Site", (-10, 0, 0), [])])],
    )
    spine = (f"{p}Spine", (0, 10, 0), [(f"{p}Spine1", (0, 12, 0), [spine2])])
    return (f"{p}Hips", (0, 100, 0), [spine, leg("Left", 1), leg("Right", -1)])


def cmu_rig():
    """The CMU (cgspeed) BVH rig in CMU units of 1/0.45 inch, about 29 units tall."""

    def leg(s, side, sign):
        toe = (f"{side}ToeBase", (sign * 0.2, -0.4, 2.3), [("End Site", (0, 0, 1.1), [])])
        foot = (f"{side}Foot", (sign * 2.5, -7.0, 0), [toe])
        upleg = (f"{side}UpLeg", (sign * 1.6, -1.8, 0.6), [(f"{side}Leg", (sign * 2.5, -6.9, 0), [foot])])
        return (f"{s}HipJoint", (0, 0, 0), [upleg])

    def arm(s, side, sign):
        hand_children = [
            (
                f"{side}FingerBase",
                (sign * 0.7, 0, 0),
                [(f"{side}HandIndex1", (sign * 0.6, 0, 0), [("End Site", (sign * 0.5, 0, 0), [])])],
            ),
            (f"{s}Thumb", (0, 0, 0), [("End Site", (sign * 0.5, 0, 0.5), [])]),
        ]
        forearm = (f"{side}ForeArm", (sign * 5.4, 0, 0), [(f"{side}Hand", (sign * 3.5, 0, 0), hand_children)])
        return (f"{side}Shoulder", (0, 0, 0), [(f"{side}Arm", (sign * 3.2, 0.9, 0), [forearm])])

    neck = ("Neck", (0, 1.7, 0), [("Neck1", (0, 1.7, 0), [("Head", (0, 1.7, 0), [("End Site", (0, 1.7, 0), [])])])])
    spine1 = ("Spine1", (0, 2.0, 0), [neck, arm("L", "Left", 1), arm("R", "Right", -1)])
    back = ("LowerBack", (0, 2.0, -0.2), [("Spine", (0, 2.0, 0), [spine1])])
    return ("Hips", (0, 0, 0), [leg("L", "Left", 1), leg("R", "Right", -1), back])


def num_joints(rig):
    return 0 if rig[0] == "End Site" else 1 + sum(num_joints(child) for child in rig[2])


def bvh_text(
    rig,
    frames,
    root_channels="Xposition Yposition Zposition Zrotation Xrotation Yrotation",
    joint_channels="Zrotation Xrotation Yrotation",
    offset=lambda v: v,
    frame_time=1 / 30,
):
    lines = ["HIERARCHY"]

    def emit(node, depth, keyword):
        name, vector, children = node
        pad = "  " * depth
        lines.extend([f"{pad}{keyword}", f"{pad}{{", f"{pad}  OFFSET " + " ".join(f"{x:.6f}" for x in offset(vector))])
        if name != "End Site":
            channels = root_channels if depth == 0 else joint_channels
            lines.append(f"{pad}  CHANNELS {len(channels.split())} {channels}")
        for child in children:
            emit(child, depth + 1, "End Site" if child[0] == "End Site" else f"JOINT {child[0]}")
        lines.append(f"{pad}}}")

    emit(rig, 0, f"ROOT {rig[0]}")
    lines += ["MOTION", f"Frames: {len(frames)}", f"Frame Time: {frame_time:.8f}"]
    lines += [" ".join(f"{v:.6f}" for v in frame) for frame in frames]
    return "\n".join(lines) + "\n"


def scaled(rig, factor):
    name, vector, children = rig
    return (name, tuple(factor * x for x in vector), [scaled(child, factor) for child in children])


def random_frames(rig, num_frames=4, root_height=100.0, seed=0):
    rng = np.random.default_rng(seed)
    angles = rng.uniform(-40, 40, size=(num_frames, 3 * num_joints(rig)))
    root = root_height * np.column_stack(
        [rng.uniform(-0.5, 0.5, num_frames), rng.uniform(0.95, 1.05, num_frames), rng.uniform(-0.5, 0.5, num_frames)]
    )
    return np.concatenate([root, angles], axis=1)


def names_of(motion_or_names, chain):
    names = getattr(motion_or_names, "joint_names", motion_or_names)
    return [names[j] for j in chain]


# --- body chains --------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["mixamorig:", ""])
def test_mixamo_rig_chains_skip_fingers_and_start_arms_at_the_spine_branch(tmp_path, prefix):
    rig = mixamo_rig(prefix)
    path = write(tmp_path, bvh_text(rig, random_frames(rig)), name="walk_01.bvh")
    motion = load_bvh(path)
    assert len(motion.joint_names) == 29 and not any("End Site" in name for name in motion.joint_names)
    skeleton = skeleton_from_bvh(motion)
    assert skeleton.name == "walk_01" and skeleton.fps == pytest.approx(30.0)
    assert tuple(skeleton.chains) == CANONICAL_PART_ORDER
    expected = {
        "torso": ["Hips", "Spine", "Spine1", "Spine2", "Neck", "Head"],
        "left_arm": ["Spine2", "LeftShoulder", "LeftArm", "LeftForeArm", "LeftHand"],
        "right_arm": ["Spine2", "RightShoulder", "RightArm", "RightForeArm", "RightHand"],
        "left_leg": ["Hips", "LeftUpLeg", "LeftLeg", "LeftFoot", "LeftToeBase"],
        "right_leg": ["Hips", "RightUpLeg", "RightLeg", "RightFoot", "RightToeBase"],
    }
    for part, chain in skeleton.chains.items():
        assert names_of(motion, chain) == [prefix + name for name in expected[part]], part
    # from the names alone (no hierarchy) the same chains come out
    assert chains_from_joint_names(motion.joint_names) == skeleton.chains


def test_cmu_rig_chains_and_cmu_units(tmp_path):
    rig = cmu_rig()
    frames = random_frames(rig, root_height=17.0)
    motion = load_bvh(
        write(
            tmp_path,
            bvh_text(
                rig,
                frames,
                "Xposition Yposition Zposition Zrotation Yrotation Xrotation",
                "Zrotation Yrotation Xrotation",
            ),
        )
    )
    assert motion.scale == pytest.approx(0.0254 / 0.45) and motion.up_axis == "y"
    assert 0.8 < motion.positions[0, 0, 1] < 1.1  # hips ~17 CMU units above the origin
    chains = skeleton_from_bvh(motion).chains
    assert names_of(motion, chains["torso"]) == ["Hips", "LowerBack", "Spine", "Spine1", "Neck", "Neck1", "Head"]
    assert names_of(motion, chains["left_arm"]) == ["Spine1", "LeftShoulder", "LeftArm", "LeftForeArm", "LeftHand"]
    assert names_of(motion, chains["right_leg"]) == [
        "Hips",
        "RHipJoint",
        "RightUpLeg",
        "RightLeg",
        "RightFoot",
        "RightToeBase",
    ]
    assert chains_from_joint_names(motion.joint_names) == chains


SMPL_PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19]


@pytest.mark.parametrize("parents", [SMPL_PARENTS, None])
def test_smpl_names_give_the_humanml3d_preset_chains(parents):
    preset = SKELETON_PRESETS["humanml3d"]
    assert chains_from_joint_names(preset.joint_names, parents) == preset.chains


@pytest.mark.parametrize(
    "names, expected",
    [
        (  # 3ds Max Biped: prefix with a space, helpers ending in "Nub"
            [
                "Bip01",
                "Bip01 Pelvis",
                "Bip01 Spine",
                "Bip01 Spine1",
                "Bip01 Neck",
                "Bip01 Head",
                "Bip01 HeadNub",
                "Bip01 L Clavicle",
                "Bip01 L UpperArm",
                "Bip01 L Forearm",
                "Bip01 L Hand",
                "Bip01 L Finger0",
                "Bip01 R Clavicle",
                "Bip01 R UpperArm",
                "Bip01 R Forearm",
                "Bip01 R Hand",
                "Bip01 L Thigh",
                "Bip01 L Calf",
                "Bip01 L Foot",
                "Bip01 L Toe0",
                "Bip01 L Toe0Nub",
                "Bip01 R Thigh",
                "Bip01 R Calf",
                "Bip01 R Foot",
                "Bip01 R Toe0",
            ],
            {
                "torso": ["Bip01 Pelvis", "Bip01 Spine", "Bip01 Spine1", "Bip01 Neck", "Bip01 Head"],
                "left_arm": ["Bip01 Spine1", "Bip01 L Clavicle", "Bip01 L UpperArm", "Bip01 L Forearm", "Bip01 L Hand"],
                "right_leg": ["Bip01 Pelvis", "Bip01 R Thigh", "Bip01 R Calf", "Bip01 R Foot", "Bip01 R Toe0"],
            },
        ),
        (  # lower-case with side prefixes, no toes
            [
                "root",
                "pelvis",
                "spine",
                "chest",
                "neck",
                "head",
                "l_shoulder",
                "l_elbow",
                "l_wrist",
                "r_shoulder",
                "r_elbow",
                "r_wrist",
                "L_Hip",
                "l_knee",
                "l_ankle",
                "R_Hip",
                "r_knee",
                "r_ankle",
            ],
            {
                "torso": ["pelvis", "spine", "chest", "neck", "head"],
                "right_arm": ["chest", "r_shoulder", "r_elbow", "r_wrist"],
                "left_leg": ["pelvis", "L_Hip", "l_knee", "l_ankle"],
            },
        ),
        (  # MotionBuilder prefix, thigh / shin words
            [
                "Character1_Hips",
                "Character1_Spine",
                "Character1_Neck",
                "Character1_Head",
                "Character1_LeftShoulder",
                "Character1_LeftArm",
                "Character1_LeftForeArm",
                "Character1_LeftHand",
                "Character1_RightShoulder",
                "Character1_RightArm",
                "Character1_RightForeArm",
                "Character1_RightHand",
                "Character1_LeftThigh",
                "Character1_LeftShin",
                "Character1_LeftFoot",
                "Character1_LeftToe",
                "Character1_RightThigh",
                "Character1_RightShin",
                "Character1_RightFoot",
                "Character1_RightToe",
            ],
            {
                "left_arm": [
                    "Character1_Spine",
                    "Character1_LeftShoulder",
                    "Character1_LeftArm",
                    "Character1_LeftForeArm",
                    "Character1_LeftHand",
                ],
                "left_leg": [
                    "Character1_Hips",
                    "Character1_LeftThigh",
                    "Character1_LeftShin",
                    "Character1_LeftFoot",
                    "Character1_LeftToe",
                ],
            },
        ),
        (  # Unreal: side suffixes, twist helpers and fingers left out
            [
                "root",
                "pelvis",
                "spine_01",
                "spine_02",
                "spine_03",
                "neck_01",
                "head",
                "clavicle_l",
                "upperarm_l",
                "upperarm_twist_01_l",
                "lowerarm_l",
                "hand_l",
                "index_01_l",
                "clavicle_r",
                "upperarm_r",
                "lowerarm_r",
                "hand_r",
                "thigh_l",
                "calf_l",
                "foot_l",
                "ball_l",
                "thigh_r",
                "calf_r",
                "foot_r",
                "ball_r",
            ],
            {
                "torso": ["pelvis", "spine_01", "spine_02", "spine_03", "neck_01", "head"],
                "left_arm": ["spine_03", "clavicle_l", "upperarm_l", "lowerarm_l", "hand_l"],
                "right_leg": ["pelvis", "thigh_r", "calf_r", "foot_r", "ball_r"],
            },
        ),
        (  # glued lower- and upper-case words
            [
                "HIPS",
                "SPINE",
                "NECK",
                "HEAD",
                "lshoulder",
                "leftarm",
                "lforearm",
                "lefthand",
                "RSHOULDER",
                "RIGHTARM",
                "RFOREARM",
                "RIGHTHAND",
                "lupleg",
                "lknee",
                "lfoot",
                "rupleg",
                "rknee",
                "rfoot",
            ],
            {
                "left_arm": ["SPINE", "lshoulder", "leftarm", "lforearm", "lefthand"],
                "right_arm": ["SPINE", "RSHOULDER", "RIGHTARM", "RFOREARM", "RIGHTHAND"],
                "left_leg": ["HIPS", "lupleg", "lknee", "lfoot"],
            },
        ),
    ],
)
def test_common_naming_styles_from_names_alone(names, expected):
    chains = chains_from_joint_names(names)
    assert tuple(chains) == CANONICAL_PART_ORDER
    for part, chain_names in expected.items():
        assert names_of(names, chains[part]) == chain_names, part


UNUSUAL_NAMES = [
    "jnt_a1",
    "jnt_a2",
    "jnt_a3",
    "jnt_b1",
    "jnt_b2",
    "jnt_c1",
    "jnt_c2",
    "jnt_d1",
    "jnt_d2",
    "jnt_e1",
    "jnt_e2",
]
UNUSUAL_PARENTS = [-1, 0, 1, 2, 3, 2, 5, 0, 7, 0, 9]


def test_unusual_names_fail_clearly_then_work_with_a_mapping():
    with pytest.raises(ValueError) as error:
        chains_from_joint_names(UNUSUAL_NAMES, UNUSUAL_PARENTS)
    message = str(error.value)
    assert "['torso', 'left_arm', 'right_arm', 'left_leg', 'right_leg']" in message
    assert "jnt_e2" in message and "mapping=" in message
    mapping = {
        "torso": ["jnt_a1", "jnt_a2", "jnt_a3"],
        "left_arm": ["jnt_a3", "jnt_b1", "jnt_b2"],
        "right_arm": ["jnt_a3", "jnt_c1", "jnt_c2"],
        "left_leg": ["jnt_a1", "jnt_d1", "jnt_d2"],
        "right_leg": ["jnt_a1", "jnt_e1", "jnt_e2"],
    }
    chains = chains_from_joint_names(UNUSUAL_NAMES, UNUSUAL_PARENTS, mapping=mapping)
    assert chains == {
        "torso": (0, 1, 2),
        "left_arm": (2, 3, 4),
        "right_arm": (2, 5, 6),
        "left_leg": (0, 7, 8),
        "right_leg": (0, 9, 10),
    }


def test_a_partial_mapping_fills_in_only_what_is_missing(tmp_path):
    rig = mixamo_rig("")
    text = bvh_text(rig, random_frames(rig)).replace("JOINT Head", "JOINT jnt_h")
    motion = load_bvh(write(tmp_path, text))
    with pytest.raises(ValueError, match=r"\['torso'\]"):
        skeleton_from_bvh(motion)
    torso = ["Hips", "Spine", "Spine1", "Spine2", "Neck", "jnt_h"]
    skeleton = skeleton_from_bvh(motion, mapping={"torso": torso}, name="custom")
    assert skeleton.name == "custom"
    assert names_of(motion, skeleton.chains["torso"]) == torso
    assert names_of(motion, skeleton.chains["left_arm"]) == [
        "Spine2",
        "LeftShoulder",
        "LeftArm",
        "LeftForeArm",
        "LeftHand",
    ]
    with pytest.raises(ValueError, match="jnt_x"):
        skeleton_from_bvh(motion, mapping={"torso": ["Hips", "jnt_x"]})
    with pytest.raises(ValueError, match="unknown parts"):
        skeleton_from_bvh(motion, mapping={"tail": ["Hips"]})


# --- units and up axis --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "units_per_metre, expected_scale",
    [(100.0, 0.01), (1.0, 1.0), (1000.0, 0.001), (0.45 / 0.0254, 0.0254 / 0.45), (1 / 0.0254, 0.0254)],
)
def test_units_are_detected_from_the_bone_lengths(tmp_path, units_per_metre, expected_scale):
    rig_cm = mixamo_rig()
    frames_cm = random_frames(rig_cm)
    reference = load_bvh(write(tmp_path, bvh_text(rig_cm, frames_cm), "cm.bvh"))
    assert reference.scale == pytest.approx(0.01)

    factor = units_per_metre / 100.0
    frames = frames_cm.copy()
    frames[:, :3] *= factor
    motion = load_bvh(write(tmp_path, bvh_text(scaled(rig_cm, factor), frames), "other.bvh"))
    assert motion.scale == pytest.approx(expected_scale)
    np.testing.assert_allclose(motion.positions, reference.positions, atol=1e-4)
    assert 0.9 < reference.positions[:, 0, 1].mean() < 1.1  # hips about 1 m up


def test_explicit_scale_overrides_detection(tmp_path):
    rig = mixamo_rig()
    path = write(tmp_path, bvh_text(rig, random_frames(rig)))
    detected = load_bvh(path)
    raw = load_bvh(path, scale=1.0)
    doubled = load_bvh(path, scale=0.02)
    assert (raw.scale, doubled.scale) == (1.0, 0.02)
    np.testing.assert_allclose(raw.positions, detected.positions * 100, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(doubled.positions, detected.positions * 2, rtol=1e-5, atol=1e-5)


def test_ambiguous_height_asks_for_a_scale(tmp_path):
    rig = scaled(mixamo_rig(), 0.1)  # decimetres: 17.5 units tall, about 2 m along the bones
    path = write(tmp_path, bvh_text(rig, random_frames(rig, root_height=10.0)))
    with pytest.raises(ValueError, match="scale=") as error:
        load_bvh(path)
    # the message gives the length it measured and between which two points: check it along the rig's bones
    found = re.search(r"measures ([\d.]+) file units from .*\('(.+?)'\) to .*\('(.+?)'\)", str(error.value))
    size, lowest, highest = float(found.group(1)), found.group(2), found.group(3)
    assert size == pytest.approx(bone_path_length(rig, lowest, highest), rel=1e-3)
    assert 17.5 < size < 25  # between the metre and CMU bands
    assert 0.9 < load_bvh(path, scale=0.1).positions[:, 0, 1].mean() < 1.1


def bone_path_length(rig, a, b):
    """Length along the bones between two points of a nested rig; End Sites are named "End Site of <joint>"."""
    parents, offsets = {}, {}

    def walk(node, parent):
        name = f"End Site of {parent}" if node[0] == "End Site" else node[0]
        parents[name], offsets[name] = parent, np.linalg.norm(node[1])
        for child in node[2]:
            walk(child, name)

    walk(rig, None)

    def up_path(name):
        path = [name]
        while parents[path[-1]] is not None:
            path.append(parents[path[-1]])
        return path

    path_a, path_b = up_path(a), up_path(b)
    shared = next(name for name in path_a if name in path_b)
    return sum(offsets[n] for n in path_a[: path_a.index(shared)]) + sum(
        offsets[n] for n in path_b[: path_b.index(shared)]
    )


def z_up(vector):
    """A Y-up vector in the frame of a Z-up file: the inverse of (x, y, z) -> (x, z, -y)."""
    x, y, z = vector
    return (x, -z, y)


def test_z_up_file_matches_its_y_up_twin(tmp_path):
    rig = mixamo_rig()
    frames = random_frames(rig)
    y_up = load_bvh(write(tmp_path, bvh_text(rig, frames), "y.bvh"))

    # the same motion written Z up: offsets and root positions moved into the Z-up frame, and
    # Rz(a) Rx(b) Ry(c) in Y up is Ry(-a) Rx(b) Rz(c) in Z up
    twin = frames.copy()
    twin[:, :3] = [z_up(p) for p in frames[:, :3]]
    twin[:, 3::3] = -frames[:, 3::3]
    text = bvh_text(
        rig,
        twin,
        "Xposition Yposition Zposition Yrotation Xrotation Zrotation",
        "Yrotation Xrotation Zrotation",
        offset=z_up,
    )
    path = write(tmp_path, text, "z.bvh")
    motion = load_bvh(path)
    assert (motion.up_axis, y_up.up_axis) == ("z", "y")
    assert motion.scale == pytest.approx(0.01)
    np.testing.assert_allclose(motion.positions, y_up.positions, atol=1e-5)

    forced = load_bvh(path, up_axis="y", scale=0.01)
    assert forced.up_axis == "y"
    assert not np.allclose(forced.positions, y_up.positions, atol=1e-2)
    np.testing.assert_allclose(forced.positions[..., 2], y_up.positions[..., 1], atol=1e-5)


# --- files as exporters write them ---------------------------------------------------------------
# `exporter_sample` writes a plausible motion of a person (metres, Y up, the lowest point on the floor)
# the way an exporter would, and reads the numbers back with its own per-frame forward kinematics.


def load_sample(tmp_path, sample, name="export.bvh", **kwargs):
    return load_bvh(write(tmp_path, sample.text, name), **kwargs)


def assert_loaded_as_written(motion, sample):
    assert motion.joint_names == sample.joint_names and motion.parents == sample.parents
    assert motion.scale == pytest.approx(sample.scale, rel=1e-12) and motion.up_axis == sample.up_axis
    np.testing.assert_allclose(motion.positions, sample.positions, atol=1e-5)


def assert_upright_on_the_floor(motion, head, feet):
    """Metres with Y up, whatever the helper says: the body stands on Y = 0, the head 1.3-1.8 m above the feet."""
    names = list(motion.joint_names)
    rise = motion.positions[:, names.index(head), 1] - motion.positions[:, [names.index(f) for f in feet], 1].mean(1)
    assert motion.positions[..., 1].min() > -1e-5 and 1.3 < rise.min() and rise.max() < 1.8


def rest_offset(sample, joint):
    """The unit OFFSET a joint is written with: its bone's direction in the rest pose."""
    offset = np.array(
        re.search(rf"JOINT {re.escape(joint)}\n\s*{{\n\s*OFFSET (.+)\n", sample.text).group(1).split(), float
    )
    return offset / np.linalg.norm(offset)


@pytest.mark.parametrize("style", EXPORTER_RIGS)
def test_exporter_samples_read_back_the_motion_they_were_made_from(style):
    """The test helper itself: its per-frame kinematics on the numbers written give back the canonical motion."""
    sample = exporter_sample(style)
    np.testing.assert_allclose(sample.positions, sample.canonical, atol=1e-6)


@pytest.mark.parametrize("style", EXPORTER_RIGS)
def test_exporter_files_load_in_metres_y_up_with_their_frame_rate_and_chains(tmp_path, style):
    sample = exporter_sample(style)
    motion = load_sample(tmp_path, sample, f"{style}.bvh")
    assert_loaded_as_written(motion, sample)
    assert "Frame Time: 0.0333333\n" in sample.text and motion.fps == 30.0
    chains = skeleton_from_bvh(motion).chains
    assert {part: names_of(motion, chain) for part, chain in chains.items()} == sample.chains
    head, feet = sample.chains["torso"][-1], [sample.chains[leg][-1] for leg in ("left_leg", "right_leg")]
    assert_upright_on_the_floor(motion, head, feet)


@pytest.mark.parametrize(
    "rest, up, bone",  # bone: where the rest pose points Character1_Spine's bone, in the file's axes
    [
        ("+x", "z", [1, 0, 0]),
        ("+x", "y", [1, 0, 0]),
        ("+z", "y", [0, 0, 1]),
        ("upside_down", "y", [0, -1, 0]),
        ("upside_down", "z", [0, 0, -1]),
        ("bones", "z", [1, 0, 0]),
        ("bones", "y", [1, 0, 0]),
    ],
)
def test_the_rest_pose_orientation_does_not_matter(tmp_path, rest, up, bone):
    sample = exporter_sample("motionbuilder", rest=rest, up=up, seed=1)
    np.testing.assert_allclose(rest_offset(sample, "Character1_Spine"), bone, atol=1e-6)
    assert_loaded_as_written(load_sample(tmp_path, sample), sample)


@pytest.mark.parametrize("style", ["game", "mixamo"])
@pytest.mark.parametrize(
    "units, scale", [("cm", 0.01), ("m", 1.0), ("mm", 0.001), ("inch", 0.0254), ("cmu", 0.0254 / 0.45)]
)
def test_units_of_exporter_files(tmp_path, style, units, scale):
    sample = exporter_sample(style, units=units, seed=2)
    motion = load_sample(tmp_path, sample)
    assert motion.scale == pytest.approx(scale, rel=1e-12)
    assert_loaded_as_written(motion, sample)


@pytest.mark.parametrize("style, six_channels", [("mixamo", True), ("biped", True), ("motionbuilder", False)])
def test_position_channels_on_every_joint_or_only_on_the_root(tmp_path, style, six_channels):
    sample = exporter_sample(style, six_channels=six_channels, seed=3)
    counts = re.findall(r"CHANNELS (\d)", sample.text)
    assert counts.count("6") == (len(counts) if six_channels else 2 if style == "motionbuilder" else 1)
    assert_loaded_as_written(load_sample(tmp_path, sample), sample)


def test_a_root_at_the_origin_above_the_hips(tmp_path):
    sample = exporter_sample("motionbuilder", seed=4)
    motion = load_sample(tmp_path, sample)
    assert motion.joint_names[:2] == ("Reference", "Character1_Hips") and motion.parents[:2] == (-1, 0)
    np.testing.assert_allclose(motion.positions[:, 0], 0, atol=1e-6)
    assert skeleton_from_bvh(motion).chains["torso"][0] == 1  # the chains start at the hips
    assert_loaded_as_written(motion, sample)


def test_without_known_joint_names_the_hierarchy_finds_the_body(tmp_path):
    sample = exporter_sample("motionbuilder", seed=5)
    renamed = {name: f"jnt_{i}" for i, name in enumerate(sample.joint_names)}
    text = re.sub(r"(ROOT|JOINT) (\S+)", lambda m: f"{m.group(1)} {renamed[m.group(2)]}", sample.text)
    motion = load_bvh(write(tmp_path, text))
    with pytest.raises(ValueError, match="mapping"):
        skeleton_from_bvh(motion)
    assert motion.joint_names == tuple(renamed.values())
    assert motion.scale == pytest.approx(sample.scale) and motion.up_axis == sample.up_axis
    np.testing.assert_allclose(motion.positions, sample.positions, atol=1e-5)


@pytest.mark.parametrize("up", ["-y", "-z"])
def test_a_downward_up_axis_is_refused_then_read_when_given(tmp_path, up):
    sample = exporter_sample("mixamo", up=up, seed=6)
    path = write(tmp_path, sample.text)
    with pytest.raises(ValueError, match=rf"head is below the feet along {up[1].upper()}.*--bvh_up_axis"):
        load_bvh(path)
    motion = load_bvh(path, up_axis=up)
    assert_loaded_as_written(motion, sample)
    assert_upright_on_the_floor(motion, "mixamorig:Head", ["mixamorig:LeftToeBase", "mixamorig:RightToeBase"])


def test_up_axis_accepts_signs_and_case_and_refuses_the_rest(tmp_path):
    sample = exporter_sample("motionbuilder", seed=7)
    path = write(tmp_path, sample.text)
    np.testing.assert_allclose(load_bvh(path, up_axis="+Z").positions, sample.positions, atol=1e-5)
    with pytest.raises(ValueError, match="up_axis must be one of"):
        load_bvh(path, up_axis="w")


def feet_to_head(positions, names, head, feet):
    """The clip's mean unit direction from the feet to the head, as the loader should report it."""
    direction = positions[:, names.index(head)] - positions[:, [names.index(f) for f in feet]].mean(axis=1)
    return (direction / np.linalg.norm(direction, axis=1, keepdims=True)).mean(axis=0)


@pytest.mark.parametrize(
    "heading, reason",
    [
        (90, "the body lies along X"),  # head towards +X
        (45, "degrees from the nearest axis, more than 35"),  # between X and Z
        (0, "a body lying on a floor"),  # along Z, as if standing in a Z-up file: the floor along Y says otherwise
    ],
)
def test_a_clip_lying_on_the_floor_asks_for_the_up_axis(tmp_path, heading, reason):
    sample = exporter_sample("mixamo", posture="lying", heading=heading, turn=0, seed=8)
    path = write(tmp_path, sample.text)
    with pytest.raises(ValueError) as error:
        load_bvh(path)
    message = str(error.value)
    assert reason in message and "up_axis='y'" in message and "--bvh_up_axis" in message, message
    head, feet = "mixamorig:Head", ["mixamorig:LeftToeBase", "mixamorig:RightToeBase"]
    measured = feet_to_head(sample.positions, list(sample.joint_names), head, feet)  # a Y-up file: the file's axes
    assert "averages ({:.2f}, {:.2f}, {:.2f})".format(*measured) in message, message
    angle = np.degrees(np.arccos(np.abs(measured).max() / np.linalg.norm(measured)))
    assert heading != 45 or f" {angle:.0f} degrees from" in message, message
    assert_loaded_as_written(load_bvh(path, up_axis="y"), sample)


def test_a_rig_that_is_not_a_person_asks_for_both(tmp_path):
    lines = [
        "HIERARCHY",
        "ROOT seg0",
        "{",
        "OFFSET 0 0 0",
        "CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation",
    ]
    for i in range(1, 8):
        lines += [f"JOINT seg{i}", "{", "OFFSET 10 0 0", "CHANNELS 3 Zrotation Xrotation Yrotation"]
    lines += ["End Site", "{", "OFFSET 10 0 0", "}", *["}"] * 8, "MOTION", "Frames: 3", "Frame Time: 0.0333333"]
    lines += [" ".join(["0"] * 3 + [str(5 * f)] * 24) for f in range(3)]
    path = write(tmp_path, "\n".join(lines) + "\n")
    for kwargs, missing in [
        ({}, "up axis and length unit"),
        ({"scale": 0.01}, "up axis"),
        ({"up_axis": "y"}, "length unit"),
    ]:
        with pytest.raises(
            ValueError, match=rf"cannot detect the {missing} of this rig \(8 joints\).*up_axis=.*--bvh_scale"
        ):
            load_bvh(path, **kwargs)
    motion = load_bvh(path, scale=0.01, up_axis="z")
    assert motion.positions.shape == (3, 8, 3) and motion.fps == 30.0


def test_a_size_between_unit_bands_asks_for_the_scale(tmp_path):
    sample = exporter_sample("motionbuilder", units="dm", seed=9)
    path = write(tmp_path, sample.text)
    with pytest.raises(ValueError) as error:
        load_bvh(path)
    message = str(error.value)
    assert "scale=" in message and "--bvh_scale" in message and "toeBase'" not in message, message
    # walking, the toe tips are lowest and the top of the head highest: the body measures their path along
    # the bones, here from the canonical rig's landmarks in decimetres
    keys = [
        "l_toe_end",
        "l_toe",
        "l_foot",
        "l_calf",
        "l_thigh",
        "hips",
        "spine",
        "spine1",
        "spine2",
        "neck",
        "head",
        "head_top",
    ]
    expected = 10 * sum(np.linalg.norm(np.subtract(LANDMARKS[a], LANDMARKS[b])) for a, b in zip(keys, keys[1:]))
    size = float(re.search(r"measures ([\d.]+) file units", message).group(1))
    assert size == pytest.approx(expected, rel=1e-3)
    assert "ToeBase'" in message and "End Site of Character1_Head" in message
    assert_loaded_as_written(load_bvh(path, scale=0.1), sample)


@pytest.mark.parametrize(
    "frame_time, fps",
    [
        ("0.0333333", 30.0),
        ("0.0416667", 24.0),
        ("0.00833333", 120.0),
        ("0.04", 25.0),
        ("0.0333", 30.0),
        ("0.0417083", 1 / 0.0417083),
    ],
)
def test_frame_times_written_to_few_digits_give_whole_frame_rates(tmp_path, frame_time, fps):
    motion = load_exact(write(tmp_path, TINY_CHAIN.replace("Frame Time: 0.04", f"Frame Time: {frame_time}")))
    assert motion.fps == fps


# --- malformed files ----------------------------------------------------------------------------


def assert_error(tmp_path, text, line, *fragments):
    path = write(tmp_path, text, "broken.bvh")
    with pytest.raises(ValueError) as error:
        load_exact(path)
    message = str(error.value)
    assert str(path) in message and f"line {line}:" in message, message
    for fragment in fragments:
        assert fragment in message, message


def test_truncated_motion_names_the_last_line(tmp_path):
    lines = TINY_CHAIN.splitlines()
    assert_error(tmp_path, "\n".join(lines[:24]) + "\n", 24, "ends after 1 of the 2 frames")


def test_truncated_hierarchy(tmp_path):
    lines = TINY_CHAIN.splitlines()
    assert_error(tmp_path, "\n".join(lines[:12]) + "\n", 12, "the file ends", "'CHANNELS'")


def test_wrong_number_of_values_on_a_frame_line(tmp_path):
    text = TINY_CHAIN.replace("0 0 0 0 0 0 0 0 0 0 0 0\n", "0 0 0 0 0 0 0 0 0 0 0\n")
    assert_error(tmp_path, text, 25, "frame 2 has 11 values, expected 12")


def test_extra_frame_line(tmp_path):
    assert_error(tmp_path, TINY_CHAIN + "1 2 3 4 5 6 7 8 9 10 11 12\n", 26, "more frame lines than the 2")


def test_bad_keyword(tmp_path):
    text = TINY_CHAIN.replace("    OFFSET 1 0 0", "    OFSET 1 0 0")
    assert_error(tmp_path, text, 8, "expected 'OFFSET'", "'OFSET'")


def test_unknown_channel(tmp_path):
    text = TINY_CHAIN.replace(
        "CHANNELS 3 Zrotation Xrotation Yrotation\n    JOINT", "CHANNELS 3 Zrotation Xrot Yrotation\n    JOINT"
    )
    assert_error(tmp_path, text, 9, "unknown channel 'Xrot'", "'mid'")


def test_non_numeric_frame_value(tmp_path):
    text = TINY_CHAIN.replace("10 20 30 90", "10 abc 30 90")
    assert_error(tmp_path, text, 24, "frame 1", "'abc'")


def test_non_numeric_offset(tmp_path):
    text = TINY_CHAIN.replace("OFFSET 2 0 0", "OFFSET 2 zero 0")
    assert_error(tmp_path, text, 12, "'zero'", "OFFSET")


def test_bad_frame_header(tmp_path):
    assert_error(tmp_path, TINY_CHAIN.replace("Frame Time: 0.04", "Frame Time: fast"), 23, "Frame Time")


def test_missing_file(tmp_path):
    path = tmp_path / "nowhere.bvh"
    with pytest.raises(FileNotFoundError, match="nowhere.bvh"):
        load_bvh(path)


def test_a_non_ascii_digit_channel_count_names_the_line(tmp_path):
    assert_error(tmp_path, TINY_CHAIN.replace("CHANNELS 3", "CHANNELS \u00b2", 1), 9, "channel count", "'\u00b2'")


def test_a_channel_count_above_six_names_the_line(tmp_path):
    assert_error(tmp_path, TINY_CHAIN.replace("CHANNELS 3", "CHANNELS 7", 1), 9, "channel count", "(0-6)")


def test_duplicate_joint_names_are_refused_with_both_lines(tmp_path):
    text = TINY_CHAIN.replace("JOINT tip", "JOINT mid")
    assert_error(tmp_path, text, 10, "joint name 'mid' is used twice (lines 6 and 10)", "rename")


@pytest.mark.parametrize("frame_time", ["1e-7", "10000", "0.0009", "1.5"])
def test_frame_rates_outside_the_accepted_range_name_the_line(tmp_path, frame_time):
    text = TINY_CHAIN.replace("Frame Time: 0.04", f"Frame Time: {frame_time}")
    assert_error(tmp_path, text, 23, "1 to 1000 frames per second", "Frame Time 0.001 to 1 s")


@pytest.mark.parametrize("frame_time, fps", [("1", 1.0), ("0.001", 1000.0)])
def test_the_ends_of_the_frame_rate_range_are_accepted(tmp_path, frame_time, fps):
    motion = load_exact(write(tmp_path, TINY_CHAIN.replace("Frame Time: 0.04", f"Frame Time: {frame_time}")))
    assert motion.fps == fps


def test_deep_nesting_is_read_without_recursion(tmp_path):
    depth = 3000  # far beyond Python's default recursion limit of 1000
    lines = ["HIERARCHY", "ROOT j0", "{", "OFFSET 0 0 0", "CHANNELS 3 Zrotation Xrotation Yrotation"]
    for i in range(1, depth):
        lines += [f"JOINT j{i}", "{", "OFFSET 0 1 0", "CHANNELS 3 Zrotation Xrotation Yrotation"]
    lines += ["End Site", "{", "OFFSET 0 1 0", "}", *["}"] * depth, "MOTION", "Frames: 1", "Frame Time: 0.04"]
    lines.append(" ".join(["0"] * 3 * depth))
    motion = load_exact(write(tmp_path, "\n".join(lines) + "\n"))
    assert motion.parents == (-1, *range(depth - 1))
    np.testing.assert_allclose(motion.positions[0, :, 1], np.arange(depth))


def test_repeated_joint_names_are_refused_before_any_chain_is_built():
    names = ["Hips", "Spine", "Head", "LeftHand", "RightHand", "LeftFoot", "RightFoot", "LeftFoot"]
    with pytest.raises(ValueError, match="'LeftFoot' is joint 5 and joint 7; rename one"):
        chains_from_joint_names(names)

"""Mirroring: joint partners from every preset's chains and names, the reflected motion checked column by column
and against the demo's own hand-written mirror, and the caption's side words swapped on a table of examples."""

import re

import numpy as np
import pytest
from bvh_samples import EXPORTER_RIGS

from motionpatches.processors import SKELETON_PRESETS, Skeleton
from motionpatches.processors.mirroring import mirror_caption, mirror_motion, mirror_permutation, side_words
from motionpatches.training.data.demo import body

# a rig with none of the canonical part names: camel-case arms, Blender-style legs, its own centre chain, and a
# thumb outside the chains that pairs by name
CUSTOM = Skeleton.from_dict(
    {
        "name": "custom-rig",
        "joint_names": [
            "Hips",
            "Spine",
            "Head",
            "LeftShoulder",
            "LeftElbow",
            "LeftHand",
            "RightShoulder",
            "RightElbow",
            "RightHand",
            "thigh.L",
            "shin.L",
            "thigh.R",
            "shin.R",
            "LeftThumb",
            "RightThumb",
        ],
        "chains": {
            "Backbone": ["Hips", "Spine", "Head"],
            "RightArmChain": ["Spine", "RightShoulder", "RightElbow", "RightHand"],
            "LeftArmChain": ["Spine", "LeftShoulder", "LeftElbow", "LeftHand"],
            "leg.L": ["Hips", "thigh.L", "shin.L"],
            "leg.R": ["Hips", "thigh.R", "shin.R"],
        },
    }
)
# (left part, right part) of each skeleton, written out by hand
SIDE_PARTS = {name: [("left_arm", "right_arm"), ("left_leg", "right_leg")] for name in SKELETON_PRESETS}
SKELETONS = {**SKELETON_PRESETS, "custom-rig": CUSTOM}
SIDE_PARTS["custom-rig"] = [("LeftArmChain", "RightArmChain"), ("leg.L", "leg.R")]


def random_motion(skeleton, frames=7, persons=None, seed=0):
    shape = (frames, skeleton.num_joints, 3) if persons is None else (frames, persons, skeleton.num_joints, 3)
    return np.random.default_rng(seed).normal(size=shape)


@pytest.mark.parametrize("name", SKELETONS)
def test_permutation_is_an_involution_that_fixes_the_centre(name):
    skeleton = SKELETONS[name]
    permutation = mirror_permutation(skeleton)
    assert sorted(permutation) == list(range(skeleton.num_joints))
    assert all(permutation[permutation[j]] == j for j in range(skeleton.num_joints))
    centre = skeleton.chains.get("torso", skeleton.chains.get("Backbone"))
    assert all(permutation[j] == j for j in centre)
    # every joint that moves has a partner whose name is its own but for the side
    for j, k in enumerate(permutation):
        if j != k:
            a, b = skeleton.joint_names[j], skeleton.joint_names[k]
            assert a != b and without_side(a) == without_side(b), (a, b)


def without_side(name):
    name = re.sub("left|right", "#", name, flags=re.IGNORECASE)
    return re.sub("(?<![A-Za-z])[LlRr](?![a-z])", "#", name)


@pytest.mark.parametrize("name", SKELETONS)
def test_mirrored_side_chains_are_the_other_side_with_x_negated(name):
    skeleton = SKELETONS[name]
    motion = random_motion(skeleton)
    mirrored = mirror_motion(motion, skeleton)
    flip = np.array([-1.0, 1.0, 1.0])
    for left, right in SIDE_PARTS[name]:
        left_chain, right_chain = list(skeleton.chains[left]), list(skeleton.chains[right])
        np.testing.assert_array_equal(mirrored[:, left_chain], motion[:, right_chain] * flip)
        np.testing.assert_array_equal(mirrored[:, right_chain], motion[:, left_chain] * flip)
    np.testing.assert_array_equal(mirror_motion(mirrored, skeleton), motion)


@pytest.mark.parametrize("name", SKELETONS)
def test_two_persons_are_each_mirrored_and_keep_their_order(name):
    skeleton = SKELETONS[name]
    motion = random_motion(skeleton, persons=2)
    mirrored = mirror_motion(motion, skeleton)
    for person in range(2):
        np.testing.assert_array_equal(mirrored[:, person], mirror_motion(motion[:, person], skeleton))
    np.testing.assert_array_equal(mirror_motion(mirrored, skeleton), motion)


def test_the_demo_bodys_own_mirror_agrees():
    # body.MIRROR was written by hand for the demo generator, independently of the chains
    assert mirror_permutation("humanml3d") == body.MIRROR
    motion = random_motion(SKELETON_PRESETS["humanml3d"], frames=11, seed=3)
    np.testing.assert_array_equal(mirror_motion(motion, "humanml3d"), body.mirror(motion))


def pairs(name):
    skeleton = SKELETONS[name]
    permutation = mirror_permutation(skeleton)
    return {(skeleton.joint_names[j], skeleton.joint_names[k]) for j, k in enumerate(permutation) if j < k}


def test_kit_pairs_its_letter_prefixed_names():
    assert pairs("kit") == {
        ("LS", "RS"),
        ("LE", "RE"),
        ("LW", "RW"),
        ("LH", "RH"),
        ("LK", "RK"),
        ("LA", "RA"),
        ("LMrot", "RMrot"),
        ("LF", "RF"),
    }


def test_joints_outside_the_chains_pair_by_name():
    smplx = pairs("smplx")
    for finger in ("index", "middle", "pinky", "ring", "thumb"):
        for i in (1, 2, 3):
            assert (f"left_{finger}{i}", f"right_{finger}{i}") in smplx
    assert ("left_eye_smplhf", "right_eye_smplhf") in smplx
    assert mirror_permutation("smplx")[SKELETON_PRESETS["smplx"].joint_names.index("jaw")] == 22
    assert len(smplx) == 8 + 1 + 15  # body, eyes, fingers
    assert {("thumb_left", "thumb_right"), ("hand_tip_left", "hand_tip_right")} <= pairs("ntu")
    assert ("LeftThumb", "RightThumb") in pairs("custom-rig")
    assert ("thigh.L", "thigh.R") in pairs("custom-rig")


@pytest.mark.parametrize("exporter", ["motionbuilder", "game", "mixamo", "biped"])
def test_exporter_rigs_pair_every_sided_joint(exporter):
    rig = EXPORTER_RIGS[exporter](fingers=2)
    names = [joint[0] for joint in rig.joints]
    skeleton = Skeleton.from_dict({"name": exporter, "joint_names": names, "chains": rig.chains})
    permutation = mirror_permutation(skeleton)
    moved = [name for name, partner in zip(names, permutation) if names.index(name) != partner]
    assert moved == [name for name in names if without_side(name) != name]
    assert all(without_side(names[partner]) == without_side(name) for name, partner in zip(names, permutation))


def test_letter_chain_names_pair():
    skeleton = Skeleton.from_dict(
        {
            "name": "tiny",
            "joint_names": ["root", "a", "b", "c", "d"],
            "chains": {"l_arm": [0, 1, 2], "r_arm": [0, 3, 4]},
        }
    )
    assert mirror_permutation(skeleton) == (0, 3, 4, 1, 2)


def test_input_is_not_modified_and_the_result_is_new():
    motion = random_motion(SKELETON_PRESETS["h36m"]).astype(np.float32)
    before = motion.copy()
    mirrored = mirror_motion(motion, "h36m")
    np.testing.assert_array_equal(motion, before)
    assert mirrored.dtype == np.float32 and not np.shares_memory(mirrored, motion)


def test_lateral_axis_is_configurable():
    motion = random_motion(SKELETON_PRESETS["humanml3d"])
    mirrored = mirror_motion(motion, "humanml3d", lateral_axis=2)
    permutation = list(mirror_permutation("humanml3d"))
    np.testing.assert_array_equal(mirrored, motion[:, permutation] * np.array([1.0, 1.0, -1.0]))


def skeleton_with(chains, joint_names=("root", "left_a", "left_b", "right_a", "right_b")):
    return Skeleton.from_dict({"name": "broken", "joint_names": list(joint_names), "chains": chains})


@pytest.mark.parametrize(
    ("skeleton", "message"),
    [
        (skeleton_with([[0, 1, 2], [0, 3, 4]]), "mirroring needs left/right chains"),
        (skeleton_with({"torso": [0], "arm_a": [1, 2], "arm_b": [3, 4]}), "mirroring needs left/right chains"),
        (skeleton_with({"left_arm": [0, 1, 2], "right_arm": [0, 3]}), "different lengths"),
        (skeleton_with({"left_arm": [0, 1, 2], "right_arm": [0, 4, 3]}), "its name pairs it with"),
        (skeleton_with({"left_arm": [0, 1, 2], "right_arm": [3, 4, 0]}), "not a one-to-one swap"),
        (skeleton_with({"left_arm": [0, 1, 2], "arm_right_side": [0, 3, 4]}), "no chain has the other side"),
    ],
)
def test_skeletons_that_cannot_be_mirrored_say_why(skeleton, message):
    with pytest.raises(ValueError, match=message) as error:
        mirror_permutation(skeleton)
    assert "broken" in str(error.value)


def test_wrong_joint_count_or_shape_is_refused():
    with pytest.raises(ValueError, match="21 joints but skeleton 'humanml3d' has 22"):
        mirror_motion(np.zeros((4, 21, 3)), "humanml3d")
    with pytest.raises(ValueError, match="shape"):
        mirror_motion(np.zeros((4, 66)), "humanml3d")
    with pytest.raises(ValueError, match="lateral_axis"):
        mirror_motion(np.zeros((4, 22, 3)), "humanml3d", lateral_axis=3)


CAPTIONS = [
    ("a person waves the left hand", "a person waves the right hand"),
    ("a man kicks with his right leg", "a man kicks with his left leg"),
    ("Left foot forward, then right.", "Right foot forward, then left."),
    ("TURNS LEFT AND RIGHT", "TURNS RIGHT AND LEFT"),
    ("he steps left, right, left.", "he steps right, left, right."),
    ("someone walks leftwards", "someone walks rightwards"),
    ("a rightward shuffle", "a leftward shuffle"),
    ("spins clockwise twice", "spins counterclockwise twice"),
    ("spins counterclockwise", "spins clockwise"),
    ("spins counter-clockwise", "spins clockwise"),
    ("turns anticlockwise", "turns clockwise"),
    ("turns Anti-Clockwise", "turns Clockwise"),
    ("a left-handed throw", "a right-handed throw"),
    ("the right-hand side", "the left-hand side"),
    ("a bright light; leftover food", "a bright light; leftover food"),
    ("he left the room to the right", "he right the room to the left"),  # the documented limitation
    ("(left) arm up", "(right) arm up"),
]


@pytest.mark.parametrize(("caption", "mirrored"), CAPTIONS)
def test_caption_side_words_swap(caption, mirrored):
    assert mirror_caption(caption) == mirrored
    if "counter" not in caption.lower() and "anti" not in caption.lower():
        assert mirror_caption(mirrored) == caption  # the table's other variants all come back as themselves


def test_caption_without_a_side_word_is_the_same_string():
    caption = "a person walks forward and waves both hands brightly"
    assert mirror_caption(caption) is caption
    assert side_words(caption) == ()


@pytest.mark.parametrize(
    ("caption", "words"),
    [
        ("waves the left hand", ("left",)),
        ("Leftwards, then RIGHT", ("left", "right")),
        ("spins clockwise", ("clockwise",)),
        ("spins anti-clockwise then counter clockwise", ("counterclockwise", "counterclockwise")),
        ("a bright leftover", ()),
    ],
)
def test_side_words_are_normalised_in_order(caption, words):
    assert side_words(caption) == words
    mirrored = {"left": "right", "right": "left", "clockwise": "counterclockwise", "counterclockwise": "clockwise"}
    assert side_words(mirror_caption(caption)) == tuple(mirrored[word] for word in words)

import ast
import hashlib
import importlib.util
import pathlib
import re

import datasets
import numpy as np
import pytest

import motionpatches.training.data.demo as demo_data
from motionpatches.training.data.demo import ACTIONS, generate_demo_motions, load_demo_dataset
from motionpatches.training.data.demo import body as demo_body

# SMPL-22 parents, written out here rather than imported so the FK is checked against the spec
PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19)
FEET = [7, 8, 10, 11]
AIRBORNE_ACTIONS = {"jump", "run", "jumping_jacks"}


@pytest.fixture(scope="module")
def motions():
    return generate_demo_motions(300, seed=0)


def side_of(sample):
    """'left' / 'right' when the variant is lateral (a limb, a turn, a sideways direction), else None."""
    variant = sample["variant"]
    side = variant.get("side", variant.get("direction"))
    return side if side in ("left", "right") else None


def facing_degrees(motion):
    """HumanML3D's facing estimate (hips + shoulders), as an angle from +Z towards +X, per frame."""
    across = (motion[:, 2] - motion[:, 1]) + (motion[:, 17] - motion[:, 16])
    forward = np.cross([0.0, 1.0, 0.0], across)
    return np.degrees(np.arctan2(forward[:, 0], forward[:, 2]))


def test_same_seed_gives_identical_motions_and_captions():
    first, second = generate_demo_motions(28, seed=3), generate_demo_motions(28, seed=3)
    for a, b in zip(first, second, strict=True):
        assert a["id"] == b["id"] and a["action"] == b["action"] and a["variant"] == b["variant"]
        assert a["captions"] == b["captions"]
        np.testing.assert_array_equal(a["motion"], b["motion"])


def test_different_seed_gives_different_motions_and_captions():
    first, second = generate_demo_motions(28, seed=3), generate_demo_motions(28, seed=4)
    for a, b in zip(first, second, strict=True):
        assert a["motion"].shape != b["motion"].shape or not np.allclose(a["motion"], b["motion"])
    assert [a["captions"] for a in first] != [b["captions"] for b in second]


def test_motions_have_the_documented_shape_type_and_length(motions):
    lengths = []
    for sample in motions:
        motion = sample["motion"]
        assert isinstance(motion, np.ndarray) and motion.dtype == np.float32
        assert motion.ndim == 3 and motion.shape[1:] == (22, 3)
        assert np.isfinite(motion).all()
        assert 40 <= len(motion) <= 200
        lengths.append(len(motion))
        assert re.fullmatch(r"demo_\d{6}", sample["id"])
        assert sample["action"] in ACTIONS
        assert isinstance(sample["variant"], dict)
    assert len({s["id"] for s in motions}) == len(motions)
    assert len(set(lengths)) > 30  # lengths vary, so padding and cropping both get exercised


def test_every_action_appears_and_classes_are_balanced(motions):
    assert len(ACTIONS) >= 12 and len(set(ACTIONS)) == len(ACTIONS)
    counts = {action: sum(s["action"] == action for s in motions) for action in ACTIONS}
    assert min(counts.values()) > 0
    assert max(counts.values()) - min(counts.values()) <= 1


def test_motions_start_at_the_origin_facing_z_on_the_floor(motions):
    for sample in motions:
        motion = sample["motion"]
        np.testing.assert_allclose(motion[0, 0, [0, 2]], 0.0, atol=1e-5)
        assert abs(facing_degrees(motion[:1])[0]) < 15, sample["variant"]
        assert abs(motion[..., 1].min()) < 1e-4  # the floor is y = 0
        assert 1.3 < motion[0, 15, 1] < 1.9  # head height of a standing adult, so Y is up


def test_bone_lengths_do_not_change_over_time(motions):
    for sample in motions:
        motion = sample["motion"].astype(np.float64)
        bones = np.linalg.norm(motion[:, 1:] - motion[:, list(PARENTS[1:])], axis=-1)  # (T, 21)
        assert bones.std(axis=0).max() < 1e-4, sample["action"]
        femur = bones[0, 4 - 1]  # l_hip -> l_knee
        assert 0.3 < femur < 0.5
        np.testing.assert_allclose(bones[0, 4 - 1], bones[0, 5 - 1], rtol=1e-5)  # left/right symmetric


def test_feet_stay_on_the_floor_unless_jumping(motions):
    for sample in motions:
        lowest_foot = sample["motion"][:, FEET, 1].min(axis=1)  # per frame
        assert lowest_foot.min() >= -0.05
        if sample["action"] in AIRBORNE_ACTIONS:
            continue
        assert lowest_foot.max() < 0.05, sample["action"]  # no floating
    for sample in motions:
        if sample["action"] == "jump":
            assert sample["motion"][:, FEET, 1].min(axis=1).max() > 0.1  # really leaves the ground


def path_length(motion, joint):
    """How far `joint` travels relative to the pelvis: the limb's own motion, not the body's."""
    relative = motion[:, joint] - motion[:, 0]
    return np.linalg.norm(np.diff(relative, axis=0), axis=-1).sum()


@pytest.mark.parametrize(
    ("action", "left_joint", "right_joint"), [("wave", 20, 21), ("kick", 10, 11), ("raise_arms", 20, 21)]
)
def test_left_and_right_variants_move_the_matching_limb(motions, action, left_joint, right_joint):
    checked = set()
    for sample in motions:
        side = sample["variant"].get("side")
        if sample["action"] != action or side not in ("left", "right"):
            continue
        active, passive = (left_joint, right_joint) if side == "left" else (right_joint, left_joint)
        assert path_length(sample["motion"], active) > 5 * path_length(sample["motion"], passive)
        checked.add(side)
    assert checked == {"left", "right"}


def test_a_waving_hand_is_held_up_on_its_own_side(motions):
    """SMPL left is +X: the left hand waves out at +X, above the head."""
    checked = set()
    for sample in motions:
        if sample["action"] != "wave":
            continue
        side = sample["variant"]["side"]
        motion = sample["motion"]
        wrist = 20 if side == "left" else 21
        top = np.argmax(motion[:, wrist, 1])
        assert motion[top, wrist, 1] > motion[top, 15, 1]
        assert {"left": 1.0, "right": -1.0}[side] * (motion[top, wrist, 0] - motion[top, 0, 0]) > 0.2
        checked.add(side)
    assert checked == {"left", "right"}


def test_punch_extends_the_arm_on_its_side(motions):
    checked = set()
    for sample in motions:
        if sample["action"] != "punch":
            continue
        side = sample["variant"]["side"]
        motion = sample["motion"]
        reach = (motion[:, [20, 21], 2] - motion[:, [0], 2]).max(axis=0)  # forward, ahead of the pelvis
        active, passive = (reach[0], reach[1]) if side == "left" else (reach[1], reach[0])
        assert active > passive + 0.1
        checked.add(side)
    assert checked == {"left", "right"}


def test_lateral_directions_go_to_the_persons_own_side(motions):
    """SMPL left is +X: stepping, walking or turning to the left heads towards +X."""
    checked = set()
    for sample in motions:
        motion, side = sample["motion"], side_of(sample)
        sign = {"left": 1.0, "right": -1.0}.get(side)
        if sample["action"] == "side_step":
            assert sign * (motion[-1, 0, 0] - motion[0, 0, 0]) > 0.3
        elif sample["action"] == "turn":
            facing = np.degrees(np.unwrap(np.radians(facing_degrees(motion))))
            assert sign * (facing[-1] - facing[0]) > 0.8 * sample["variant"]["angle"]
        elif sample["action"] == "walk" and sample["variant"]["direction"] in ("left", "right"):
            assert sign * (motion[-1, 0, 0] - motion[0, 0, 0]) > 0.5
        else:
            continue
        checked.add((sample["action"], side))
    assert {action for action, _ in checked} == {"side_step", "turn", "walk"}


def test_captions_name_the_side_and_speed_of_the_variant(motions):
    checked_sides, checked_speeds = set(), set()
    for sample in motions:
        captions, variant, side = sample["captions"], sample["variant"], side_of(sample)
        assert len(captions) == 3 and len(set(captions)) == 3
        assert all(isinstance(c, str) and c == c.strip() and "  " not in c and "{" not in c for c in captions)
        if side is not None:
            other = "right" if side == "left" else "left"
            for caption in captions:
                words = re.findall(r"\w+", caption)
                assert side in words, (caption, variant)
                if sample["action"] == "look_around":  # "looks left, then right": the first side comes first
                    assert other not in words or words.index(side) < words.index(other), (caption, variant)
                else:
                    assert other not in words, (caption, variant)
            checked_sides.add(side)
        if "speed" in variant:
            for caption in captions:
                said_slow = "slow" in caption
                said_fast = "quick" in caption or "fast" in caption
                expected = (variant["speed"] == "slow", variant["speed"] == "fast")
                assert (said_slow, said_fast) == expected, (caption, variant)
            checked_speeds.add(variant["speed"])
    assert checked_sides == {"left", "right"} and checked_speeds == {"slow", "normal", "fast"}


def test_captions_mention_the_action(motions):
    keywords = {
        "walk": r"walk|steps",
        "run": r"run",
        "jump": r"jump|hop",
        "squat": r"squat",
        "wave": r"wave",
        "kick": r"kick",
        "punch": r"punch",
        "turn": r"turn|rotate",
        "sit_down": r"sit|seat",
        "clap": r"clap|hands together",
        "raise_arms": r"raise|lift|up",
        "jumping_jacks": r"jumping jack|spreading",
        "side_step": r"side|shuffle",
        "look_around": r"look|glance|head",
    }
    assert set(keywords) == set(ACTIONS)
    for sample in motions:
        for caption in sample["captions"]:
            assert re.search(keywords[sample["action"]], caption), (caption, sample["action"])


def test_load_demo_dataset_round_trips_through_arrow(monkeypatch):
    generated = []

    def recording_generate(*args, **kwargs):
        generated.append(generate_demo_motions(*args, **kwargs))
        return generated[-1]

    monkeypatch.setattr(demo_data, "generate_demo_motions", recording_generate)
    dataset = load_demo_dataset(num_train=7, num_validation=3, num_test=2, seed=5)

    assert isinstance(dataset, datasets.DatasetDict)
    assert list(dataset) == ["train", "validation", "test"]
    assert [dataset[split].num_rows for split in dataset] == [7, 3, 2]
    expected = datasets.Features(
        {
            "id": datasets.Value("string"),
            "motion": datasets.Array3D(shape=(None, 22, 3), dtype="float32"),
            "captions": datasets.List(datasets.Value("string")),
            "action": datasets.Value("string"),
        }
    )
    for split, split_motions in zip(dataset, generated, strict=True):
        assert dataset[split].features == expected
        rows = dataset[split].with_format("numpy")
        for i, sample in enumerate(split_motions):
            row = rows[i]
            assert row["motion"].dtype == np.float32
            np.testing.assert_array_equal(row["motion"], sample["motion"])
            assert dataset[split][i]["captions"] == sample["captions"]
            assert dataset[split][i]["id"] == sample["id"] and dataset[split][i]["action"] == sample["action"]

    ids = [i for split in dataset for i in dataset[split]["id"]]
    assert len(set(ids)) == len(ids)  # ids run on across splits
    first_motions = [s["motion"] for s in generated[0]] + [s["motion"] for s in generated[1]]
    for test_motion in generated[2]:
        assert not any(np.array_equal(m, test_motion["motion"]) for m in first_motions)


def test_the_data_are_unchanged():
    """The recorded demo training runs are only comparable while the data stay the same: the random
    draws (actions, variants, lengths, captions) exactly, the joint positions to float precision."""
    motions = generate_demo_motions(28, seed=3)
    text = "\n".join(
        f"{m['id']} {m['action']} {sorted(m['variant'].items())} {len(m['motion'])} {m['captions']}" for m in motions
    )
    assert text.startswith(
        "demo_000000 jumping_jacks [('repetitions', 5), ('speed', 'normal')] 109 ['the person does five jumping jacks', "
    )
    assert (
        hashlib.sha256(text.encode()).hexdigest() == "0b3ad79d402494271cc6d7d28be64e7fb742c8e8b688b4efd2ecc05c67877283"
    )
    # pelvis, head and both wrists in the last frame of a walk to the left and of a (mirrored) walk to the right
    walk_left, walk_right = motions[9], motions[20]
    assert (walk_left["variant"]["direction"], walk_right["variant"]["direction"]) == ("left", "right")
    np.testing.assert_allclose(
        walk_left["motion"][-1, [0, 15, 20, 21]],
        [
            [2.072375, 0.988245, 2.780294],
            [2.113507, 1.626028, 2.791089],
            [2.177626, 0.874347, 2.544127],
            [2.009903, 0.876255, 3.033187],
        ],
        atol=2e-6,
    )
    np.testing.assert_allclose(
        walk_right["motion"][-1, [0, 15, 20, 21]],
        [
            [-2.83994, 0.931273, 1.009628],
            [-2.882774, 1.528607, 1.006597],
            [-2.833234, 0.83062, 1.257565],
            [-2.866658, 0.822716, 0.785682],
        ],
        atol=2e-6,
    )


def test_demo_modules_import_one_way():
    """body <- actions <- captions <- the package: each module may import only those before it."""
    folder = pathlib.Path(importlib.util.find_spec("motionpatches.training.data.demo").origin).parent
    allowed = {
        "body": set(),
        "actions": {"body"},
        "captions": {"body", "actions"},
        "__init__": {"body", "actions", "captions"},
    }
    assert {path.stem for path in folder.glob("*.py")} == set(allowed)
    for module, siblings in allowed.items():
        tree = ast.parse((folder / f"{module}.py").read_text(encoding="utf-8"))
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level == 1}
        assert imported <= siblings, (module, imported - siblings)
        absolute = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level == 0}
        assert not {name for name in absolute if name.startswith("motionpatches.training.data.demo")}, module


def test_rest_pose_stacks_the_offsets_and_heading_turns_the_body_to_its_left():
    offsets = demo_body.REST_OFFSETS
    frames = 2
    rest = demo_body.pose(offsets, np.zeros((22, frames, 3)), np.array([0.0, 90.0]))
    expected = np.zeros((22, 3))
    for joint, parent in enumerate(PARENTS[1:], start=1):
        expected[joint] = expected[parent] + offsets[joint]
    np.testing.assert_allclose(rest[0], expected, atol=1e-12)
    # positive heading turns +Z towards +X (the person's left): the toes, ahead of the ankles, end up at +X
    toes_ahead = rest[1, 10] - rest[1, 7]
    np.testing.assert_allclose(toes_ahead, [0.13, -0.05, 0.0], atol=1e-12)

"""The shared kinematics module: rotation conventions, forward kinematics against hand-computed and
naively computed positions, and agreement of its two users (the demo body and the BVH reader)."""

import ast
import itertools
import math

import numpy as np
import pytest

import motionpatches.processors.kinematics as kinematics
from motionpatches.processors import load_bvh
from motionpatches.processors.kinematics import axis_rotation, euler_rotations, forward_kinematics
from motionpatches.training.data.demo import actions, body


def rx(degrees):
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def ry(degrees):
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def rz(degrees):
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


EXPLICIT = {"x": rx, "y": ry, "z": rz}


# --- rotations ----------------------------------------------------------------------------------


@pytest.mark.parametrize("axis", ["x", "y", "z", 0, 1, 2, "X"])
def test_axis_rotations_are_proper_rotations(axis):
    angles = np.random.default_rng(0).uniform(-720, 720, (5, 7))
    rotations = axis_rotation(axis, angles)
    assert rotations.shape == (5, 7, 3, 3)
    identity = np.broadcast_to(np.eye(3), rotations.shape)
    np.testing.assert_allclose(rotations @ np.swapaxes(rotations, -1, -2), identity, atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(rotations), 1.0, atol=1e-12)


@pytest.mark.parametrize(
    ("axis", "vector", "turned"),
    [("x", [0, 1, 0], [0, 0, 1]), ("y", [0, 0, 1], [1, 0, 0]), ("z", [1, 0, 0], [0, 1, 0])],
)
def test_axis_rotations_are_right_handed(axis, vector, turned):
    np.testing.assert_allclose(axis_rotation(axis, 90.0) @ vector, turned, atol=1e-12)
    np.testing.assert_allclose(axis_rotation(axis, 37.0), EXPLICIT[axis](37.0), atol=1e-15)


@pytest.mark.parametrize("order", ["".join(p) for p in itertools.permutations("xyz")] + ["zxz", "xy", "y"])
def test_euler_angles_compose_in_the_given_order(order):
    rng = np.random.default_rng(len(order))
    angles = rng.uniform(-180, 180, (4, len(order)))
    rotations = euler_rotations(angles, order)
    assert rotations.shape == (4, 3, 3)
    for frame in range(4):
        expected = np.eye(3)
        for axis, angle in zip(order, angles[frame], strict=True):
            expected = expected @ EXPLICIT[axis](angle)  # the first letter is the outermost factor
        np.testing.assert_allclose(rotations[frame], expected, atol=1e-12)


def test_euler_order_matters_and_is_not_reversed():
    angles = [30.0, 50.0, 70.0]
    np.testing.assert_allclose(euler_rotations(angles, "zxy"), rz(30) @ rx(50) @ ry(70), atol=1e-12)
    assert not np.allclose(euler_rotations(angles, "zxy"), ry(70) @ rx(50) @ rz(30), atol=1e-3)


@pytest.mark.parametrize("axis", ["xy", "", "w", 3, -1])
def test_unknown_axes_are_rejected(axis):
    with pytest.raises(ValueError, match="axis must be"):
        axis_rotation(axis, 10.0)


def test_euler_edge_cases():
    np.testing.assert_array_equal(euler_rotations(np.zeros((3, 0)), ""), np.broadcast_to(np.eye(3), (3, 3, 3)))
    with pytest.raises(ValueError, match="order 'xyz'"):
        euler_rotations(np.zeros((3, 2)), "xyz")


# --- forward kinematics -------------------------------------------------------------------------


def test_three_joint_chain_matches_hand_computed_positions():
    parents = [-1, 0, 1]
    offsets = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    local = np.stack(
        [
            # frame 0: root Rz(90) turns joint 1's +X offset to +Y; joint 1's Rx(90) turns joint 2's
            # +Y offset to +Z, which the root's Rz(90) leaves alone
            [rz(90), rx(90), np.eye(3)],
            # frame 1: root Ry(90) turns +X to -Z; joint 1 Rz(-90) turns +Y to +X, Ry(90) then to -Z
            [ry(90), rz(-90), rx(45)],
        ],
        axis=1,
    )  # (J, T, 3, 3)
    positions = forward_kinematics(parents, local, offsets)
    assert positions.shape == (2, 3, 3)
    np.testing.assert_allclose(positions[0], [[0, 1, 0], [0, 2, 0], [0, 2, 2]], atol=1e-12)
    np.testing.assert_allclose(positions[1], [[0, 1, 0], [0, 1, -1], [0, 1, -3]], atol=1e-12)


def naive_forward_kinematics(parents, local, offsets):
    """Frame by frame, joint by joint, from the definition: world_j = world_parent @ local_j."""
    num_joints, num_frames = local.shape[:2]
    positions = np.zeros((num_frames, num_joints, 3))
    for t in range(num_frames):
        world = {}
        for j, parent in enumerate(parents):
            offset = offsets[j] if offsets.ndim == 2 else offsets[j, t]
            if parent < 0:
                world[j], positions[t, j] = local[j, t], offset
            else:
                world[j] = world[parent] @ local[j, t]
                positions[t, j] = positions[t, parent] + world[parent] @ offset
    return positions


def test_branching_tree_with_per_frame_translations_matches_the_definition():
    rng = np.random.default_rng(1)
    parents = [-1, 0, 1, 1, 0, 4, 2]
    local = euler_rotations(rng.uniform(-90, 90, (7, 5, 3)), "zxy")
    offsets = rng.normal(size=(7, 5, 3))
    np.testing.assert_allclose(
        forward_kinematics(parents, local, offsets), naive_forward_kinematics(parents, local, offsets), atol=1e-12
    )
    constant = rng.normal(size=(7, 3))
    fixed = forward_kinematics(parents, local, constant)
    np.testing.assert_allclose(fixed, naive_forward_kinematics(parents, local, constant), atol=1e-12)
    # per-joint offsets are the per-frame case with the offsets repeated, to the bit
    np.testing.assert_array_equal(fixed, forward_kinematics(parents, local, np.repeat(constant[:, None], 5, axis=1)))


def test_bad_inputs_are_rejected():
    local = np.broadcast_to(np.eye(3), (3, 4, 3, 3))
    with pytest.raises(ValueError, match="parent must come before"):
        forward_kinematics([-1, 2, 0], local, np.zeros((3, 3)))
    with pytest.raises(ValueError, match=r"local_rotations must be \(J=3"):
        forward_kinematics([-1, 0, 1], np.swapaxes(local, 0, 1), np.zeros((3, 3)))  # frame-major by mistake
    with pytest.raises(ValueError, match="offsets must be"):
        forward_kinematics([-1, 0, 1], local, np.zeros((4, 3)))


def test_module_is_remote_code_safe():
    """Saved checkpoints ship this file next to bvh.py: only numpy and the standard library."""
    tree = ast.parse(open(kinematics.__file__, encoding="utf-8").read())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= {"numpy", "math"}, imported


# --- the demo body and the BVH reader agree -----------------------------------------------------


def smpl_bvh(offsets, joint_degrees, root_yaw):
    """The demo's SMPL-22 body as a BVH file: its bone offsets, and its (pitch, yaw, roll) angles as
    Yrotation Xrotation Zrotation channels, the order in which the demo composes them."""
    children = {j: [c for c, p in enumerate(body.PARENTS) if p == j] for j in range(len(body.PARENTS))}
    lines, file_order = ["HIERARCHY"], []

    def write(joint, depth):
        file_order.append(joint)
        pad = "  " * depth
        lines.append(f"{pad}{'ROOT' if joint == 0 else 'JOINT'} j{joint}")
        lines.append(f"{pad}{{")
        lines.append(f"{pad}  OFFSET {' '.join(repr(float(v)) for v in offsets[joint])}")
        position = "Xposition Yposition Zposition " if joint == 0 else ""
        lines.append(f"{pad}  CHANNELS {6 if joint == 0 else 3} {position}Yrotation Xrotation Zrotation")
        for child in children[joint]:
            write(child, depth + 1)
        lines.append(f"{pad}}}")

    write(0, 0)
    frames = joint_degrees.shape[1]
    yaw_pitch_roll = joint_degrees[:, :, [1, 0, 2]].copy()
    yaw_pitch_roll[0, :, 0] += root_yaw
    columns = [np.zeros((frames, 3))] + [yaw_pitch_roll[j] for j in file_order]
    values = np.concatenate(columns, axis=1)
    lines += ["MOTION", f"Frames: {frames}", "Frame Time: 0.05"]
    lines += [" ".join(repr(float(v)) for v in row) for row in values]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("action", ["wave", "walk", "kick"])
def test_a_bvh_of_the_demo_body_gives_the_demo_joint_positions(tmp_path, action):
    rng = np.random.default_rng(7)
    demo_body = body.random_body(rng)
    variant = actions.sample_variant(action, rng)
    variant = {name: "left" if value == "right" else value for name, value in variant.items()}
    take = actions.BUILDERS[action](rng, variant, demo_body)
    take.flatten_feet()
    expected = body.pose(demo_body.offsets, take.angles, take.heading)

    path = tmp_path / "demo.bvh"
    # the demo turns the whole body by its heading before the root's own rotation; about the
    # same (vertical) axis as the root's yaw, so the two angles add up in the BVH root
    path.write_text(smpl_bvh(demo_body.offsets, take.angles, take.heading))
    motion = load_bvh(path, scale=1.0, up_axis="y")
    order = [motion.joint_names.index(f"j{j}") for j in range(len(body.PARENTS))]
    assert [motion.parents[i] for i in order[1:]] == [order[p] for p in body.PARENTS[1:]]
    np.testing.assert_allclose(motion.positions[:, order], expected, atol=2e-6)  # float32 output
    assert np.abs(expected[:, 20] - expected[0, 20]).max() > 0.1  # the take really moves its limbs


def test_the_demo_pose_is_the_module_forward_kinematics():
    rng = np.random.default_rng(3)
    offsets = body.random_body(rng).offsets
    angles = rng.uniform(-60, 60, (22, 9, 3))
    heading = rng.uniform(-180, 180, 9)
    local = np.stack([[ry(a[1]) @ rx(a[0]) @ rz(a[2]) for a in joint] for joint in angles])
    local[0] = np.stack([ry(h) for h in heading]) @ local[0]
    np.testing.assert_allclose(
        body.pose(offsets, angles, heading), naive_forward_kinematics(body.PARENTS, local, offsets), atol=1e-12
    )

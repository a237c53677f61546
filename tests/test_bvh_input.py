"""BVH files through the processor, the dataset loader and the command line."""

import numpy as np
import pytest
from bvh_samples import bvh_text, exporter_sample

from motionpatches import MotionPatchFeatureExtractor
from motionpatches.processors import MotionFileError, MotionFileOptions, load_bvh, read_motion_file, skeleton_from_bvh


@pytest.fixture()
def walk_bvh(tmp_path):
    path = tmp_path / "walk.bvh"
    path.write_text(bvh_text(frames=45, fps=30.0))
    return path


def test_bvh_file_and_its_positions_give_the_same_motion_values(walk_bvh):
    bvh = load_bvh(walk_bvh)
    assert bvh.fps == pytest.approx(30.0) and bvh.positions.shape == (45, 21, 3)
    assert 1.0 < bvh.positions[0, :, 1].max() < 2.2  # centimetres detected: a ~1.7 m person in metres
    extractor = MotionPatchFeatureExtractor(skeleton=skeleton_from_bvh(bvh))
    from_file = extractor(str(walk_bvh), return_motion_lengths=True)
    from_positions = extractor(bvh.positions, motion_fps=30.0, return_motion_lengths=True)
    assert from_file["motion_lengths"].tolist() == [30]  # 1.5 s at 20 fps, resampled with the file's own rate
    np.testing.assert_allclose(from_file["motion_values"], from_positions["motion_values"], atol=1e-4)


def test_bvh_rig_must_match_the_processor_skeleton(walk_bvh):
    with pytest.raises(ValueError, match="21 joints but skeleton 'humanml3d' has 22"):
        MotionPatchFeatureExtractor(skeleton="humanml3d")(str(walk_bvh))


def test_unusual_joint_names_need_a_mapping(tmp_path):
    odd = {
        "Hips": "root_jnt",
        "LeftUpLeg": "jnt_a1",
        "LeftLeg": "jnt_a2",
        "LeftFoot": "jnt_a3",
        "LeftToeBase": "jnt_a4",
    }
    path = tmp_path / "odd.bvh"
    path.write_text(bvh_text(rename=odd))
    bvh = load_bvh(path)
    with pytest.raises(ValueError, match="left_leg.*mapping"):
        skeleton_from_bvh(bvh)
    skeleton = skeleton_from_bvh(bvh, mapping={"left_leg": ["root_jnt", "jnt_a1", "jnt_a2", "jnt_a3", "jnt_a4"]})
    assert [skeleton.joint_names[j] for j in skeleton.chains["left_leg"]] == [
        "root_jnt",
        "jnt_a1",
        "jnt_a2",
        "jnt_a3",
        "jnt_a4",
    ]
    assert MotionPatchFeatureExtractor(skeleton=skeleton)(str(path))["motion_values"].shape == (1, 3, 224, 80)


def test_bvh_folder_dataset(tmp_path):
    from motionpatches.training.data.motion_folder import load_motion_folder

    root = tmp_path / "mocap"
    (root / "new_joints").mkdir(parents=True)
    (root / "texts").mkdir()
    for i in range(3):
        (root / "new_joints" / f"take{i}.bvh").write_text(bvh_text(frames=30 + 10 * i, seed=i))
        (root / "texts" / f"take{i}.txt").write_text(f"a person dances {i}#x#0.0#0.0\n")
    (root / "train.txt").write_text("take0\ntake1\ntake2\n")
    data = load_motion_folder(str(root))
    from motionpatches.training.data.catalog import load_named_dataset

    row = data["train"].with_format("numpy")[1]
    bvh = load_bvh(root / "new_joints" / "take1.bvh")
    times = np.arange(0, (40 - 1) / 30 + 1e-9, 1 / 20)
    expected = np.stack(
        [
            np.stack([np.interp(times, np.arange(40) / 30, bvh.positions[:, j, c]) for c in range(3)], -1)
            for j in range(21)
        ],
        1,
    )
    np.testing.assert_allclose(row["motion"], expected, atol=1e-5)
    _, skeleton = load_named_dataset(str(root))
    assert skeleton == skeleton_from_bvh(load_bvh(root / "new_joints" / "take0.bvh")) and skeleton.num_joints == 21


def exporter_folder(tmp_path, style="motionbuilder", count=2):
    """A HumanML3D-style folder whose motions are BVH files as `style` exports them (Z up, cm, lying rest pose)."""
    root = tmp_path / "mocap"
    (root / "new_joints").mkdir(parents=True)
    (root / "texts").mkdir()
    samples = [exporter_sample(style, frames=45 + 15 * i, seed=i) for i in range(count)]
    for i, sample in enumerate(samples):
        (root / "new_joints" / f"take{i}.bvh").write_text(sample.text)
        (root / "texts" / f"take{i}.txt").write_text(f"a person walks {i}#x#0.0#0.0\n")
    (root / "train.txt").write_text("".join(f"take{i}\n" for i in range(count)))
    return root, samples


def test_exporter_files_in_a_dataset_folder(tmp_path):
    from motionpatches.training.data.catalog import load_named_dataset
    from motionpatches.training.data.motion_folder import load_motion_folder

    root, samples = exporter_folder(tmp_path)
    row = load_motion_folder(str(root))["train"].with_format("numpy")[1]
    truth = samples[1].positions
    frames, joints = truth.shape[:2]
    times = np.arange(0, (frames - 1) / 30 + 1e-9, 1 / 20)  # at the file's 30 fps, resampled to 20
    expected = np.stack(
        [
            np.stack([np.interp(times, np.arange(frames) / 30, truth[:, j, c]) for c in range(3)], -1)
            for j in range(joints)
        ],
        1,
    )
    np.testing.assert_allclose(row["motion"], expected, atol=1e-5)
    _, skeleton = load_named_dataset(str(root))
    assert [skeleton.joint_names[j] for j in skeleton.chains["left_leg"]] == samples[0].chains["left_leg"]


def test_exporter_file_through_the_feature_extractor(tmp_path):
    sample = exporter_sample("game", seed=3)
    path = tmp_path / "take.bvh"
    path.write_text(sample.text)
    extractor = MotionPatchFeatureExtractor(skeleton=skeleton_from_bvh(load_bvh(path)))
    from_file = extractor(str(path), return_motion_lengths=True)
    from_truth = extractor(sample.positions, motion_fps=30.0, return_motion_lengths=True)
    assert from_file["motion_lengths"].tolist() == [40]  # 2 s at 20 fps: the file's 30 fps were used
    np.testing.assert_allclose(from_file["motion_values"], from_truth["motion_values"], atol=1e-4)


def test_motion_file_options_pass_the_bvh_scale_and_up_axis_through(tmp_path):
    sample = exporter_sample("mixamo", up="-z", units="dm", seed=4)
    path = tmp_path / "take.bvh"
    path.write_text(sample.text)
    with pytest.raises(MotionFileError, match="--bvh_up_axis"):
        read_motion_file(path)
    with pytest.raises(MotionFileError, match="--bvh_scale"):
        read_motion_file(path, MotionFileOptions(bvh_up_axis="-z"))
    motion = read_motion_file(path, MotionFileOptions(bvh_up_axis="-z", bvh_scale=0.1))
    assert motion.fps == 30.0 and motion.joint_names == sample.joint_names
    np.testing.assert_allclose(motion.values, sample.positions, atol=1e-5)

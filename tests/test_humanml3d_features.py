"""HumanML3D / KIT-ML feature rows (`new_joint_vecs`) read as joint positions, checked against rows written by
our own implementation of the published construction (`humanml3d_writer.py`), never by the reader itself."""

import numpy as np
import pytest
from humanml3d_writer import features_from_positions, kit_shaped

from motionpatches import MotionFileError, MotionFileOptions, MotionPatchFeatureExtractor, read_motion_file
from motionpatches.processors.humanml3d_features import feature_width, positions_from_features


def turning(positions: np.ndarray, turns: float = 1.5, offset=(0.7, 0.0, -1.3)) -> np.ndarray:
    """`positions` turned about the vertical through the first root position by an angle growing to `turns`
    full turns (so the heading crosses +-180 degrees), then moved by `offset`: a motion that walks and spins."""
    positions = np.asarray(positions, dtype=np.float64)
    angles = np.linspace(0.0, 2 * np.pi * turns, len(positions))
    cos, sin = np.cos(angles)[:, None], np.sin(angles)[:, None]
    centred = positions - positions[0, 0] * np.array([1.0, 0.0, 1.0])
    x, y, z = centred[..., 0], centred[..., 1], centred[..., 2]
    return np.stack([cos * x + sin * z, y, cos * z - sin * x], axis=-1) + np.asarray(offset)


def expected_round_trip(positions: np.ndarray) -> np.ndarray:
    """What the rows of `positions` give back: every frame but the last, the first root's XZ moved to the
    origin (the rows hold velocities, not the start; frame 0's facing is stored as it is)."""
    return positions[:-1] - positions[0, 0] * np.array([1.0, 0.0, 1.0])


def test_widths_are_the_published_ones():
    assert feature_width(22) == 263 == 4 + 63 + 126 + 66 + 4
    assert feature_width(21) == 251 == 4 + 60 + 120 + 63 + 4


@pytest.mark.parametrize("smooth_sigma", [20.0, None])
@pytest.mark.parametrize("published_hip_order", [False, True])
def test_real_sample_round_trip(sample_motion, smooth_sigma, published_hip_order):
    rows = features_from_positions(sample_motion, smooth_sigma, published_hip_order)
    assert rows.shape == (len(sample_motion) - 1, 263) and rows.dtype == np.float32
    recovered = positions_from_features(rows)
    assert recovered.shape == (len(sample_motion) - 1, 22, 3) and recovered.dtype == np.float32
    np.testing.assert_allclose(recovered, expected_round_trip(sample_motion), atol=1e-4, rtol=0)


@pytest.mark.parametrize("joints", [22, 21])
def test_turning_walking_round_trip(sample_motion, joints):
    """Spinning one and a half turns while walking: the root rotation must be integrated (half steps doubled)
    and undone in the right direction, the velocities rotated back with the frame they lead to."""
    motion = sample_motion if joints == 22 else kit_shaped(sample_motion)
    motion = turning(motion)
    rows = features_from_positions(motion)
    assert rows.shape == (len(motion) - 1, feature_width(joints))
    assert np.abs(rows[:, 0]).max() < np.pi / 2  # half steps, wrapped
    recovered = positions_from_features(rows)
    np.testing.assert_allclose(recovered, expected_round_trip(motion), atol=1e-4, rtol=0)


def test_a_sign_error_would_show(sample_motion):
    """The same rows with the rotation undone the other way do not come back: the round trip can fail."""
    rows = features_from_positions(turning(sample_motion))
    flipped = rows.copy()
    flipped[:, 0] *= -1
    error = np.abs(positions_from_features(flipped) - expected_round_trip(turning(sample_motion))).max()
    assert error > 0.1


@pytest.mark.parametrize("joints", [22, 21])
def test_files_are_read_by_shape(tmp_path, sample_motion, joints):
    motion = turning(sample_motion if joints == 22 else kit_shaped(sample_motion))
    rows_file, joints_file = tmp_path / "rows.npy", tmp_path / "joints.npy"
    np.save(rows_file, features_from_positions(motion))
    np.save(joints_file, motion.astype(np.float32))
    read = read_motion_file(rows_file)
    assert read.values.shape == (len(motion) - 1, joints, 3) and read.fps is None
    np.testing.assert_allclose(read.values, expected_round_trip(motion), atol=1e-4, rtol=0)
    assert read_motion_file(joints_file).values.shape == motion.shape  # 3-D: joints, as stored
    forced = read_motion_file(rows_file, MotionFileOptions(motion_format="features"))
    np.testing.assert_array_equal(forced.values, read.values)
    raw = read_motion_file(rows_file, MotionFileOptions(motion_format="joints"))
    assert raw.values.shape == (len(motion) - 1, feature_width(joints))  # as stored


def test_other_widths_and_shapes_are_refused_naming_the_file(tmp_path, sample_motion):
    odd = tmp_path / "odd.npy"
    np.save(odd, np.zeros((30, 100), np.float32))
    with pytest.raises(MotionFileError) as error:
        read_motion_file(odd)
    message = str(error.value)
    assert str(odd) in message and "100 values wide" in message, message
    assert "263 for 22 joints" in message and "251 for 21 joints" in message
    assert error.value.reason == "not feature rows"
    joints = tmp_path / "joints.npy"
    np.save(joints, sample_motion)
    with pytest.raises(MotionFileError, match=r"joints\.npy is not HumanML3D / KIT-ML feature rows: it holds a 3-D"):
        read_motion_file(joints, MotionFileOptions(motion_format="features"))


def _patches(extractor, motions, **kwargs):
    return extractor(motions, return_motion_lengths=True, **kwargs)


@pytest.mark.parametrize("skeleton, joints", [("humanml3d", 22), ("kit", 21)])
def test_rows_give_the_motion_values_of_their_positions(tmp_path, sample_motion, skeleton, joints):
    """Through the processor, a rows file, rows in memory and the positions they came from agree, with
    statistics fitted on the rows files equal to those fitted on the positions."""
    motion = turning(sample_motion if joints == 22 else kit_shaped(sample_motion), turns=0.8)
    rows = features_from_positions(motion)
    positions = expected_round_trip(motion).astype(np.float32)
    path = tmp_path / "000001.npy"
    np.save(path, rows)

    from_rows = MotionPatchFeatureExtractor(skeleton=skeleton)
    from_positions = MotionPatchFeatureExtractor(skeleton=skeleton)
    for ours, theirs in zip(from_rows.fit_statistics([str(path)]), from_positions.fit_statistics([positions])):
        np.testing.assert_allclose(ours, theirs, atol=1e-5, rtol=0)
    expected = _patches(from_positions, [positions], motion_fps=12.5)
    for given in (str(path), rows):
        out = _patches(from_rows, [given], motion_fps=12.5)
        np.testing.assert_allclose(out["motion_values"], expected["motion_values"], atol=1e-4, rtol=0)
        assert out["motion_lengths"].tolist() == expected["motion_lengths"].tolist()
    assert np.abs(expected["motion_values"]).max() > 1.0  # z-scores: a difference would show


def test_rows_forced_as_joints_are_refused_by_the_processor(tmp_path, sample_motion):
    path = tmp_path / "rows.npy"
    np.save(path, features_from_positions(sample_motion))
    with pytest.raises(ValueError, match=r"shape \(169, 263\) is not \(frames, joints, 3\)"):
        MotionPatchFeatureExtractor()(str(path), file_options=MotionFileOptions(motion_format="joints"))
    with pytest.raises(ValueError, match=r"shape \(169, 100\) is not \(frames, joints, 3\) nor feature rows"):
        MotionPatchFeatureExtractor()(np.zeros((169, 100)))
    with pytest.raises(TypeError, match="file_options must be a MotionFileOptions"):
        MotionPatchFeatureExtractor()(str(path), file_options={"motion_format": "joints"})


def test_a_dataset_folder_of_rows_loads_as_joints(tmp_path, sample_motion):
    from motionpatches.training.data.motion_folder import load_motion_folder

    root = tmp_path / "HumanML3D"
    (root / "new_joints").mkdir(parents=True)
    (root / "texts").mkdir()
    for name, motion in (("000001", sample_motion), ("000002", turning(sample_motion))):
        np.save(root / "new_joints" / f"{name}.npy", features_from_positions(motion))
        (root / "texts" / f"{name}.txt").write_text("a person walks#a/DET person/NOUN walk/VERB#0.0#0.0\n")
    for split in ("train", "val", "test"):
        (root / f"{split}.txt").write_text("000001\n000002\n")
    data = load_motion_folder(str(root), skeleton="humanml3d", fps=20.0)
    loaded = data["test"].with_format("numpy")
    np.testing.assert_allclose(loaded[1]["motion"], expected_round_trip(turning(sample_motion)), atol=1e-4, rtol=0)


def test_the_command_line_embeds_rows_as_the_positions_they_came_from(tmp_path, sample_motion, saved_tiny_model, cli):
    """`motionpatches embed` on a folder of rows and of the positions they encode gives the same embeddings."""
    motion = turning(sample_motion, turns=0.6)
    folder = tmp_path / "motions"
    folder.mkdir()
    np.save(folder / "a_rows.npy", features_from_positions(motion))
    np.save(folder / "b_positions.npy", expected_round_trip(motion).astype(np.float32))
    out = tmp_path / "embeddings.npz"
    result = cli("embed", folder, "--model", saved_tiny_model, "--out", out)
    assert result.returncode == 0, result.stderr
    saved = np.load(out)
    assert [name.rsplit("/", 1)[-1] for name in saved["files"]] == ["a_rows.npy", "b_positions.npy"]
    np.testing.assert_allclose(saved["embeddings"][0], saved["embeddings"][1], atol=1e-4, rtol=0)
    assert "skipped 0" in result.stderr

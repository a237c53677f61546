"""Inputs that must be refused -- or survived -- with a message naming the file (or the motion) and what to
do: values the model would turn into NaN, frame rates that would allocate without bound, unreadable files
through every loader, and bad parameters."""

import json
import logging
import tracemalloc

import numpy as np
import pytest
from bvh_samples import bvh_text

from motionpatches import MotionPatchFeatureExtractor
from motionpatches.processors.feature_extraction_motionpatches import (
    MAX_FEATURE_MAGNITUDE,
    read_motion_file,
    repeat_frames_to_fps,
    resample_frame_rate,
)
from motionpatches.processors.motion_files import MotionFileError
from motionpatches.processors.skeletons import Skeleton
from motionpatches.training.data.classification import load_babel, load_label_csv
from motionpatches.training.data.interhuman import load_interhuman
from motionpatches.training.data.motion_folder import load_motion_folder

# ----------------------------------------------------------------------------------------- huge values


def test_huge_values_are_refused_with_the_motion_and_the_magnitude(sample_motion, tmp_path):
    extractor = MotionPatchFeatureExtractor()
    with pytest.raises(ValueError, match=r"motion 1: its features reach [\d.]+e\+20 after normalisation"):
        extractor([sample_motion, sample_motion * 1e20])
    path = tmp_path / "huge.npy"
    np.save(path, sample_motion * 1e20)
    with pytest.raises(ValueError) as error:
        extractor([sample_motion, str(path)])
    message = str(error.value)
    assert f"motion 1 ({path})" in message and "e+20" in message and "unit" in message, message


@pytest.mark.parametrize("output_format", ["patches", "joints"])
def test_the_magnitude_limit_is_the_documented_one(output_format):
    extractor = MotionPatchFeatureExtractor(output_format=output_format)
    below = np.full((10, 22, 3), 0.9 * MAX_FEATURE_MAGNITUDE, dtype=np.float32)
    assert np.isfinite(extractor(below)["motion_values"]).all()
    with pytest.raises(ValueError, match=r"motion 0: its features reach 1\.1e\+06"):
        extractor(below / 0.9 * 1.1)


def test_statistics_that_blow_features_up_are_refused(sample_motion):
    extractor = MotionPatchFeatureExtractor(mean=np.zeros((22, 3)), std=np.full((22, 3), 1e-30))
    with pytest.raises(ValueError, match="motion 0: its features reach .*mean and std"):
        extractor(sample_motion)


# ----------------------------------------------------------------------------------------- frame rates


@pytest.mark.parametrize("mode", ["linear", "repeat"])
def test_a_low_frame_rate_costs_only_the_window(mode):
    # 20,000 frames at 1 fps are 400,000 frames at 20 fps: 100 MB if the whole motion were resampled
    motion = np.random.default_rng(0).normal(size=(20_000, 22, 3)).astype(np.float32)
    extractor = MotionPatchFeatureExtractor(frame_rate_mode=mode)
    tracemalloc.start()
    try:
        out = extractor(motion, motion_fps=1.0, crop="random", rng=0, return_motion_lengths=True)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert out["motion_lengths"].tolist() == [224]
    assert peak < 8 * 2**20, f"peak {peak / 2**20:.1f} MiB"


@pytest.mark.parametrize("mode", ["linear", "repeat"])
def test_resampling_the_window_equals_resampling_everything_then_cropping(mode, sample_motion):
    resample = {"linear": resample_frame_rate, "repeat": repeat_frames_to_fps}[mode]
    extractor = MotionPatchFeatureExtractor(num_frames=64, frame_rate_mode=mode)
    motions = [sample_motion, sample_motion[:3], np.random.default_rng(1).normal(size=(400, 22, 3)).astype(np.float32)]
    for motion in motions:
        for fps in (1.0, 12.5, 29.97, 60.0, 1000.0):
            whole = resample(motion, fps, 20.0)
            for crop, seed in (("first", 0), ("random", 0), ("random", 7)):
                start = 0
                if crop == "random" and len(whole) > 64:
                    start = int(np.random.default_rng(seed).integers(0, len(whole) - 64 + 1))
                expected = extractor(whole[start : start + 64])["motion_values"]
                windowed = extractor(motion, motion_fps=fps, crop=crop, rng=seed)["motion_values"]
                assert windowed.tobytes() == expected.tobytes(), (len(motion), fps, crop, seed)


@pytest.mark.parametrize("fps", [1e-3, 0.5, 1000.5, 1e9])
def test_frame_rates_outside_the_range_are_refused_naming_the_file(fps, sample_motion_path):
    with pytest.raises(ValueError) as error:
        MotionPatchFeatureExtractor()([sample_motion_path], motion_fps=fps)
    message = str(error.value)
    assert sample_motion_path in message and "motion_fps" in message and "1 to 1000 frames per second" in message


def test_a_bvh_frame_time_outside_the_range_is_refused_by_the_processor(tmp_path):
    path = tmp_path / "slow.bvh"
    path.write_text(bvh_text(frames=30, fps=1e-4))  # Frame Time: 10000
    with pytest.raises(MotionFileError) as error:
        MotionPatchFeatureExtractor(skeleton="kit")([str(path)])
    message = str(error.value)
    assert str(path) in message and "1 to 1000 frames per second" in message and "Frame Time" in message


# ----------------------------------------------------------------------------------------- parameters


@pytest.mark.parametrize(
    "value, error",
    [("20", TypeError), (True, TypeError), (float("nan"), ValueError), (-20.0, ValueError), (0, ValueError)],
)
def test_bad_motion_fps_names_the_parameter_and_the_accepted_values(value, error, sample_motion, sample_motion_path):
    extractor = MotionPatchFeatureExtractor()
    with pytest.raises(error, match=r"motion 0: motion_fps.*1 to 1000 frames per second"):
        extractor(sample_motion, motion_fps=value)
    with pytest.raises(error, match=r"motion 1 \(.*012314\.npy\): motion_fps.*1 to 1000"):
        extractor([sample_motion, sample_motion_path], motion_fps=[20.0, value])
    with pytest.raises(error, match=r"fps.*1 to 1000 frames per second"):
        MotionPatchFeatureExtractor(fps=value)


def test_numpy_frame_rates_are_numbers(sample_motion):
    extractor = MotionPatchFeatureExtractor()
    expected = extractor(sample_motion, motion_fps=12.5)["motion_values"]
    np.testing.assert_array_equal(extractor(sample_motion, motion_fps=np.float32(12.5))["motion_values"], expected)
    np.testing.assert_array_equal(extractor(sample_motion, motion_fps=np.array([12.5]))["motion_values"], expected)


def test_loaders_and_skeletons_check_their_frame_rates(tmp_path):
    (tmp_path / "clips.csv").write_text("file,label\na.npy,walk\n")
    with pytest.raises(TypeError, match="clips.csv: fps must be a number.*1 to 1000"):
        load_label_csv(tmp_path / "clips.csv", fps="30")
    with pytest.raises(ValueError, match="fps=0.*1 to 1000"):
        load_babel(tmp_path / "babel.json", tmp_path, fps=0)
    with pytest.raises(ValueError, match="fps=-1.*1 to 1000"):
        load_interhuman(tmp_path, fps=-1)
    with pytest.raises(ValueError, match="fps=0.*1 to 1000"):
        load_motion_folder(tmp_path, skeleton="humanml3d", fps=0)
    spec = {"name": "rig", "joint_names": ["a", "b"], "chains": {"torso": ["a", "b"]}, "fps": "30"}
    (tmp_path / "rig.json").write_text(json.dumps(spec))
    with pytest.raises(TypeError, match="skeleton 'rig': fps must be a number"):
        Skeleton.from_json_file(tmp_path / "rig.json")


# ----------------------------------------------------------------------------------------- files


def write_bad_file(path, kind):
    """A file of `kind` at `path`; returns the message fragment that names the problem and the remedy."""
    motion = np.zeros((20, 22, 3), dtype=np.float32)
    if kind == "empty":
        path.write_bytes(b"")
        return "is empty (0 bytes)", "numpy.save"
    if kind == "npz content":
        with open(path, "wb") as f:
            np.savez(f, positions=motion)
        return "is a .npz archive", "numpy.save"
    if kind == "random bytes":
        path.write_bytes(np.random.default_rng(0).bytes(300))
        return "is not a numeric .npy array", "numpy.save"
    if kind == "objects":
        np.save(path, np.array([{"joints": 22}], dtype=object), allow_pickle=True)
        return "is not a numeric .npy array: it holds Python objects", "save joint positions as a float array"
    if kind == "text":
        np.save(path, np.full((20, 22, 3), "x"))
        return "is not a numeric .npy array: its values are <U1", "numbers"
    if kind == "truncated":
        np.save(path, motion)
        path.write_bytes(path.read_bytes()[:-100])
        return "is truncated", "write the file again"
    raise AssertionError(kind)


BAD_KINDS = ["empty", "npz content", "random bytes", "objects", "text", "truncated"]


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_unreadable_npy_files_raise_one_error_naming_the_file_and_the_fix(kind, tmp_path, sample_motion):
    path = tmp_path / "bad.npy"
    problem, remedy = write_bad_file(path, kind)
    with pytest.raises(MotionFileError) as error:
        MotionPatchFeatureExtractor()([sample_motion, str(path)])
    message = str(error.value)
    assert str(path) in message and problem in message and remedy in message, message
    assert "allow_pickle" not in message and error.value.path == str(path)


def test_npz_files_and_missing_files(tmp_path):
    path = tmp_path / "smpl.npz"
    np.savez(path, poses=np.zeros((20, 72)))
    with pytest.raises(MotionFileError, match=r"smpl\.npz: \.npz motions .* are not read yet.*numpy\.save"):
        read_motion_file(path)
    missing = tmp_path / "gone.npy"
    for error in (FileNotFoundError, MotionFileError):
        with pytest.raises(error, match=f"motion file not found: {missing}"):
            MotionPatchFeatureExtractor()([str(missing)])


def test_a_file_with_the_wrong_joint_count_is_named_with_the_skeleton_option(tmp_path, sample_motion):
    kit = tmp_path / "kit_take.npy"
    np.save(kit, sample_motion[:, :21])
    with pytest.raises(ValueError) as error:
        MotionPatchFeatureExtractor()([sample_motion, str(kit)])
    message = str(error.value)
    assert f"motion 1 ({kit}) has 21 joints but skeleton 'humanml3d' has 22" in message, message
    assert "skeleton='kit'" in message and "--skeleton kit" in message
    odd = tmp_path / "odd.npy"
    np.save(odd, np.resize(sample_motion, (30, 23, 3)))
    with pytest.raises(ValueError, match=r"odd\.npy\) has 23 joints .* no preset has 23 joints.*--skeleton rig\.json"):
        MotionPatchFeatureExtractor()(str(odd))


def test_the_csv_loader_names_the_csv_line_and_the_file(tmp_path):
    write_bad_file(tmp_path / "a.npy", "empty")
    (tmp_path / "clips.csv").write_text("file,label\na.npy,walk\n")
    with pytest.raises(MotionFileError) as error:
        load_label_csv(tmp_path / "clips.csv")
    message = str(error.value)
    assert f"{tmp_path / 'clips.csv'}, line 2" in message and str(tmp_path / "a.npy") in message
    assert "is empty (0 bytes)" in message and "numpy.save" in message


def test_babel_skips_and_counts_unreadable_joint_files(tmp_path, caplog):
    annotation = {"dur": 2.0, "seq_ann": {"labels": [{"proc_label": "walk"}]}}
    babel = {"1": {**annotation, "feat_p": "good.npz"}, "2": {**annotation, "feat_p": "empty.npz"}}
    (tmp_path / "val.json").write_text(json.dumps(babel))
    np.save(tmp_path / "good.npy", np.zeros((60, 22, 3), dtype=np.float32))
    write_bad_file(tmp_path / "empty.npy", "empty")
    with caplog.at_level(logging.WARNING):
        data = load_babel(tmp_path / "val.json", tmp_path, fps=30.0)
    assert list(data["id"]) == ["1#0"]
    assert "skipped 1 (empty file)" in caplog.text


def test_interhuman_skips_counts_and_names_unreadable_files(tmp_path, caplog):
    root = tmp_path / "InterHuman"
    for folder in ("motions_processed/person1", "motions_processed/person2", "annots", "split"):
        (root / folder).mkdir(parents=True)
    for motion_id in ("1", "2"):
        for person in ("person1", "person2"):
            np.save(root / "motions_processed" / person / f"{motion_id}.npy", np.zeros((30, 22, 3), np.float32))
        (root / "annots" / f"{motion_id}.txt").write_text("two people shake hands\n")
    broken = root / "motions_processed" / "person2" / "2.npy"
    write_bad_file(broken, "npz content")
    (root / "split" / "train.txt").write_text("1\n2\n")
    with caplog.at_level(logging.WARNING):
        data = load_interhuman(root)
    assert list(data["train"]["id"]) == ["1"]
    assert "skipped 1 (unsupported .npz)" in caplog.text and str(broken) in caplog.text

"""Frames the crop discards are never converted, checked or processed: bad values there change nothing, the same
values inside the window are refused naming the motion's own frame number."""

import numpy as np
import pytest
import torch

from motionpatches import MotionPatchFeatureExtractor
from motionpatches.processors.feature_extraction_motionpatches import read_motion

WINDOW = 32


def _motion(frames: int, seed: int = 0, dtype=np.float32) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(frames, 22, 3)).astype(dtype)


def _random_start(frames: int, seed: int) -> int:
    """The window start `crop="random"` draws with `rng=seed` (the extractor's documented draw)."""
    return int(np.random.default_rng(seed).integers(0, frames - WINDOW + 1))


@pytest.mark.parametrize("output_format", ["patches", "joints"])
@pytest.mark.parametrize("crop, seed", [("first", None), ("random", 3)])
def test_bad_values_outside_the_window_change_nothing(output_format, crop, seed):
    extractor = MotionPatchFeatureExtractor(num_frames=WINDOW, output_format=output_format)
    motion = _motion(200, dtype=np.float64)
    start = 0 if crop == "first" else _random_start(len(motion), seed)
    expected = extractor(motion[start : start + WINDOW])["motion_values"]
    poisoned = motion.copy()
    poisoned[:start] = np.nan
    poisoned[start + WINDOW :: 2] = np.inf
    poisoned[start + WINDOW + 1 :: 2] = 1e300  # would be inf had the whole float64 motion been rounded to float32
    out = extractor(poisoned, crop=crop, rng=seed)["motion_values"]
    assert out.tobytes() == expected.tobytes()


@pytest.mark.parametrize("kind, value", [("NaN", np.nan), ("inf", -np.inf)])
@pytest.mark.parametrize("crop, seed", [("first", None), ("random", 3)])
def test_a_bad_value_inside_the_window_is_refused_naming_its_frame(kind, value, crop, seed):
    extractor = MotionPatchFeatureExtractor(num_frames=WINDOW)
    motion = _motion(200)
    start = 0 if crop == "first" else _random_start(len(motion), seed)
    frame = start + WINDOW - 1  # the window's last frame, numbered as in the motion
    motion[frame, 7, 2] = value
    motion[start + WINDOW :] = np.nan  # a bad value after the window must not be the one named
    with pytest.raises(ValueError, match=rf"motion 1: contains {kind} \(first at frame {frame}, joint 7\)"):
        extractor([_motion(20, seed=1), motion], crop=crop, rng=seed)  # 20 frames: no draw for motion 0


@pytest.mark.parametrize("mode", ["linear", "repeat"])
def test_frame_rate_resampling_takes_only_the_source_frames_of_the_window(mode):
    """At 60 -> 20 fps the window's 32 frames come from source frames 0-96; the rest of the motion is not read."""
    extractor = MotionPatchFeatureExtractor(num_frames=WINDOW, frame_rate_mode=mode)
    motion = _motion(600)
    expected = extractor(motion, motion_fps=60.0)["motion_values"]
    poisoned = motion.copy()
    poisoned[100:] = np.nan
    assert extractor(poisoned, motion_fps=60.0)["motion_values"].tobytes() == expected.tobytes()
    motion[60, 4, 1] = np.nan  # a source frame the window interpolates from (linear) or repeats (every 3rd)
    with pytest.raises(ValueError, match=r"motion 0: contains NaN \(first at frame 60, joint 4\)"):
        extractor(motion, motion_fps=60.0)


def test_float64_tensors_are_rounded_on_the_window_only():
    extractor = MotionPatchFeatureExtractor(num_frames=WINDOW)
    motion = torch.from_numpy(_motion(100, dtype=np.float64))
    expected = extractor(motion[:WINDOW].float())["motion_values"]
    motion[WINDOW:] = 1e300
    assert extractor(motion)["motion_values"].tobytes() == expected.tobytes()


def test_person_lists_are_stacked_on_the_window_only():
    extractor = MotionPatchFeatureExtractor(num_frames=WINDOW, num_persons=2)
    first, second = _motion(100), _motion(100, seed=1)
    expected = extractor([[first[:WINDOW], second[:WINDOW]]])["motion_values"]
    second[WINDOW:] = np.nan
    assert extractor([[first, second]])["motion_values"].tobytes() == expected.tobytes()
    second[5, 9, 0] = np.nan
    with pytest.raises(ValueError, match=r"motion 0: contains NaN \(first at frame 5, person 1, joint 9\)"):
        extractor([[first, second]])


def test_huge_values_outside_the_window_pass_and_inside_are_refused():
    extractor = MotionPatchFeatureExtractor(num_frames=WINDOW)
    motion = _motion(100)
    motion[WINDOW:] = 1e20
    assert np.abs(extractor(motion)["motion_values"]).max() < 10
    motion[WINDOW - 1, 0, 0] = 1e20
    with pytest.raises(ValueError, match=r"motion 0: its features reach 1e\+20 after normalisation"):
        extractor(motion)


def test_whole_motion_readers_still_check_every_frame():
    """`read_motion` and `fit_statistics` use every frame, so a NaN anywhere is refused there."""
    motion = _motion(300)
    motion[250, 2, 1] = np.nan
    with pytest.raises(ValueError, match=r"motion: contains NaN \(first at frame 250, joint 2\)"):
        read_motion(motion)
    with pytest.raises(ValueError, match=r"motion 1: contains NaN \(first at frame 250, joint 2\)"):
        MotionPatchFeatureExtractor().fit_statistics([_motion(10), motion])

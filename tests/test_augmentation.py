"""Training augmentations: off is the identity and draws nothing, on is deterministic with a fixed number of
draws, and each transform keeps what it must (heights and bone lengths under rotation, frame counts under speed
changes, contiguous segments under cropping, the mirror's motion and caption together)."""

import math

import numpy as np
import pytest

from motionpatches.processors import SKELETON_PRESETS
from motionpatches.processors.mirroring import mirror_caption, mirror_motion
from motionpatches.training.augmentation import (
    AugmentationSettings,
    augment,
    change_speed,
    crop_frames,
    rotate_about_vertical,
)

SKELETON = SKELETON_PRESETS["humanml3d"]
ALL_ON = AugmentationSettings(mirror_prob=0.5, rotation_degrees=30.0, speed_range=(0.9, 1.1), min_crop_fraction=0.8)


def motion(frames=20, persons=None, seed=0):
    shape = (frames, 22, 3) if persons is None else (frames, persons, 22, 3)
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def test_all_off_is_the_identity_and_draws_nothing():
    rng = np.random.default_rng(5)
    state = rng.bit_generator.state
    original = motion()
    caption = "a person waves the left hand"
    out, out_caption = augment(original, caption, rng, SKELETON, AugmentationSettings())
    assert rng.bit_generator.state == state
    assert out_caption is caption
    assert out.dtype == np.float32 and not np.shares_memory(out, original)
    np.testing.assert_array_equal(out, original)
    assert not AugmentationSettings().enabled and ALL_ON.enabled


@pytest.mark.parametrize(
    ("settings", "draws"),
    [
        (ALL_ON, 5),
        (AugmentationSettings(min_crop_fraction=1.0), 2),
        (AugmentationSettings(speed_range=(1.0, 1.0)), 1),
        (AugmentationSettings(rotation_degrees=10.0), 1),
        (AugmentationSettings(mirror_prob=1.0), 1),
    ],
)
def test_each_enabled_augmentation_draws_a_fixed_count(settings, draws):
    for frames in (1, 9, 40):
        rng, reference = np.random.default_rng(1), np.random.default_rng(1)
        augment(motion(frames), "left", rng, SKELETON, settings)
        reference.random(draws)  # every draw here is one double
        assert rng.bit_generator.state == reference.bit_generator.state


def test_deterministic_given_the_generator_and_input_untouched():
    original = motion(30)
    before = original.copy()
    runs = [augment(original, "turns left", np.random.default_rng(9), SKELETON, ALL_ON) for _ in range(2)]
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1] and runs[0][0].dtype == np.float32
    np.testing.assert_array_equal(original, before)
    # and different generators give different results
    other = augment(original, "turns left", np.random.default_rng(10), SKELETON, ALL_ON)[0]
    assert other.shape != runs[0][0].shape or not np.array_equal(other, runs[0][0])


def pairwise_distances(positions):
    return np.linalg.norm(positions[..., :, None, :] - positions[..., None, :, :], axis=-1)


@pytest.mark.parametrize("up_axis", [1, 2])
def test_rotation_keeps_heights_and_distances(up_axis):
    original = motion(8).astype(np.float64)
    rotated = rotate_about_vertical(original, 37.0, up_axis)
    np.testing.assert_array_equal(rotated[..., up_axis], original[..., up_axis])
    np.testing.assert_allclose(pairwise_distances(rotated), pairwise_distances(original), atol=1e-12)
    assert not np.allclose(rotated, original)
    # through the origin: a point on the vertical axis stays put
    np.testing.assert_allclose(
        rotate_about_vertical(np.eye(3)[up_axis][None, None], 37.0, up_axis)[0, 0], np.eye(3)[up_axis]
    )


def test_rotation_is_right_handed_about_y():
    forward = np.array([[[0.0, 0.0, 1.0]]])  # +Z, the facing direction
    np.testing.assert_allclose(rotate_about_vertical(forward, 90.0)[0, 0], [1.0, 0.0, 0.0], atol=1e-12)


def test_augmented_rotation_keeps_heights_and_distances():
    original = motion(10)
    settings = AugmentationSettings(rotation_degrees=180.0)
    out, _ = augment(original, None, np.random.default_rng(2), SKELETON, settings)
    np.testing.assert_allclose(out[..., 1], original[..., 1], atol=1e-6)
    np.testing.assert_allclose(pairwise_distances(out), pairwise_distances(original), atol=1e-5)


@pytest.mark.parametrize(("frames", "factor", "expected"), [(40, 1.25, 32), (40, 0.8, 50), (40, 1.0, 40), (3, 10.0, 1)])
def test_speed_changes_the_frame_count(frames, factor, expected):
    # a motion linear in time stays linear and keeps its first and last frames
    ramp = np.linspace(0.0, 1.0, frames)[:, None, None] * np.ones((1, 22, 3))
    out, _ = augment(ramp, None, np.random.default_rng(0), SKELETON, AugmentationSettings(speed_range=(factor, factor)))
    assert len(out) == expected == max(1, round(frames / factor))
    if expected > 1:
        np.testing.assert_allclose(out[:, 0, 0], np.linspace(0.0, 1.0, expected), atol=1e-6)


def test_speed_interpolates_between_neighbouring_frames():
    original = np.arange(5, dtype=np.float64)[:, None, None] ** 2 * np.ones((1, 1, 3))  # 0 1 4 9 16
    out = change_speed(original, 5 / 9)  # 9 frames: half-frame steps
    np.testing.assert_allclose(out[:, 0, 0], [0, 0.5, 1, 2.5, 4, 6.5, 9, 12.5, 16])


def test_crop_keeps_a_contiguous_segment_within_the_bounds():
    frames, fraction = 10, 0.45
    timeline = np.arange(frames, dtype=np.float32)[:, None, None] * np.ones((1, 22, 3), np.float32)
    settings = AugmentationSettings(min_crop_fraction=fraction)
    lengths, starts = set(), set()
    for seed in range(300):
        out, _ = augment(timeline, None, np.random.default_rng(seed), SKELETON, settings)
        start = int(out[0, 0, 0])
        np.testing.assert_array_equal(out, timeline[start : start + len(out)])
        lengths.add(len(out))
        starts.add(start)
    assert lengths == set(range(math.ceil(fraction * frames), frames + 1))
    assert starts == set(range(frames - math.ceil(fraction * frames) + 1))
    # the extreme draws reach both ends and never overrun
    assert len(crop_frames(timeline, 0.5, 0.0, 0.0)) == 5
    assert len(crop_frames(timeline, 0.5, 0.999999, 0.999999)) == 10
    np.testing.assert_array_equal(crop_frames(timeline, 0.5, 0.0, 0.999999), timeline[5:])
    assert len(crop_frames(timeline[:1], 0.3, 0.5, 0.5)) == 1


def test_mirror_prob_one_gives_the_mirrored_motion_and_caption():
    original = motion(6)
    settings = AugmentationSettings(mirror_prob=1.0)
    out, caption = augment(original, "kicks with the Left leg", np.random.default_rng(0), "humanml3d", settings)
    np.testing.assert_array_equal(out, mirror_motion(original, SKELETON))
    assert caption == mirror_caption("kicks with the Left leg") == "kicks with the Right leg"


def test_mirror_probability_is_honoured():
    settings = AugmentationSettings(mirror_prob=0.25)
    mirrored = sum(
        augment(motion(2), "left", np.random.default_rng(seed), SKELETON, settings)[1] == "right" for seed in range(400)
    )
    assert 70 <= mirrored <= 130  # 100 expected, binomial std ~8.7


def test_two_persons_get_the_same_transform():
    pair = motion(25, persons=2, seed=4)
    out, _ = augment(pair, "x", np.random.default_rng(3), SKELETON, ALL_ON)
    for person in range(2):
        alone, _ = augment(pair[:, person], "x", np.random.default_rng(3), SKELETON, ALL_ON)
        np.testing.assert_array_equal(out[:, person], alone)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mirror_prob": 1.5}, "mirror_prob"),
        ({"mirror_prob": float("nan")}, "mirror_prob"),
        ({"rotation_degrees": -1.0}, "rotation_degrees"),
        ({"rotation_degrees": 200.0}, "rotation_degrees"),
        ({"speed_range": (1.1, 0.9)}, "speed_range"),
        ({"speed_range": (0.0, 1.0)}, "speed_range"),
        ({"speed_range": 1.1}, "speed_range"),
        ({"min_crop_fraction": 0.0}, "min_crop_fraction"),
        ({"min_crop_fraction": 1.2}, "min_crop_fraction"),
    ],
)
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AugmentationSettings(**kwargs)


def test_bad_inputs_are_refused():
    assert AugmentationSettings(speed_range=[0.9, 1.1]).speed_range == (0.9, 1.1)
    with pytest.raises(ValueError, match="shape"):
        augment(np.zeros((5, 66)), "a", np.random.default_rng(0), SKELETON, ALL_ON)
    with pytest.raises(ValueError, match="needs the skeleton"):
        augment(motion(5), "a", np.random.default_rng(0), None, ALL_ON)
    with pytest.raises(ValueError, match="21 joints"):
        augment(np.zeros((5, 21, 3)), "a", np.random.default_rng(0), SKELETON, AugmentationSettings(mirror_prob=1.0))

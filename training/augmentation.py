"""Cheap training-time augmentations of a (motion, caption) pair: crop, speed, rotation, mirroring.

Each works on joint positions `(frames, joints, 3)` or `(frames, persons, joints, 3)` before the feature
extractor sees them; two persons get the same transform, so their relative placement is kept.

Random numbers: an enabled augmentation draws the same count of numbers for every sample and a disabled one
draws none, in this fixed order:

1. crop (`min_crop_fraction` set): two uniforms in [0, 1), the length and then the start of the segment;
2. speed (`speed_range` set): one uniform in [low, high), the factor;
3. rotation (`rotation_degrees` > 0): one uniform in [-deg, deg), the angle;
4. mirror (`mirror_prob` > 0): one uniform in [0, 1), mirrored when below `mirror_prob`.

So with everything off the generator is left untouched and a training run stays bit-identical to one without
augmentation, and the number of draws per sample depends on the settings only, never on the motion or on
earlier draws.
"""

import math
import numbers
from dataclasses import dataclass

import numpy as np

from motionpatches.processors.mirroring import mirror_caption, mirror_motion


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


@dataclass(frozen=True)
class AugmentationSettings:
    """Which augmentations run; the defaults switch all of them off.

    mirror_prob: probability of mirroring a sample (motion and caption together), in [0, 1].
    rotation_degrees: the motion turns about the vertical axis by an angle uniform in [-deg, deg), 0 <= deg <= 180.
    speed_range: `(low, high)`, e.g. `(0.9, 1.1)`: the motion is resampled to `round(frames / factor)` frames
        for a factor uniform in [low, high) (factor > 1 plays it faster); `None` for off.
    min_crop_fraction: keep a random contiguous segment of at least this fraction of the frames, in (0, 1];
        `None` for off.
    """

    mirror_prob: float = 0.0
    rotation_degrees: float = 0.0
    speed_range: tuple[float, float] | None = None
    min_crop_fraction: float | None = None

    def __post_init__(self):
        if not (_is_number(self.mirror_prob) and 0.0 <= self.mirror_prob <= 1.0):
            raise ValueError(f"mirror_prob must be a probability in [0, 1], got {self.mirror_prob!r}")
        if not (_is_number(self.rotation_degrees) and 0.0 <= self.rotation_degrees <= 180.0):
            raise ValueError(
                f"rotation_degrees must be in [0, 180] (the angle is uniform in +-rotation_degrees), got "
                f"{self.rotation_degrees!r}"
            )
        if self.speed_range is not None:
            try:
                low, high = (float(value) for value in self.speed_range)
            except (TypeError, ValueError):
                raise ValueError(f"speed_range must be (low, high) or None, got {self.speed_range!r}") from None
            if not (0.0 < low <= high and math.isfinite(high)):
                raise ValueError(
                    f"speed_range must be (low, high) with 0 < low <= high, e.g. (0.9, 1.1), got {self.speed_range!r}"
                )
            object.__setattr__(self, "speed_range", (low, high))
        if self.min_crop_fraction is not None and not (
            _is_number(self.min_crop_fraction) and 0.0 < self.min_crop_fraction <= 1.0
        ):
            raise ValueError(f"min_crop_fraction must be in (0, 1] or None, got {self.min_crop_fraction!r}")

    @property
    def enabled(self) -> bool:
        """Whether any augmentation runs (and draws random numbers)."""
        return (
            self.mirror_prob > 0
            or self.rotation_degrees > 0
            or self.speed_range is not None
            or self.min_crop_fraction is not None
        )


def crop_frames(motion: np.ndarray, min_fraction: float, length_draw: float, start_draw: float) -> np.ndarray:
    """A contiguous segment of at least `ceil(min_fraction * frames)` frames (and at least one); the two draws
    in [0, 1) pick the length uniformly among the allowed lengths, then the start among the allowed starts."""
    frames = len(motion)
    shortest = min(frames, max(1, math.ceil(min_fraction * frames - 1e-9)))
    length = shortest + min(int(length_draw * (frames - shortest + 1)), frames - shortest)
    start = min(int(start_draw * (frames - length + 1)), frames - length)
    return motion[start : start + length]


def change_speed(motion: np.ndarray, factor: float) -> np.ndarray:
    """The motion played `factor` times as fast: `round(frames / factor)` frames (at least one), linearly
    interpolated between the original frames, the first and last frames kept (so the effective factor is
    `(frames - 1) / (new_frames - 1)`, within half a frame of `factor`)."""
    frames = len(motion)
    new_frames = max(1, int(round(frames / float(factor))))  # Python's round: halves go to the even count
    if frames == 1 or new_frames == frames:
        return motion.copy()
    position = np.linspace(0.0, frames - 1, new_frames) if new_frames > 1 else np.zeros(1)
    left = np.minimum(np.floor(position).astype(np.int64), frames - 1)
    right = np.minimum(left + 1, frames - 1)
    frac = (position - left).reshape(-1, *[1] * (motion.ndim - 1))
    return motion[left] * (1.0 - frac) + motion[right] * frac


def rotate_about_vertical(motion: np.ndarray, degrees: float, up_axis: int = 1) -> np.ndarray:
    """The motion turned by `degrees` about the vertical line through the origin (right-handed about +up).

    Through the origin, not the first frame's root: HumanML3D's joints and the demo's start with the root above
    the origin, and datasets whose motions start elsewhere just get a rotated start position as well.
    """
    # the two horizontal axes in cyclic order after up, so that the rotation is right-handed about +up
    a, b = (up_axis + 1) % 3, (up_axis + 2) % 3
    cos, sin = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    rotated = motion.copy()
    rotated[..., a] = cos * motion[..., a] - sin * motion[..., b]
    rotated[..., b] = sin * motion[..., a] + cos * motion[..., b]
    return rotated


def augment(
    motion,
    caption: str | None,
    rng: np.random.Generator,
    skeleton,
    settings: AugmentationSettings,
    up_axis: int = 1,
    lateral_axis: int = 0,
) -> tuple[np.ndarray, str | None]:
    """(motion, caption) after crop, speed change, rotation and mirroring, as `settings` ask.

    `motion` is `(frames, joints, 3)` or `(frames, persons, joints, 3)` joint positions and is not modified; the
    result is a new float32 array. The caption changes only when the sample is mirrored. `skeleton` (a
    `Skeleton` or preset name) is needed only for mirroring. Deterministic given `rng`'s state; see the module
    docstring for the draws.
    """
    array = np.asarray(motion)
    if array.ndim not in (3, 4) or array.shape[-1] != 3 or array.shape[0] == 0:
        raise ValueError(
            f"augment expects joint positions (frames, joints, 3) or (frames, persons, joints, 3) with at least one "
            f"frame, got shape {array.shape}"
        )
    if up_axis not in (0, 1, 2) or lateral_axis not in (0, 1, 2) or up_axis == lateral_axis:
        raise ValueError(f"up_axis and lateral_axis must be two different axes in 0..2, got {up_axis}, {lateral_axis}")
    if settings.mirror_prob > 0 and skeleton is None:
        raise ValueError("mirror_prob > 0 needs the skeleton, to know which joints swap")
    if not settings.enabled:
        return np.array(array, dtype=np.float32), caption
    # float64 while transforming, so crop + speed + rotation add no float32 rounding of their own
    out = np.asarray(array, dtype=np.float64)
    if settings.min_crop_fraction is not None:
        length_draw, start_draw = rng.random(), rng.random()
        out = crop_frames(out, settings.min_crop_fraction, length_draw, start_draw)
    if settings.speed_range is not None:
        out = change_speed(out, rng.uniform(*settings.speed_range))
    if settings.rotation_degrees > 0:
        out = rotate_about_vertical(out, rng.uniform(-settings.rotation_degrees, settings.rotation_degrees), up_axis)
    if settings.mirror_prob > 0 and rng.random() < settings.mirror_prob:
        out = mirror_motion(out, skeleton, lateral_axis)
        caption = caption if caption is None else mirror_caption(caption)
    return np.array(out, dtype=np.float32), caption

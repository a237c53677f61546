"""Turns joint-position motions `(T, J, 3)` into motion-patch images `(3, frames, parts * N)`.

Preprocessing (Motion Patches, Yu et al. CVPR 2024): per-joint z-score with dataset statistics,
each kinematic chain resampled to N points by linear interpolation, optional frame-rate
resampling, crop to `num_frames` (first window, or a random one for training) or zero padding.
All steps are linear per frame, so they are applied as: frame-rate resampling, crop, then one
matrix product per channel that z-scores and resamples every chain at once (the z-score folded
into the resampling matrix, its offset carried by a constant-1 column; padding frames are zero-filled,
not multiplied) -- the same numbers as the stated order, without touching frames that the
crop throws away. Frame-rate resampling too computes only the output frames of the crop window, so
memory follows `num_frames`, not the length or rate of the input; and the float32 conversion and the
NaN/inf and magnitude checks run on the window's frames only (`MotionFrames`): a motion's cost stops
growing at `num_frames` frames, and a bad value in a discarded frame is never seen.

Bounded inputs: frame rates (`fps`, `motion_fps`, a BVH file's) lie in 1 to 1000 frames per second
(`motion_files.FPS_RANGE`), and z-scored positions -- so the features, convex combinations of them --
within +-`MAX_FEATURE_MAGNITUDE` (1e6):
far above any real motion (z-scores, or raw millimetres without statistics) and far below the float32
overflow (around 1e19) that would turn the model's embeddings into NaN.

Shipped with saved checkpoints as remote code: imports only siblings from this folder.
"""

import os
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

import numpy as np
from transformers.feature_extraction_utils import BatchFeature, FeatureExtractionMixin
from transformers.utils import logging

from .humanml3d_features import ACCEPTED_WIDTHS, is_feature_rows, positions_from_features
from .motion_files import check_fps
from .motion_readers import DEFAULT_OPTIONS, MotionFileOptions, file_options_for_skeleton, read_motion_file
from .skeletons import Skeleton, resolve_skeleton, skeleton_hint

logger = logging.get_logger(__name__)

CROP_MODES = ("first", "random")
# "patches" feeds the motion-patch ViT; "joints" the raw-joint encoders (normalised, padded positions)
OUTPUT_FORMATS = ("patches", "joints")
MAX_FEATURE_MAGNITUDE = 1e6
ACCEPTED_MOTIONS = (
    "numpy array or torch tensor, HumanML3D / KIT-ML feature rows (frames, 263 | 251), or a path to a .npy "
    "(joints or feature rows), .bvh or .npz (SMPL-H / SMPL-X parameters) file"
)


def linear_resample_weights(num_points: int, num_out: int) -> np.ndarray:
    """`(num_points, num_out)` weights of OpenCV's INTER_LINEAR resize of a 1 x num_points row.

    OpenCV maps output pixel x to source position (x + 0.5) * num_points / num_out - 0.5 (half-pixel
    centres) and clamps it to the first/last source pixel; the authors' checkpoints were trained
    on exactly these values.
    """
    position = (np.arange(num_out, dtype=np.float64) + 0.5) * (num_points / num_out) - 0.5
    position = np.clip(position, 0.0, num_points - 1)
    left = np.floor(position).astype(np.int64)
    right = np.minimum(left + 1, num_points - 1)
    frac = position - left
    weights = np.zeros((num_points, num_out), dtype=np.float64)
    columns = np.arange(num_out)
    np.add.at(weights, (left, columns), 1.0 - frac)
    np.add.at(weights, (right, columns), frac)
    return weights


def resampled_frame_count(num_frames: int, source_fps: float, target_fps: float) -> int:
    """How many frames `resample_frame_rate` makes of `num_frames`."""
    if source_fps == target_fps:
        return num_frames
    # the tolerance absorbs rates read from rounded frame times (BVH's 0.0333333 s is not exactly 1/30)
    return int(np.floor((num_frames - 1) * target_fps / source_fps + 1e-3)) + 1


def resample_frame_rate(
    motion: np.ndarray, source_fps: float, target_fps: float, start: int = 0, stop: int | None = None
) -> np.ndarray:
    """Linear interpolation in time from `source_fps` to `target_fps` (first frame kept, no extrapolation).

    Returns output frames `[start, stop)` of the resampled motion (all by default): a crop window costs
    only its own frames, however long the motion or low its frame rate.
    """
    check_fps(source_fps, "source_fps")
    check_fps(target_fps, "target_fps")
    if source_fps == target_fps:
        return motion[start:stop]
    num_frames = motion.shape[0]
    num_out = resampled_frame_count(num_frames, source_fps, target_fps)
    stop = num_out if stop is None else min(stop, num_out)
    position = np.arange(start, stop) * (source_fps / target_fps)
    left = np.minimum(np.floor(position).astype(np.int64), num_frames - 1)
    right = np.minimum(left + 1, num_frames - 1)
    frac = (position - left).astype(motion.dtype).reshape(-1, *[1] * (motion.ndim - 1))
    return motion[left] * (1 - frac) + motion[right] * frac


def repeated_frame_indices(num_frames: int, source_fps: float, target_fps: float) -> np.ndarray:
    """The source frame of every output frame of `repeat_frames_to_fps` (one integer each, not the poses)."""
    check_fps(source_fps, "source_fps")
    check_fps(target_fps, "target_fps")
    block, out = int(source_fps), int(target_fps)
    if block % out == 0:
        return np.arange(0, num_frames, block // out)
    offsets = np.floor(source_fps / target_fps * np.arange(out)).astype(np.int64)
    indices = (np.arange(0, num_frames, block)[:, None] + offsets[None, :]).ravel()
    return indices[indices < num_frames]


def repeated_frame_count(num_frames: int, source_fps: float, target_fps: float) -> int:
    """How many frames `repeat_frames_to_fps` makes of `num_frames`."""
    return len(repeated_frame_indices(num_frames, source_fps, target_fps))


def repeat_frames_to_fps(
    motion: np.ndarray, source_fps: float, target_fps: float, start: int = 0, stop: int | None = None
) -> np.ndarray:
    """The reference code's frame-rate change, kept so its KIT-ML checkpoints see the inputs they were
    trained on: each block of int(source_fps) frames (taken as one second) becomes int(target_fps) frames
    by repeating frames floor(k * source_fps / target_fps); a final partial block keeps the indices that
    exist. For 12.5 -> 20 fps this plays motions 12.5/12 times faster and duplicates poses, so linear
    `resample_frame_rate` is the default. When int(source_fps) is a multiple of int(target_fps), every
    n-th frame is kept. `start`, `stop`: output frames to return, as in `resample_frame_rate`.
    """
    return motion[repeated_frame_indices(len(motion), source_fps, target_fps)[start:stop]]


class FrameRateMode(NamedTuple):
    count: Callable[[int, float, float], int]  # output frames for an input length
    resample: Callable[..., np.ndarray]  # (motion, source_fps, target_fps, start, stop) -> output frames


FRAME_RATE_MODES = {
    "linear": FrameRateMode(resampled_frame_count, resample_frame_rate),
    "repeat": FrameRateMode(repeated_frame_count, repeat_frames_to_fps),
}


def _describe(index: int | None, motion=None) -> str:
    """How messages name a motion: its index in the batch, and its file when it came from one."""
    name = "motion" if index is None else f"motion {index}"
    return f"{name} ({os.fspath(motion)})" if isinstance(motion, (str, os.PathLike)) else name


class LoadedMotion(NamedTuple):
    positions: np.ndarray  # float32 (T, J, 3), or (T, P, J, 3) for P persons
    fps: float | None  # known for BVH files, else None
    joint_names: tuple[str, ...] | None  # known for BVH files, else None


def _shape_text(persons: int) -> str:
    return "(frames, joints, 3)" if persons == 1 else f"(frames, {persons} persons, joints, 3)"


def check_file_options(file_options) -> MotionFileOptions:
    if file_options is None:
        return DEFAULT_OPTIONS
    if not isinstance(file_options, MotionFileOptions):
        raise TypeError(f"file_options must be a MotionFileOptions, got {type(file_options).__name__}")
    return file_options


class MotionFrames:
    """A motion read but not yet converted or checked: frames become float32 and are checked for NaN/inf only
    when taken (`frames[start:stop]`, `frames[indices]`), so a crop window costs its own frames however long
    the motion is -- a float64 file, a float64 tensor or a list of persons is not converted whole first.

    It offers what `resample_frame_rate` and `repeat_frames_to_fps` use of an array (`len`, `shape[0]`,
    `ndim`, `dtype`, indexing by a slice or an index array), so they take only the frames of the window.
    `checked=False` skips the NaN/inf test, for callers that test the result themselves (the extractor tests
    each window once, with its magnitude, and takes the frames again with `checked=True` only to name a bad one).
    """

    __slots__ = ("parts", "index", "source", "checked")
    dtype = np.dtype(np.float32)

    def __init__(self, parts: tuple, index: int | None, source=None, checked: bool = True):
        self.parts = parts  # one (T, J, 3) or (T, P, J, 3) array, or P (T, J, 3) arrays of one sample's persons
        self.index, self.source = index, source  # what messages name: see `name`
        self.checked = checked

    @property
    def name(self) -> str:
        # built only for a message: on the per-motion path it would cost as much as a check
        return _describe(self.index, self.source)

    def __len__(self) -> int:
        return len(self.parts[0])

    @property
    def shape(self) -> tuple:
        first = self.parts[0].shape
        return first if len(self.parts) == 1 else (first[0], len(self.parts), *first[1:])

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def with_checks(self) -> "MotionFrames":
        return MotionFrames(self.parts, self.index, self.source, checked=True)

    def __getitem__(self, frames) -> np.ndarray:
        # astype before np.stack: each person is rounded to float32 on its own, as when read whole
        taken = [part[frames].astype(np.float32, copy=False) for part in self.parts]
        array = taken[0] if len(taken) == 1 else np.stack(taken, axis=1)
        # a sum is non-finite whenever an element is (or, rarely, when it overflows): locate only then
        if self.checked and not np.isfinite(array.sum(dtype=np.float64)):
            self._refuse_non_finite(array, frames)
        return array

    def _refuse_non_finite(self, array: np.ndarray, frames) -> None:
        bad = np.argwhere(~np.isfinite(array))
        if not len(bad):
            return
        local, *person, joint, _ = bad[0]
        frame = np.arange(len(self))[frames][local]  # the motion's own frame number, not the window's
        kind = "NaN" if np.isnan(array[local]).any() else "inf"
        where = f"frame {frame}, person {person[0]}, joint {joint}" if person else f"frame {frame}, joint {joint}"
        raise ValueError(f"{self.name}: contains {kind} (first at {where})")


def read_motion_frames(
    motion, index: int | None = None, persons: int = 1, file_options: MotionFileOptions | None = None
) -> tuple[MotionFrames, float | None, tuple[str, ...] | None]:
    """`read_motion` without converting or checking the frames: a `MotionFrames`, the file's frame rate and
    joint names. Shapes, dtypes and frame counts are checked here; values when frames are taken."""
    options = check_file_options(file_options)
    fps = joint_names = None
    if persons > 1 and isinstance(motion, (list, tuple)):
        if len(motion) != persons:
            raise ValueError(f"{_describe(index)}: {len(motion)} person motions given, the processor expects {persons}")
        people = [read_motion_frames(person, index, file_options=options) for person in motion]
        lengths = {len(frames) for frames, _, _ in people}
        if len(lengths) > 1:
            raise ValueError(f"{_describe(index)}: the persons' motions have different frame counts {sorted(lengths)}")
        parts = tuple(frames.parts[0] for frames, _, _ in people)
        return MotionFrames(parts, index), people[0][1], people[0][2]
    if isinstance(motion, np.ndarray):  # first: the common case, and cheaper than the tests below
        array = motion
    elif isinstance(motion, (str, os.PathLike)):
        array, fps, joint_names = read_motion_file(motion, options)
    elif hasattr(motion, "detach") and hasattr(motion, "cpu"):  # a torch tensor, without importing torch
        tensor = motion.detach().cpu()
        # numpy has no bfloat16; every other dtype is converted to float32 on the window's frames only
        array = (tensor.float() if str(tensor.dtype) == "torch.bfloat16" else tensor).numpy()
    else:
        raise TypeError(
            f"{_describe(index)}: expected a {_shape_text(persons)} {ACCEPTED_MOTIONS}, got {type(motion).__name__}"
        )
    # integers ("i", "u") or floats ("f"); not bool, complex, strings or objects
    if array.dtype.kind not in "iuf":
        raise TypeError(f"{_describe(index, motion)}: dtype {array.dtype} is not numeric joint positions")
    if array.ndim == 2 and persons == 1 and options.motion_format != "joints" and is_feature_rows(array):
        # the root is integrated over time: every frame is needed, so these are converted whole
        array = positions_from_features(array)
    rank = 3 if persons == 1 else 4
    if array.ndim != rank or array.shape[-1] != 3 or (persons > 1 and array.shape[1] != persons):
        rows = f" nor feature rows (frames, {ACCEPTED_WIDTHS})" if persons == 1 and array.ndim == 2 else ""
        raise ValueError(f"{_describe(index, motion)}: shape {tuple(array.shape)} is not {_shape_text(persons)}{rows}")
    if array.shape[0] == 0:
        raise ValueError(f"{_describe(index, motion)}: has zero frames")
    return MotionFrames((array,), index, motion), fps, joint_names


def read_motion(
    motion, index: int | None = None, persons: int = 1, file_options: MotionFileOptions | None = None
) -> LoadedMotion:
    """A validated motion from an array, a tensor, HumanML3D / KIT-ML feature rows, a motion-file path (read
    with `file_options`) or, for several persons, a `(T, P, J, 3)` array or a sequence of P single-person
    motions of equal length. Every frame is converted to float32 and checked for NaN/inf."""
    frames, fps, joint_names = read_motion_frames(motion, index, persons, file_options)
    return LoadedMotion(frames[:], fps, joint_names)


def load_motion(
    motion, index: int | None = None, persons: int = 1, file_options: MotionFileOptions | None = None
) -> np.ndarray:
    """The validated float32 positions of `read_motion`."""
    return read_motion(motion, index, persons, file_options).positions


def as_motion_list(motions, persons: int = 1) -> list:
    """Split the accepted input forms into a list of samples (single motions, or P-person groups)."""
    if isinstance(motions, (str, os.PathLike)):
        return [motions]
    if isinstance(motions, np.ndarray) or hasattr(motions, "detach"):
        if motions.ndim == (4 if persons == 1 else 5):
            return list(motions)
        return [motions]
    if isinstance(motions, Sequence):
        if len(motions) == 0:
            raise ValueError(f"motions is empty: pass at least one {_shape_text(persons)} motion")
        return list(motions)
    raise TypeError(
        f"motions must be a {_shape_text(persons)} {ACCEPTED_MOTIONS}, or a list of those; got {type(motions).__name__}"
    )


class MotionPatchFeatureExtractor(FeatureExtractionMixin):
    r"""
    Builds `motion_values` of shape `(batch, 3, num_frames, num_parts * points_per_part)`.

    skeleton (`str`, `dict` or `Skeleton`, defaults to `"humanml3d"`):
        A preset (`"humanml3d"`, `"kit"`), a path to a JSON file or a dict with `joint_names` and `chains`.
    part_order (`str` or `list`, defaults to `"canonical"`):
        Column order of the body parts: `"canonical"` (torso, left arm, right arm, left leg, right leg),
        `"reference"` (the reference implementation's per-dataset order) or a list of part names.
    points_per_part (`int`, defaults to 16):
        N, the number of points each chain is resampled to (the ViT patch size).
    num_frames (`int`, defaults to 224):
        Length of the motion window.
    fps (`float`, defaults to 20.0):
        Frame rate the model expects; motions given with another `motion_fps` are resampled to it.
    mean, std (`(joints, 3)` arrays, *optional*):
        Per-joint dataset statistics for the z-score. Without them, positions are used as they are.
        See [`~MotionPatchFeatureExtractor.fit_statistics`].
    crop (`str`, defaults to `"first"`):
        `"first"` takes the first `num_frames` frames; `"random"` a random window (training).
    num_persons (`int`, defaults to 1):
        Persons per sample (2 for two-person interaction); each sample is then a `(T, P, J, 3)` array or a
        sequence of P motions, all persons share one time window, and `motion_values` gets a person axis:
        `(batch, P, 3, num_frames, num_parts * points_per_part)`.
    output_format (`str`, defaults to `"patches"`):
        `"joints"` returns the normalised, padded joint positions `(batch, [P,] num_frames, joints, 3)` and
        always `motion_lengths`, for the raw-joint encoders of the paper's ablation.
    frame_rate_mode (`str`, defaults to `"linear"`):
        How `motion_fps` inputs reach `fps`: `"linear"` interpolation, or `"repeat"`, the reference code's
        frame repeating (for its KIT-ML checkpoints).
    """

    model_input_names = ["motion_values"]

    def __init__(
        self,
        skeleton="humanml3d",
        part_order="canonical",
        points_per_part: int = 16,
        num_frames: int = 224,
        fps: float = 20.0,
        mean=None,
        std=None,
        crop: str = "first",
        num_persons: int = 1,
        output_format: str = "patches",
        frame_rate_mode: str = "linear",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self._skeleton: Skeleton = resolve_skeleton(skeleton)
        self._ordered_chains = self._skeleton.ordered_chains(part_order)
        self.part_order = list(part_order) if isinstance(part_order, (list, tuple)) else part_order
        if int(points_per_part) < 1 or int(num_frames) < 1:
            raise ValueError(f"points_per_part={points_per_part} and num_frames={num_frames} must be positive")
        self.points_per_part = int(points_per_part)
        self.num_frames = int(num_frames)
        self.fps = check_fps(fps, "fps", "the processor's frame rate")
        if crop not in CROP_MODES:
            raise ValueError(f"crop={crop!r}; expected one of {CROP_MODES}")
        self.crop = crop
        if int(num_persons) < 1:
            raise ValueError(f"num_persons must be at least 1, got {num_persons}")
        self.num_persons = int(num_persons)
        if output_format not in OUTPUT_FORMATS:
            raise ValueError(f"output_format={output_format!r}; expected one of {OUTPUT_FORMATS}")
        self.output_format = output_format
        if frame_rate_mode not in FRAME_RATE_MODES:
            raise ValueError(f"frame_rate_mode={frame_rate_mode!r}; expected one of {sorted(FRAME_RATE_MODES)}")
        self.frame_rate_mode = frame_rate_mode
        self._resample_matrix = self._build_resample_matrix()
        self.set_statistics(mean, std)

    # ----------------------------------------------------------------------------- configuration
    @property
    def skeleton(self) -> Skeleton:
        return self._skeleton

    @property
    def num_parts(self) -> int:
        return len(self._ordered_chains)

    @property
    def part_names(self) -> list[str]:
        return [name for name, _ in self._ordered_chains]

    def _build_resample_matrix(self) -> np.ndarray:
        """One `(joints, parts * N)` matrix: a motion frame times it gives every resampled chain at once."""
        n = self.points_per_part
        matrix = np.zeros((self._skeleton.num_joints, self.num_parts * n), dtype=np.float64)
        for part, (_, chain) in enumerate(self._ordered_chains):
            weights = linear_resample_weights(len(chain), n)
            # np.add.at: a chain may visit a joint twice
            np.add.at(matrix, (np.asarray(chain)[:, None], np.arange(part * n, (part + 1) * n)[None, :]), weights)
        return matrix.astype(np.float32)

    def for_skeleton(self, skeleton) -> "MotionPatchFeatureExtractor":
        """The same preprocessing for another skeleton, without statistics (they are per joint).

        Columns keep their anatomical meaning: the new skeleton's parts go in this extractor's part
        order when it has parts of the same names, so a model sees each body part where it learned it.
        """
        skeleton = resolve_skeleton(skeleton)
        same_parts = set(skeleton.chains) == set(self.part_names)
        return MotionPatchFeatureExtractor(
            skeleton=skeleton,
            part_order=self.part_names if same_parts else "canonical",
            points_per_part=self.points_per_part,
            num_frames=self.num_frames,
            fps=self.fps,
            crop=self.crop,
            num_persons=self.num_persons,
            output_format=self.output_format,
            frame_rate_mode=self.frame_rate_mode,
        )

    def set_statistics(self, mean, std) -> None:
        """Set (or clear, with `None, None`) the per-joint z-score statistics, each `(joints, 3)`."""
        if (mean is None) != (std is None):
            raise ValueError("mean and std must be given together")
        if mean is None:
            self._mean = self._std = None
            self._patch_matrices = self._fold_statistics(
                np.zeros((self._skeleton.num_joints, 3)), np.ones((self._skeleton.num_joints, 3))
            )
            self._set_position_bounds(np.zeros((self._skeleton.num_joints, 3)), np.ones((self._skeleton.num_joints, 3)))
            return
        expected = (self._skeleton.num_joints, 3)
        arrays = []
        for label, value in (("mean", mean), ("std", std)):
            array = np.asarray(value, dtype=np.float64)
            if array.shape != expected:
                raise ValueError(f"{label} has shape {array.shape}; skeleton {self._skeleton.name!r} needs {expected}")
            if not np.isfinite(array).all():
                raise ValueError(f"{label} contains NaN or inf")
            arrays.append(array.astype(np.float32))
        if (arrays[1] <= 0).any():
            joint = int(np.argwhere(arrays[1] <= 0)[0, 0])
            raise ValueError(
                f"std must be positive; joint {joint} ({self._skeleton.joint_names[joint]}) has {arrays[1][joint]}"
            )
        self._mean, self._std = arrays
        self._patch_matrices = self._fold_statistics(self._mean, self._std)
        self._set_position_bounds(self._mean, self._std)

    def _set_position_bounds(self, mean: np.ndarray, std: np.ndarray) -> None:
        """The raw positions whose z-score lies within +-MAX_FEATURE_MAGNITUDE, per joint coordinate, and the
        tightest of them as two numbers: a window between those is accepted after one min and one max."""
        mean, std = mean.astype(np.float64), std.astype(np.float64)
        self._lower_bounds = mean - MAX_FEATURE_MAGNITUDE * std
        self._upper_bounds = mean + MAX_FEATURE_MAGNITUDE * std
        self._highest_lower_bound = float(self._lower_bounds.max())
        self._lowest_upper_bound = float(self._upper_bounds.min())

    def _fold_statistics(self, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
        """(3, J + 1, parts * N): per channel, the resampling matrix with the z-score folded in; row J is the
        offset -(mean / std) @ W, applied through a column of ones on real frames."""
        resample = self._resample_matrix.astype(np.float64)
        scale = 1.0 / std.astype(np.float64)
        matrices = np.empty((3, resample.shape[0] + 1, resample.shape[1]))
        for channel in range(3):
            matrices[channel, :-1] = resample * scale[:, channel, None]
            matrices[channel, -1] = -(mean[:, channel] * scale[:, channel]) @ resample
        return matrices.astype(np.float32)

    @property
    def mean(self):
        return self._mean

    @property
    def std(self):
        return self._std

    def fit_statistics(
        self, motions: Iterable, min_std: float = 1e-6, file_options: MotionFileOptions | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Compute per-joint mean/std of raw positions over every frame of `motions` in one streaming pass
        (Chan et al.'s pairwise update in float64), store them and return them.

        `motions` is any iterable of the inputs `__call__` takes (arrays, tensors, motion-file paths read
        with `file_options`), e.g. a `datasets` column. A coordinate that never moves (std below `min_std`)
        gets std 1 so it is centred but not blown up.
        """
        options = self.file_options_for_skeleton(file_options)
        count, mean, m2 = 0, None, None
        for index, motion in enumerate(motions):
            array = load_motion(motion, index, self.num_persons, options).astype(np.float64)
            self._check_joints(array, _describe(index, motion))
            array = array.reshape(-1, *array.shape[-2:])  # every person's frames count alike
            n = array.shape[0]
            batch_mean = array.mean(axis=0)
            batch_m2 = ((array - batch_mean) ** 2).sum(axis=0)
            if mean is None:
                count, mean, m2 = n, batch_mean, batch_m2
                continue
            delta = batch_mean - mean
            total = count + n
            mean = mean + delta * (n / total)
            m2 = m2 + batch_m2 + delta**2 * (count * n / total)
            count = total
        if mean is None:
            raise ValueError("fit_statistics got no motions")
        std = np.sqrt(m2 / count)
        frozen = std < min_std
        if frozen.any():
            logger.warning(f"{int(frozen.sum())} joint coordinates never move; their std is set to 1")
            std = np.where(frozen, 1.0, std)
        self.set_statistics(mean, std)
        return self._mean, self._std

    def to_dict(self) -> dict:
        return {
            "feature_extractor_type": self.__class__.__name__,
            "skeleton": self._skeleton.to_dict(),
            "part_order": self.part_order,
            "part_names": self.part_names,
            "points_per_part": self.points_per_part,
            "num_frames": self.num_frames,
            "fps": self.fps,
            "mean": None if self._mean is None else self._mean.tolist(),
            "std": None if self._std is None else self._std.tolist(),
            "crop": self.crop,
            "num_persons": self.num_persons,
            "output_format": self.output_format,
            "frame_rate_mode": self.frame_rate_mode,
            **({"auto_map": self.auto_map} if getattr(self, "auto_map", None) else {}),
        }

    @classmethod
    def from_dict(cls, feature_extractor_dict: dict, **kwargs):
        config = dict(feature_extractor_dict)
        config.pop("part_names", None)  # derived from skeleton + part_order
        config.pop("feature_extractor_type", None)
        return super().from_dict(config, **kwargs)

    # ----------------------------------------------------------------------------- processing
    def file_options_for_skeleton(self, file_options: MotionFileOptions | None) -> MotionFileOptions:
        """`file_options` (per call, never saved: they describe the user's files and machine) for this skeleton;
        see `motion_readers.file_options_for_skeleton`."""
        return file_options_for_skeleton(check_file_options(file_options), self._skeleton)

    def _check_joints(self, array: np.ndarray, name: str, joint_names=None) -> None:
        skeleton = self._skeleton
        if array.shape[-2] != skeleton.num_joints:
            raise ValueError(
                f"{name} has {array.shape[-2]} joints but skeleton {skeleton.name!r} has {skeleton.num_joints}; "
                f"{skeleton_hint(array.shape[-2])}"
            )
        if joint_names is not None and tuple(joint_names) != skeleton.joint_names:
            raise ValueError(
                f"{name}: the BVH rig's joints {list(joint_names)[:6]}... are not skeleton "
                f"{skeleton.name!r}'s; build the processor with skeleton=skeleton_from_bvh(load_bvh(path))"
            )

    def _check_window(self, window: np.ndarray, frames: MotionFrames, take_window: Callable) -> None:
        """Refuses a window the model cannot take: NaN/inf, or z-scores beyond +-MAX_FEATURE_MAGNITUDE, where the
        model's float32 arithmetic overflows into NaN embeddings without an error (e.g. from a tiny std).

        Tested on the window's positions, not on the motion image: every image value is a convex combination
        of z-scored positions (linear interpolation), so bounded positions bound the image, and the window has
        a quarter of the image's values. `take_window(frames)` takes the window again, to name a NaN's frame.
        """
        # NaN fails both comparisons; one min and one max over the window suffice unless a value is near a bound
        if self._highest_lower_bound <= window.min() and window.max() <= self._lowest_upper_bound:
            return
        if np.all((self._lower_bounds <= window) & (window <= self._upper_bounds)):
            return
        take_window(frames.with_checks())  # raises naming the motion's frame when a frame is not finite
        mean = 0.0 if self._mean is None else self._mean.astype(np.float64)
        std = 1.0 if self._std is None else self._std.astype(np.float64)
        peak = np.abs((window - mean) / std).max()
        raise ValueError(
            f"{frames.name}: its features reach {peak:.3g} after normalisation, beyond the "
            f"{MAX_FEATURE_MAGNITUDE:.0e} the model takes (larger values overflow into NaN embeddings); "
            "check the positions' unit (metres, or millimetres for KIT-ML) and the processor's mean and std"
        )

    def _patch_values(self, windows: list[np.ndarray]) -> np.ndarray:
        """(B, [persons,] 3, num_frames, parts * N) from cropped windows `(n, [persons,] J, 3)`.

        Per motion and channel one `(n, J + 1) @ (J + 1, parts * N)` product over its n real frames only, written
        straight into the batch: padding frames are zeroed, not multiplied (a 100-frame motion costs half of a
        224-frame one), and nothing is copied after the product.
        """
        persons = () if self.num_persons == 1 else (self.num_persons,)
        joints = self._skeleton.num_joints
        batch = np.empty((len(windows), *persons, 3, self.num_frames, self._patch_matrices.shape[-1]), np.float32)
        order = (2, 0, 1) if self.num_persons == 1 else (1, 3, 0, 2)
        for values, window in zip(batch, windows):
            frames = len(window)
            # laid out as the product wants it: channels, then frames, then joints and the constant-1 column
            # that carries the z-score's offset
            positions = np.empty((*persons, 3, frames, joints + 1), np.float32)
            positions[..., :joints] = window.transpose(order)
            positions[..., joints] = 1.0
            np.matmul(positions, self._patch_matrices, out=values[..., :frames, :])
            values[..., frames:, :] = 0.0
        return batch

    def _joint_values(self, windows: list[np.ndarray]) -> np.ndarray:
        """(B, [persons,] num_frames, J, 3): z-scored joints, zero-padded, for the raw-joint encoders."""
        persons = () if self.num_persons == 1 else (self.num_persons,)
        batch = np.zeros((len(windows), self.num_frames, *persons, self._skeleton.num_joints, 3), dtype=np.float32)
        for index, window in enumerate(windows):
            batch[index, : len(window)] = window if self._mean is None else (window - self._mean) / self._std
        return batch if self.num_persons == 1 else np.ascontiguousarray(batch.transpose(0, 2, 1, 3, 4))

    def _window(self, item, index: int, source_fps, crop: str, rng, file_options: MotionFileOptions) -> np.ndarray:
        """The cropped, checked float32 window of one motion, at `self.fps`: only the window's frames are
        converted, resampled and checked; the frames the crop discards are never touched."""
        if source_fps is not None:  # checked before reading, so a bad rate fails fast
            source_fps = check_fps(source_fps, "motion_fps", _describe(index, item))
        frames, file_fps, joint_names = read_motion_frames(item, index, self.num_persons, file_options)
        if frames.parts[0].shape[-2] != self._skeleton.num_joints or joint_names is not None:
            self._check_joints(frames.parts[0], frames.name, joint_names)
        source_fps = file_fps if source_fps is None else source_fps
        if source_fps is None:
            start = self._window_start(len(frames), crop, rng)

            def take_window(source: MotionFrames) -> np.ndarray:
                return source[start : start + self.num_frames]
        else:
            mode = FRAME_RATE_MODES[self.frame_rate_mode]
            start = self._window_start(mode.count(len(frames), source_fps, self.fps), crop, rng)

            def take_window(source: MotionFrames) -> np.ndarray:
                return mode.resample(source, source_fps, self.fps, start, start + self.num_frames)

        # unchecked here: `_check_window` tests NaN/inf and magnitude in one pass (NaN and inf survive the
        # linear interpolation, which gives each source frame a positive weight or NaN * 0 = NaN)
        frames.checked = False
        window = take_window(frames)
        self._check_window(window, frames, take_window)
        return window

    def _window_start(self, num_frames: int, crop: str, rng: np.random.Generator | None) -> int:
        if num_frames <= self.num_frames or crop == "first":
            return 0
        rng = rng if rng is not None else np.random.default_rng()
        return int(rng.integers(0, num_frames - self.num_frames + 1))

    def __call__(
        self,
        motions,
        motion_fps: float | Sequence[float] | None = None,
        crop: str | None = None,
        rng: np.random.Generator | int | None = None,
        return_motion_lengths: bool = False,
        return_tensors=None,
        file_options: MotionFileOptions | None = None,
        **kwargs,
    ) -> BatchFeature:
        """
        motions: a `(T, J, 3)` array/tensor, HumanML3D / KIT-ML feature rows `(T, 263 | 251)`, a motion-file
            path (`.npy` joints or feature rows, `.bvh`, `.npz` SMPL-H / SMPL-X parameters), a `(B, T, J, 3)`
            array, or a list of those.
        motion_fps: frame rate of the inputs (one value or one per motion); resampled to `self.fps` when different.
            Files that state their rate (BVH, SMPL) are taken at it unless `motion_fps` is given.
        crop: overrides `self.crop` for this call. rng: numpy Generator or seed for random windows, or one
            Generator per motion (so a motion's window does not depend on the rest of the batch).
        return_motion_lengths: also return `motion_lengths`, the number of real (unpadded) frames per motion.
        file_options: a `MotionFileOptions` for the files among `motions` (feature-row detection, body models
            for SMPL files, BVH units); see `file_options_for_skeleton`.
        """
        options = self.file_options_for_skeleton(file_options)
        crop = crop or self.crop
        if crop not in CROP_MODES:
            raise ValueError(f"crop={crop!r}; expected one of {CROP_MODES}")
        items = as_motion_list(motions, self.num_persons)
        if isinstance(rng, (list, tuple)):
            if len(rng) != len(items):
                raise ValueError(f"rng has {len(rng)} generators for {len(items)} motions")
            rngs = list(rng)
        else:
            rngs = [np.random.default_rng(int(rng)) if isinstance(rng, (int, np.integer)) else rng] * len(items)
        if motion_fps is None or np.isscalar(motion_fps):
            fps_list = [motion_fps] * len(items)
        else:
            fps_list = list(motion_fps)
            if len(fps_list) != len(items):
                raise ValueError(f"motion_fps has {len(fps_list)} values for {len(items)} motions")

        windows = [
            self._window(item, index, source_fps, crop, item_rng, options)
            for index, (item, source_fps, item_rng) in enumerate(zip(items, fps_list, rngs))
        ]
        lengths = np.array([len(window) for window in windows], dtype=np.int64)

        if self.output_format == "joints":
            motion_values = self._joint_values(windows)
            return_motion_lengths = True  # the raw-joint encoders mask padding with it
        else:
            motion_values = self._patch_values(windows)
        data = {"motion_values": motion_values}
        if return_motion_lengths:
            data["motion_lengths"] = lengths
        return BatchFeature(data=data, tensor_type=return_tensors)


# saved folders carry this file and its same-folder imports (transformers' own mechanism)
MotionPatchFeatureExtractor.register_for_auto_class("AutoFeatureExtractor")

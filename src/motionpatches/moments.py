"""Moment retrieval: where in a long motion does a text happen?

    moments = search_moments(model, processor, "long_take.npy", ["a person waves with the left hand"], k=5)
    # [[Moment(start=12.5, end=15.5, score=0.61), ...]]: one list per text, seconds, best first
    found = search_moments_in_gallery(model, processor, {"take1": motion, "take2": "take2.bvh"}, texts, k=5)
    # [[GalleryMoment(recording="take2", start=3.0, end=7.0, score=0.58), ...]]: ranked over every recording

**Windows.** Every `window_seconds` length (default: whole seconds 1 to 10 that the model can see) slides over
the motion every `stride_seconds` (0.5 s), plus one last window ending with the motion, so its end is
searched too. The model sees at most `num_frames` frames (224 = 11.2 s at 20 fps): a longer window would be
cropped to its first `num_frames` frames by the processor, so window lengths are capped there and a longer
one is refused (naming the longest that fits); a window shorter than `num_frames` is zero-padded exactly as
the processor pads a short motion. A motion longer than a window length but shorter than another is searched
with the lengths that fit; a motion shorter than the smallest window is refused, naming both lengths.

**Placing each window as a clip.** Training clips (HumanML3D's `new_joints`, the demo data) start with the
person at the origin facing +Z, and the model sees absolute positions: a window cut from the middle of a
long take, metres away and facing elsewhere, is not what it learned. With `canonicalize="heading"` (the
default) each window is moved as HumanML3D places a clip: its first frame's root over the origin (X and Z;
the height is kept) and the body turned about Y so that its first frame faces +Z, the facing direction
being the up axis crossed with the left-to-right hip and arm-root direction (`facing_joints`; HumanML3D
uses the shoulders where SMPL's arm chains start at the collars, a direction a few degrees apart).
`"position"` only moves the root, `"none"` takes the window as it lies (for motions already
root-relative). `place_at_origin` is the same placement written plainly for one motion.

**Computed once per motion.** Every step of the processor is linear per frame, and so are these
placements, so each window's `motion_values` need not be made by the processor window by window. The
motion is resampled to the model's frame rate once; then, per frame, the five products
`positions[:, :, d] @ (W / std[:, c])` for the coordinate pairs (c, d) that the placement mixes (x and z
with each other, y alone; W the chain-resampling matrix) are computed once for the whole motion in
float64. A window's values are those rows sliced, combined with its rotation's cosine and sine, minus its
root offset times `1 / std @ W`, minus the z-score's offset `mean / std @ W`: one vectorised expression per
batch of windows, no Python loop over windows or frames. The result equals the processor's output for the
window cut out (at the model's frame rate), placed with `place_at_origin` and processed as its own motion
(tests/test_moments.py, to float32 rounding). A window's time is on the model's frame grid: frame i is
i / fps seconds into the motion at any input rate.

**Scores and suppression.** A window's score is the cosine similarity of its embedding and the text's.
Temporal non-maximum suppression runs over every length at once: windows are taken best first, and one
whose temporal IoU with a window already kept exceeds `nms_iou` is dropped; the first `k` kept are returned
(fewer when fewer survive). In a gallery, suppression runs within each recording and the survivors of all
recordings are ranked together.
"""

import logging
import math
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from motionpatches.processors.feature_extraction_motionpatches import (
    FRAME_RATE_MODES,
    MAX_FEATURE_MAGNITUDE,
    linear_resample_weights,
    read_motion,
)
from motionpatches.processors.motion_files import check_fps

logger = logging.getLogger(__name__)

__all__ = [
    "CANONICALIZE_MODES",
    "GalleryMoment",
    "Moment",
    "MotionTooShortError",
    "MotionWindows",
    "WindowScores",
    "default_window_seconds",
    "facing_angle",
    "place_at_origin",
    "search_moments",
    "search_moments_in_gallery",
    "temporal_iou",
    "temporal_nms",
    "window_scores",
]

CANONICALIZE_MODES = ("heading", "position", "none")
DEFAULT_WINDOW_SECONDS = tuple(float(s) for s in range(1, 11))
DEFAULT_STRIDE_SECONDS = 0.5
DEFAULT_NMS_IOU = 0.5
DEFAULT_BATCH_SIZE = 64
SIDES = (("left_leg", "right_leg"), ("left_arm", "right_arm"))


class Moment(NamedTuple):
    start: float  # seconds from the motion's first frame
    end: float  # seconds, exclusive: the window is [start, end)
    score: float  # cosine similarity with the text


class GalleryMoment(NamedTuple):
    recording: str
    start: float
    end: float
    score: float


class MotionTooShortError(ValueError):
    """The motion has fewer frames than the smallest window."""


# ----------------------------------------------------------------------------- placing a window as a clip
def facing_joints(skeleton) -> tuple[int, int, int, int, int]:
    """(root, left hip, right hip, left arm root, right arm root) of `skeleton`: the torso chain's first joint, and
    for each of the leg and arm chain pairs the first joint where the left and right chains part."""
    chains = skeleton.chains
    missing = [name for name in ("torso", *(n for pair in SIDES for n in pair)) if name not in chains]
    if missing:
        raise ValueError(
            f"skeleton {skeleton.name!r} has no {', '.join(missing)} chain, so a window's facing direction is unknown; "
            'use canonicalize="position" or "none"'
        )
    joints = [chains["torso"][0]]
    for left_name, right_name in SIDES:
        left, right = chains[left_name], chains[right_name]
        shared = 0
        while shared < min(len(left), len(right)) - 1 and left[shared] == right[shared]:
            shared += 1
        joints += [left[shared], right[shared]]
    return tuple(joints)


def facing_angle(frames: np.ndarray, joints: tuple[int, ...]) -> np.ndarray:
    """The rotation about +Y (radians, +Z towards +X as `humanml3d_features` turns) that makes each frame of
    `frames` `(..., J, 3)` face +Z: facing is the up axis crossed with the left-to-right hip and arm-root
    direction, as HumanML3D computes it. A frame without a horizontal direction (all four joints in one
    vertical line) gets 0."""
    _, left_hip, right_hip, left_arm, right_arm = joints
    across = (frames[..., right_hip, :] - frames[..., left_hip, :]) + (
        frames[..., right_arm, :] - frames[..., left_arm, :]
    )
    # up x across with up = +Y: (across_z, 0, -across_x)
    forward_x, forward_z = across[..., 2].astype(np.float64), -across[..., 0].astype(np.float64)
    flat = np.hypot(forward_x, forward_z) < 1e-9
    return np.where(flat, 0.0, np.arctan2(-forward_x, forward_z))


def place_at_origin(motion: np.ndarray, skeleton, canonicalize: str = "heading") -> np.ndarray:
    """`motion` `(T, J, 3)` placed as HumanML3D places a clip (see the module's docstring): its first frame's
    root moved over the origin and, with "heading", the whole motion turned about Y so that its first frame
    faces +Z. Written plainly, one motion at a time: the definition `MotionWindows` computes faster."""
    canonicalize = check_canonicalize(canonicalize)
    positions = np.asarray(motion, dtype=np.float64)
    if canonicalize == "none":
        return positions.astype(np.float32)
    joints = facing_joints(skeleton) if canonicalize == "heading" else (root_joint(skeleton),)
    root = positions[0, joints[0]]
    moved = positions - np.array([root[0], 0.0, root[2]])
    if canonicalize == "position":
        return moved.astype(np.float32)
    angle = float(facing_angle(positions[0], joints))
    cos, sin = math.cos(angle), math.sin(angle)
    x, y, z = moved[..., 0], moved[..., 1], moved[..., 2]
    return np.stack([cos * x + sin * z, y, cos * z - sin * x], axis=-1).astype(np.float32)


def root_joint(skeleton) -> int:
    return skeleton.chains["torso"][0] if "torso" in skeleton.chains else 0


def check_canonicalize(canonicalize: str) -> str:
    if canonicalize not in CANONICALIZE_MODES:
        raise ValueError(f"canonicalize={canonicalize!r}; expected one of {CANONICALIZE_MODES}")
    return canonicalize


# ----------------------------------------------------------------------------- windows of one motion
def check_extractor(processor):
    """The processor's feature extractor, when it makes single-person motion-patch images."""
    extractor = getattr(processor, "feature_extractor", processor)
    if getattr(extractor, "output_format", "patches") != "patches":
        raise ValueError("moment retrieval needs a motion-patch processor (output_format='patches')")
    if getattr(extractor, "num_persons", 1) != 1:
        raise ValueError(f"moment retrieval searches one person's motion; this processor takes {extractor.num_persons}")
    return extractor


def default_window_seconds(processor) -> tuple[float, ...]:
    """Whole seconds 1 to 10 that fit in the frames the model sees (1, 2, 3 s for a 64-frame model at 20 fps)."""
    extractor = check_extractor(processor)
    fitting = tuple(s for s in DEFAULT_WINDOW_SECONDS if round(s * extractor.fps) <= extractor.num_frames)
    if not fitting:
        raise ValueError(
            f"the model sees {extractor.num_frames} frames ({extractor.num_frames / extractor.fps:g} s at "
            f"{extractor.fps:g} fps), less than the 1 s default window; give window_seconds"
        )
    return fitting


def window_lengths(processor, window_seconds) -> np.ndarray:
    """Distinct window lengths in model frames, shortest first, each checked to fit the model's `num_frames`."""
    extractor = check_extractor(processor)
    seconds = default_window_seconds(processor) if window_seconds is None else window_seconds
    seconds = [seconds] if np.isscalar(seconds) else list(seconds)
    if not seconds:
        raise ValueError("window_seconds is empty: give at least one window length in seconds")
    lengths = []
    span = extractor.num_frames / extractor.fps
    for value in seconds:
        if not (isinstance(value, (int, float, np.number)) and math.isfinite(value) and value > 0):
            raise ValueError(f"window_seconds must be positive numbers of seconds, got {value!r}")
        frames = max(1, round(value * extractor.fps))
        if frames > extractor.num_frames:
            raise ValueError(
                f"a {value:g} s window is {frames} frames at {extractor.fps:g} fps, more than the {extractor.num_frames} "
                f"frames the model sees ({span:g} s): the processor would crop it. Use windows up to {span:g} s"
            )
        lengths.append(frames)
    return np.array(sorted(set(lengths)), dtype=np.int64)


def stride_frames(processor, stride_seconds: float) -> int:
    extractor = check_extractor(processor)
    if not (
        isinstance(stride_seconds, (int, float, np.number)) and math.isfinite(stride_seconds) and stride_seconds > 0
    ):
        raise ValueError(f"stride_seconds must be a positive number of seconds, got {stride_seconds!r}")
    return max(1, round(stride_seconds * extractor.fps))


def window_starts(num_frames: int, length: int, stride: int) -> np.ndarray:
    """Starts every `stride` frames, plus the start of the window ending with the motion when the stride skips it."""
    starts = np.arange(0, num_frames - length + 1, stride, dtype=np.int64)
    if starts[-1] != num_frames - length:
        starts = np.append(starts, num_frames - length)
    return starts


class MotionWindows:
    """One long motion made ready for windows: read and checked once, resampled to the model's frame rate once,
    and its per-frame products with the chain-resampling matrix computed once (see the module's docstring).

    `values(starts, length)` gives the `motion_values` `(B, 3, num_frames, parts * N)` of windows of `length`
    model frames starting at `starts`, as the processor makes them for those windows placed as clips.
    """

    def __init__(self, processor, motion, fps: float | None = None, canonicalize: str = "heading", file_options=None):
        extractor = check_extractor(processor)
        self.canonicalize = check_canonicalize(canonicalize)
        self.name = f"motion ({os.fspath(motion)})" if isinstance(motion, (str, os.PathLike)) else "motion"
        options = extractor.file_options_for_skeleton(file_options)
        # read_motion checks shape and every frame for NaN / inf, naming the first bad frame and joint
        loaded = read_motion(motion, file_options=options)
        positions = loaded.positions
        skeleton = extractor.skeleton
        if positions.shape[1] != skeleton.num_joints:
            raise ValueError(
                f"{self.name} has {positions.shape[1]} joints but the processor's skeleton {skeleton.name!r} has "
                f"{skeleton.num_joints}"
            )
        source_fps = fps if fps is not None else (loaded.fps or extractor.fps)
        source_fps = check_fps(source_fps, "fps", self.name)
        self.source_frames, self.source_fps = len(positions), source_fps
        self.fps = extractor.fps
        self.num_frames = extractor.num_frames
        resample = FRAME_RATE_MODES[extractor.frame_rate_mode].resample
        self.positions = np.asarray(resample(positions, source_fps, extractor.fps), dtype=np.float64)  # (T, J, 3)
        self.joints = facing_joints(skeleton) if self.canonicalize == "heading" else (root_joint(skeleton),)
        self._products(extractor)

    def __len__(self) -> int:
        """Frames at the model's frame rate."""
        return len(self.positions)

    @property
    def seconds(self) -> float:
        return len(self) / self.fps

    def _products(self, extractor) -> None:
        resample = np.zeros((extractor.skeleton.num_joints, extractor.num_parts * extractor.points_per_part))
        n = extractor.points_per_part
        for part, (_, chain) in enumerate(extractor.skeleton.ordered_chains(extractor.part_order)):
            # np.add.at: a chain may visit a joint twice (as the extractor builds its matrix)
            columns = np.arange(part * n, (part + 1) * n)[None, :]
            np.add.at(resample, (np.asarray(chain)[:, None], columns), linear_resample_weights(len(chain), n))
        joints = extractor.skeleton.num_joints
        mean = np.zeros((joints, 3)) if extractor.mean is None else extractor.mean.astype(np.float64)
        std = np.ones((joints, 3)) if extractor.std is None else extractor.std.astype(np.float64)
        scaled = [resample / std[:, c, None] for c in range(3)]  # W / std[:, c]
        self.unit = np.stack([m.sum(axis=0) for m in scaled])  # (3, columns): what a unit shift of every joint adds
        self.offset = np.stack([(mean[:, c] / std[:, c]) @ resample for c in range(3)])  # the z-score's offset
        x, y, z = (self.positions[..., c] for c in range(3))
        self.xx, self.yy, self.zz = x @ scaled[0], y @ scaled[1], z @ scaled[2]  # (T, columns) each
        if self.canonicalize == "heading":
            self.xz, self.zx = z @ scaled[0], x @ scaled[2]  # a turn about Y mixes x and z
        root = self.positions[:, self.joints[0]]
        self.root_x, self.root_z = root[:, 0], root[:, 2]
        if self.canonicalize == "heading":
            self.angle = facing_angle(self.positions, self.joints)

    def values(self, starts: np.ndarray, length: int) -> np.ndarray:
        """`motion_values` `(len(starts), 3, num_frames, columns)` float32 of the windows [start, start + length)."""
        starts = np.asarray(starts, dtype=np.int64)
        if length > self.num_frames or length < 1 or starts.min() < 0 or starts.max() + length > len(self):
            raise ValueError(
                f"windows of {length} frames at {starts.min()}..{starts.max()} do not fit {len(self)} frames"
            )
        frames = starts[:, None] + np.arange(length)  # (B, length)
        shape = (-1, 1, 1)
        if self.canonicalize == "none":
            x, z = self.xx[frames], self.zz[frames]
        else:
            dx, dz = self.root_x[starts].reshape(shape), self.root_z[starts].reshape(shape)
            x = self.xx[frames] - dx * self.unit[0]
            z = self.zz[frames] - dz * self.unit[2]
            if self.canonicalize == "heading":
                cos, sin = np.cos(self.angle[starts]).reshape(shape), np.sin(self.angle[starts]).reshape(shape)
                # x' = cos x + sin z and z' = cos z - sin x, each through its own channel's 1 / std
                x_cross = self.xz[frames] - dz * self.unit[0]
                z_cross = self.zx[frames] - dx * self.unit[2]
                x, z = cos * x + sin * x_cross, cos * z - sin * z_cross
        batch = np.zeros((len(starts), 3, self.num_frames, self.xx.shape[1]), dtype=np.float32)
        batch[:, 0, :length] = x - self.offset[0]
        batch[:, 1, :length] = self.yy[frames] - self.offset[1]
        batch[:, 2, :length] = z - self.offset[2]
        peak = np.abs(batch).max()
        if not peak <= MAX_FEATURE_MAGNITUDE:  # also catches NaN
            raise ValueError(
                f"{self.name}: its features reach {peak:.3g} after normalisation, beyond the {MAX_FEATURE_MAGNITUDE:.0e} "
                "the model takes; check the positions' unit and the processor's mean and std"
            )
        return batch

    def windows(self, lengths: np.ndarray, stride: int) -> list[tuple[int, int]]:
        """(start, length) of every window, by length then start; lengths longer than the motion are left out."""
        fitting = [int(n) for n in lengths if n <= len(self)]
        if not fitting:
            smallest = int(lengths[0])
            raise MotionTooShortError(
                f"{self.name} has {len(self)} frames ({self.seconds:g} s at {self.fps:g} fps), shorter than the "
                f"smallest window of {smallest} frames ({smallest / self.fps:g} s)"
            )
        return [(int(s), n) for n in fitting for s in window_starts(len(self), n, stride)]


# ----------------------------------------------------------------------------- embedding and scoring
class WindowScores(NamedTuple):
    start: np.ndarray  # (W,) seconds
    end: np.ndarray  # (W,) seconds, exclusive
    scores: np.ndarray  # (texts, W) cosine similarities


def model_device(model) -> torch.device:
    if isinstance(model, torch.nn.Module):
        return next(model.parameters()).device
    return getattr(model, "device", torch.device("cpu"))  # e.g. ONNX Runtime towers


def checked_texts(texts) -> list[str]:
    if isinstance(texts, str):
        raise ValueError(f"texts must be a list of strings; got one string, pass [{texts!r}]")
    texts = list(texts) if isinstance(texts, Iterable) else None
    if not texts:
        raise ValueError("texts is empty: give at least one text to search for")
    bad = [t for t in texts if not (isinstance(t, str) and t.strip())]
    if bad:
        raise ValueError(f"every text must be a non-empty string; got {bad[0]!r}")
    return texts


def check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer (moments per text), got {k!r}")
    return int(k)


def check_batch_size(batch_size) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    return int(batch_size)


def check_nms_iou(nms_iou) -> float:
    if not (isinstance(nms_iou, (int, float, np.number)) and 0.0 <= nms_iou <= 1.0):
        raise ValueError(f"nms_iou must be a number between 0 and 1, got {nms_iou!r}")
    return float(nms_iou)


def set_eval(model) -> None:
    if isinstance(model, torch.nn.Module):
        model.eval()  # dropout would make the scores random


@torch.inference_mode()
def text_embeddings(model, processor, texts: list[str]) -> torch.Tensor:
    inputs = processor(text=texts, return_tensors="pt")
    device = model_device(model)
    features = model.get_text_features(**{name: value.to(device) for name, value in inputs.items()}).pooler_output
    return F.normalize(features.float(), dim=-1)


@torch.inference_mode()
def embed_windows(model, motion: MotionWindows, windows: list[tuple[int, int]], batch_size: int) -> torch.Tensor:
    """Normalised embeddings `(W, D)` of `windows` ((start, length) pairs, grouped by length), `batch_size` at a time."""
    device = model_device(model)
    chunks = []
    for first in range(0, len(windows), batch_size):
        batch = windows[first : first + batch_size]
        lengths = np.array([n for _, n in batch])
        starts = np.array([s for s, _ in batch])
        values = np.concatenate([motion.values(starts[lengths == n], int(n)) for n in dict.fromkeys(lengths)])
        features = model.get_motion_features(
            motion_values=torch.from_numpy(values).to(device),
            motion_lengths=torch.from_numpy(lengths).to(device),
        ).pooler_output
        chunks.append(F.normalize(features.float(), dim=-1))
    return torch.cat(chunks)


def _window_scores(model, motion: MotionWindows, text_embeds, lengths, stride, batch_size) -> WindowScores:
    windows = motion.windows(lengths, stride)
    embeds = embed_windows(model, motion, windows, batch_size)
    starts = np.array([s for s, _ in windows], dtype=np.float64)
    ends = starts + np.array([n for _, n in windows], dtype=np.float64)
    scores = (text_embeds.to(embeds.device) @ embeds.T).cpu().numpy()
    return WindowScores(starts / motion.fps, ends / motion.fps, scores)


def window_scores(
    model,
    processor,
    motion,
    texts: Sequence[str],
    window_seconds: Iterable[float] | float | None = None,
    stride_seconds: float = DEFAULT_STRIDE_SECONDS,
    fps: float | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    canonicalize: str = "heading",
    file_options=None,
) -> WindowScores:
    """Every window's span and its cosine similarity with every text, before suppression (for plots, baselines).

    Arguments as `search_moments`'. Windows are ordered by length, then start.
    """
    texts = checked_texts(texts)
    batch_size = check_batch_size(batch_size)
    lengths = window_lengths(processor, window_seconds)
    stride = stride_frames(processor, stride_seconds)
    windows = MotionWindows(processor, motion, fps=fps, canonicalize=canonicalize, file_options=file_options)
    set_eval(model)
    return _window_scores(model, windows, text_embeddings(model, processor, texts), lengths, stride, batch_size)


# ----------------------------------------------------------------------------- suppression
def temporal_iou(start: float, end: float, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Intersection over union of the span [start, end) with each of the spans [starts, ends)."""
    overlap = np.clip(np.minimum(end, ends) - np.maximum(start, starts), 0.0, None)
    union = (end - start) + (ends - starts) - overlap
    return np.where(union > 0, overlap / np.where(union > 0, union, 1.0), 0.0)


def temporal_nms(starts, ends, scores, k: int, iou: float = DEFAULT_NMS_IOU) -> np.ndarray:
    """Indices of up to `k` spans, best score first, none overlapping a better kept one with IoU above `iou`.

    Equal scores go to the earlier index (a stable sort), so the result does not depend on the platform.
    """
    k, iou = check_k(k), check_nms_iou(iou)
    starts, ends = np.asarray(starts, dtype=np.float64), np.asarray(ends, dtype=np.float64)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    kept = []
    while len(order) and len(kept) < k:
        best = order[0]
        kept.append(int(best))
        rest = order[1:]
        order = rest[temporal_iou(starts[best], ends[best], starts[rest], ends[rest]) <= iou]
    return np.array(kept, dtype=np.int64)


def _moments(scored: WindowScores, text: int, k: int, iou: float) -> list[Moment]:
    kept = temporal_nms(scored.start, scored.end, scored.scores[text], k, iou)
    return [Moment(float(scored.start[i]), float(scored.end[i]), float(scored.scores[text, i])) for i in kept]


# ----------------------------------------------------------------------------- search
def search_moments(
    model,
    processor,
    motion,
    texts: Sequence[str],
    k: int = 5,
    window_seconds: Iterable[float] | float | None = None,
    stride_seconds: float = DEFAULT_STRIDE_SECONDS,
    fps: float | None = None,
    nms_iou: float = DEFAULT_NMS_IOU,
    batch_size: int = DEFAULT_BATCH_SIZE,
    canonicalize: str = "heading",
    file_options=None,
) -> list[list[Moment]]:
    """The best `k` spans of `motion` for each text: `[[Moment(start_s, end_s, score), ...] per text]`.

    motion: a `(T, J, 3)` array or tensor in the processor's skeleton, feature rows, or a motion file
        (`.npy`, `.bvh`, `.npz`, read with `file_options`).
    fps: the motion's frame rate (default: the file's own, else the model's).
    window_seconds: window lengths (default: whole seconds 1 to 10 that the model sees); stride_seconds:
        their step (0.5 s). nms_iou: a span overlapping a better one by more than this IoU is dropped.
    canonicalize: "heading" (default), "position" or "none": how each window is placed before embedding.
    The model is put in eval mode. See the module's docstring for the method.
    """
    texts, k, nms_iou = checked_texts(texts), check_k(k), check_nms_iou(nms_iou)
    scored = window_scores(
        model, processor, motion, texts, window_seconds, stride_seconds, fps, batch_size, canonicalize, file_options
    )
    return [_moments(scored, index, k, nms_iou) for index in range(len(texts))]


def gallery_items(recordings, fps) -> list[tuple[str, object, float | None]]:
    """(id, motion or loader, fps) of every recording: a mapping id -> motion, a sequence of motions or files (ids:
    the paths, or the positions' numbers), or a `MotionIndex` (its rows' ids, motions and frame rates)."""
    # a MotionIndex exists only once its module is loaded (which loads `datasets`): not imported for other galleries
    index_module = sys.modules.get("motionpatches.index")
    if index_module is not None and isinstance(recordings, index_module.MotionIndex):
        index = recordings
        rows = index.rows.select_columns(["id", "fps"])
        return [(row["id"], (lambda r=r: index.motion(r)), row["fps"]) for r, row in enumerate(rows)]
    if isinstance(recordings, Mapping):
        pairs = [(str(key), value) for key, value in recordings.items()]
    elif isinstance(recordings, (str, os.PathLike)) or not isinstance(recordings, Iterable):
        raise TypeError(
            "recordings must be a mapping id -> motion, a list of motions or files, or a MotionIndex; "
            f"got {type(recordings).__name__}"
        )
    else:
        pairs = [
            (os.fspath(value) if isinstance(value, (str, os.PathLike)) else str(number), value)
            for number, value in enumerate(recordings)
        ]
    if not pairs:
        raise ValueError("recordings is empty: give at least one motion to search")
    ids = [key for key, _ in pairs]
    if len(set(ids)) != len(ids):
        raise ValueError(f"recording ids repeat: {sorted({i for i in ids if ids.count(i) > 1})[:5]}")
    if isinstance(fps, Mapping):
        missing = [key for key in ids if key not in fps]
        if missing:
            raise ValueError(f"fps gives no frame rate for recordings {missing[:5]}")
        return [(key, value, fps[key]) for key, value in pairs]
    return [(key, value, fps) for key, value in pairs]


def search_moments_in_gallery(
    model,
    processor,
    recordings,
    texts: Sequence[str],
    k: int = 5,
    window_seconds: Iterable[float] | float | None = None,
    stride_seconds: float = DEFAULT_STRIDE_SECONDS,
    fps: float | Mapping[str, float] | None = None,
    nms_iou: float = DEFAULT_NMS_IOU,
    batch_size: int = DEFAULT_BATCH_SIZE,
    canonicalize: str = "heading",
    file_options=None,
) -> list[list[GalleryMoment]]:
    """The best `k` spans over several long recordings for each text, ranked together:
    `[[GalleryMoment(recording, start_s, end_s, score), ...] per text]`.

    recordings: a mapping id -> motion (arrays, tensors or files), a sequence of motions or files, or a
        `MotionIndex` (each row's motion, from its file or its stored `motion`, at its `fps`).
    fps: one frame rate for all, or a mapping id -> rate (default: a file's own, else the model's).
    Each recording is read and embedded once for all texts, one recording in memory at a time; recordings
    shorter than the smallest window are left out with a warning. Other arguments as `search_moments`'.
    """
    texts, k, nms_iou = checked_texts(texts), check_k(k), check_nms_iou(nms_iou)
    batch_size = check_batch_size(batch_size)
    lengths = window_lengths(processor, window_seconds)
    stride = stride_frames(processor, stride_seconds)
    check_canonicalize(canonicalize)
    items = gallery_items(recordings, fps)
    set_eval(model)
    text_embeds = text_embeddings(model, processor, texts)
    found = [[] for _ in texts]
    short = []
    for key, motion, rate in items:
        try:
            windows = MotionWindows(
                processor, motion() if callable(motion) else motion, rate, canonicalize, file_options
            )
            scored = _window_scores(model, windows, text_embeds, lengths, stride, batch_size)
        except MotionTooShortError:
            short.append(key)
            continue
        except ValueError as err:
            raise ValueError(f"recording {key!r}: {err}") from err
        for index in range(len(texts)):
            found[index] += [GalleryMoment(key, *moment) for moment in _moments(scored, index, k, nms_iou)]
    if short:
        smallest = lengths[0] / check_extractor(processor).fps
        if len(short) == len(items):
            raise MotionTooShortError(f"every recording is shorter than the smallest window ({smallest:g} s)")
        logger.warning(
            f"{len(short)} recordings shorter than the smallest window ({smallest:g} s) were left out: {short[:5]}"
        )
    # best first; equal scores in the recordings' order, then by time (the order they were found in)
    return [sorted(hits, key=lambda hit: -hit.score)[:k] for hits in found]

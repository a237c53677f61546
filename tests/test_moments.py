"""Moment retrieval: window inputs against the processor on each window cut out, the placement of a window as a
clip, temporal NMS on hand-made spans, a rigged model whose best span is known, gallery ranking against
per-recording search, bad input, and the `moments` command on a tiny saved model."""

import json
import math

import numpy as np
import pytest
import torch
from transformers.modeling_outputs import BaseModelOutputWithPooling

from motionpatches.loading import load_model_and_processor
from motionpatches.moments import (
    GalleryMoment,
    Moment,
    MotionTooShortError,
    MotionWindows,
    default_window_seconds,
    facing_angle,
    facing_joints,
    place_at_origin,
    search_moments,
    search_moments_in_gallery,
    temporal_iou,
    temporal_nms,
    window_scores,
    window_starts,
)
from motionpatches.processors.feature_extraction_motionpatches import resample_frame_rate
from motionpatches.training.data.demo import generate_demo_motions

NUM_FRAMES = 64  # 3.2 s at 20 fps: default windows 1, 2, 3 s
TEXTS = ["marked", "plain", "a person walks"]


def turn(positions: np.ndarray, angle: float) -> np.ndarray:
    cos, sin = math.cos(angle), math.sin(angle)
    x, y, z = positions[..., 0], positions[..., 1], positions[..., 2]
    return np.stack([cos * x + sin * z, y, cos * z - sin * x], axis=-1)


@pytest.fixture(scope="module")
def clips():
    return [m["motion"] for m in generate_demo_motions(4, seed=3)]


@pytest.fixture(scope="module")
def long_motion(clips):
    """Demo clips one after another, each turned and moved elsewhere: windows cut from it lie far from the origin,
    facing all ways, so the three placements give different inputs."""
    parts = [
        turn(clip, 0.9 * number) + np.array([1.5 * number, 0.0, -2.0 * number]) for number, clip in enumerate(clips)
    ]
    return np.concatenate(parts).astype(np.float32)


@pytest.fixture(scope="module")
def tiny(tiny_model, clips):
    model, processor = tiny_model(TEXTS, num_frames=NUM_FRAMES)
    processor.feature_extractor.fit_statistics(clips)  # a z-score that is not the identity
    return model, processor


# ----------------------------------------------------------------------------- window inputs
@pytest.mark.parametrize("canonicalize", ["heading", "position", "none"])
def test_window_inputs_equal_the_processor_on_each_window_cut_out(tiny, long_motion, canonicalize):
    _, processor = tiny
    extractor = processor.feature_extractor
    windows = MotionWindows(processor, long_motion, canonicalize=canonicalize)
    for length in (20, 37, NUM_FRAMES):  # padded windows and one filling the model's frames
        starts = np.array([0, 5, 113, len(long_motion) - length])
        fast = windows.values(starts, length)
        cut = [place_at_origin(long_motion[s : s + length], extractor.skeleton, canonicalize) for s in starts]
        expected = processor(motions=cut)["motion_values"]
        assert fast.shape == expected.shape == (len(starts), 3, NUM_FRAMES, 80)
        np.testing.assert_allclose(fast, expected, rtol=1e-6, atol=2e-6)
        assert (fast[:, :, length:] == 0).all()  # padded as the processor pads


def test_the_three_placements_differ_far_from_the_origin(tiny, long_motion):
    _, processor = tiny
    values = {
        mode: MotionWindows(processor, long_motion, canonicalize=mode).values(np.array([150]), 40)
        for mode in ("heading", "position", "none")
    }
    assert np.abs(values["heading"] - values["position"]).max() > 0.1
    assert np.abs(values["position"] - values["none"]).max() > 0.1
    np.testing.assert_array_equal(values["heading"][:, 1], values["none"][:, 1])  # heights are kept


def test_a_motion_at_another_frame_rate_is_resampled_once(tiny, long_motion):
    _, processor = tiny
    at_30 = resample_frame_rate(long_motion, 20.0, 30.0)
    windows = MotionWindows(processor, at_30, fps=30.0)
    at_20 = resample_frame_rate(at_30, 30.0, 20.0)
    assert len(windows) == len(at_20)
    starts = np.array([3, 40])
    cut = [place_at_origin(at_20[s : s + 30], processor.feature_extractor.skeleton) for s in starts]
    np.testing.assert_allclose(
        windows.values(starts, 30), processor(motions=cut)["motion_values"], rtol=1e-6, atol=2e-6
    )


def test_place_at_origin_undoes_a_turn_and_a_move(clips):
    from motionpatches.processors import resolve_skeleton

    skeleton = resolve_skeleton("humanml3d")
    joints = facing_joints(skeleton)
    assert joints == (0, 1, 2, 13, 14)  # pelvis, hips, collars
    clip = clips[0]
    placed = place_at_origin(clip, skeleton)
    np.testing.assert_allclose(placed[0, 0, [0, 2]], 0.0, atol=1e-6)
    assert abs(facing_angle(placed[0], joints)) < 1e-6
    moved = turn(clip, 2.0) + np.array([4.0, 0.0, -7.0])
    np.testing.assert_allclose(place_at_origin(moved, skeleton), placed, atol=1e-5)
    # the demo's clips start at the origin facing +Z give or take 10 degrees
    assert abs(math.degrees(facing_angle(clip[0], joints))) < 15


def test_window_starts_reach_the_end():
    np.testing.assert_array_equal(window_starts(50, 20, 10), [0, 10, 20, 30])
    np.testing.assert_array_equal(window_starts(55, 20, 10), [0, 10, 20, 30, 35])
    np.testing.assert_array_equal(window_starts(20, 20, 10), [0])


def test_default_windows_fit_the_model(tiny, tiny_model):
    assert default_window_seconds(tiny[1]) == (1.0, 2.0, 3.0)
    assert default_window_seconds(tiny_model(TEXTS)[1]) == tuple(float(s) for s in range(1, 11))  # 224 frames


# ----------------------------------------------------------------------------- suppression
def test_temporal_iou():
    np.testing.assert_allclose(
        temporal_iou(0.0, 4.0, np.array([0.0, 1.0, 4.0, 2.0, 0.0]), np.array([4.0, 5.0, 8.0, 3.0, 2.0])),
        [1.0, 3 / 5, 0.0, 1 / 4, 2 / 4],
    )


def test_nms_keeps_the_best_and_drops_overlaps_above_the_threshold():
    starts = np.array([0.0, 1.0, 4.0, 0.0, 6.0])
    ends = np.array([4.0, 5.0, 8.0, 2.0, 9.0])
    scores = np.array([0.9, 0.8, 0.7, 0.85, 0.75])
    # [1, 5) overlaps [0, 4) by 3/5 > 0.5: dropped; [0, 2) by exactly 0.5: kept; [6, 9) overlaps [4, 8) by 2/5
    np.testing.assert_array_equal(temporal_nms(starts, ends, scores, k=10, iou=0.5), [0, 3, 4, 2])
    np.testing.assert_array_equal(temporal_nms(starts, ends, scores, k=2, iou=0.5), [0, 3])
    np.testing.assert_array_equal(temporal_nms(starts, ends, scores, k=10, iou=1.0), [0, 3, 1, 4, 2])
    np.testing.assert_array_equal(temporal_nms(starts, ends, scores, k=10, iou=0.0), [0, 4])
    # equal scores: the earlier index first
    np.testing.assert_array_equal(temporal_nms(np.array([0.0, 5.0]), np.array([1.0, 6.0]), np.ones(2), k=2), [0, 1])


# ----------------------------------------------------------------------------- a rigged model
MARK_HEIGHT, REST_HEIGHT = 1.0, 0.5


class RiggedModel(torch.nn.Module):
    """Embeds a window as (marked frames, unmarked real frames, `mark_frames` - marked frames), reading the pelvis
    height (column 0, channel y: the torso chain's first point is the pelvis); "marked" embeds as (1, 0, 0) and
    anything else as (0, 1, 0). Cosine with "marked" is 1 only for a window covering exactly `mark_frames` marked
    frames and nothing else."""

    def __init__(self, marked_token: int, mark_frames: int):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.marked_token, self.mark_frames = marked_token, mark_frames

    def get_motion_features(self, motion_values, motion_lengths=None, **kwargs):
        height = motion_values[:, 1, :, 0]
        marked = (height > 0.9).sum(dim=1).float()
        plain = ((height > 0.2) & (height < 0.9)).sum(dim=1).float()
        features = torch.stack([marked, plain, self.mark_frames - marked], dim=1)
        return BaseModelOutputWithPooling(pooler_output=features)

    def get_text_features(self, input_ids, **kwargs):
        is_marked = (input_ids == self.marked_token).any(dim=1)
        features = torch.zeros(len(input_ids), 3)
        features[is_marked, 0] = 1.0
        features[~is_marked, 1] = 1.0
        return BaseModelOutputWithPooling(pooler_output=features)


def marked_motion(clip: np.ndarray, num_frames: int, marks: list[tuple[int, int]]) -> np.ndarray:
    """`num_frames` frames of `clip`'s first pose, the pelvis at REST_HEIGHT except in the frames of `marks`."""
    motion = np.repeat(clip[:1], num_frames, axis=0).copy()
    motion[:, 0, 1] = REST_HEIGHT
    for start, end in marks:
        motion[start:end, 0, 1] = MARK_HEIGHT
    return motion


@pytest.fixture(scope="module")
def rigged(tiny):
    _, processor = tiny
    processor = type(processor)(
        feature_extractor=processor.feature_extractor.for_skeleton("humanml3d"), tokenizer=processor.tokenizer
    )
    marked_token = processor.tokenizer.convert_tokens_to_ids("marked")
    return RiggedModel(marked_token, mark_frames=60), processor  # no statistics: heights pass unchanged


def test_the_rigged_models_span_is_found_exactly(rigged, clips):
    model, processor = rigged
    motion = marked_motion(clips[0], 400, [(100, 160)])  # 5.0 to 8.0 s
    found = search_moments(model, processor, motion, ["marked", "plain"], k=3)
    assert found[0][0] == Moment(5.0, 8.0, pytest.approx(1.0))
    assert [m.score for m in found[0]] == sorted((m.score for m in found[0]), reverse=True)
    assert len(found[0]) == 3
    for a in found[0]:  # no two kept spans overlap by more than the NMS threshold
        for b in found[0]:
            if a != b:
                assert temporal_iou(a.start, a.end, np.array([b.start]), np.array([b.end]))[0] <= 0.5
    # the plain text's best window has no marked frame
    best_plain = found[1][0]
    assert best_plain.end <= 5.0 or best_plain.start >= 8.0


def test_batches_do_not_change_the_scores(rigged, clips):
    model, processor = rigged
    motion = marked_motion(clips[0], 200, [(30, 90)])
    one = window_scores(model, processor, motion, ["marked"], batch_size=1)
    many = window_scores(model, processor, motion, ["marked"], batch_size=7)
    np.testing.assert_array_equal(one.start, many.start)
    np.testing.assert_allclose(one.scores, many.scores, atol=1e-6)
    lengths = np.round((one.end - one.start) * 20).astype(int)
    assert (np.diff(lengths) >= 0).all()  # by length, then start


def test_the_gallery_ranks_every_recordings_spans_together(rigged, clips):
    model, processor = rigged
    recordings = {
        "exact": marked_motion(clips[0], 300, [(40, 100)]),  # 60 marked frames: a 3 s window scores 1
        "shorter": marked_motion(clips[1], 300, [(120, 160)]),  # 40 frames: its 2 s window scores 40 / sqrt(2000)
        "none": marked_motion(clips[2], 300, []),
    }
    found = search_moments_in_gallery(model, processor, recordings, ["marked"], k=4)[0]
    assert found[0] == GalleryMoment("exact", 2.0, 5.0, pytest.approx(1.0))
    assert found[1] == GalleryMoment("shorter", 6.0, 8.0, pytest.approx(40 / math.sqrt(2000)))
    # brute force: every recording searched alone, the spans merged and sorted
    merged = [
        GalleryMoment(key, *moment)
        for key, motion in recordings.items()
        for moment in search_moments(model, processor, motion, ["marked"], k=4)[0]
    ]
    assert found == sorted(merged, key=lambda m: -m.score)[:4]
    # a list of motions takes their positions as ids
    listed = search_moments_in_gallery(model, processor, list(recordings.values()), ["marked"], k=2)[0]
    assert [m.recording for m in listed] == ["0", "1"]


def test_a_gallery_leaves_out_short_recordings_with_a_warning(rigged, clips, caplog):
    model, processor = rigged
    recordings = {"long": marked_motion(clips[0], 100, [(20, 80)]), "short": clips[0][:10]}
    with caplog.at_level("WARNING", logger="motionpatches.moments"):
        found = search_moments_in_gallery(model, processor, recordings, ["marked"], k=2)[0]
    assert {m.recording for m in found} == {"long"}
    assert "short" in caplog.text and "shorter than the smallest window" in caplog.text
    with pytest.raises(MotionTooShortError, match="every recording"):
        search_moments_in_gallery(model, processor, {"short": clips[0][:10]}, ["marked"])


def test_a_gallery_from_a_motion_index(tiny, clips, tmp_path):
    from motionpatches.index import MotionIndex

    model, processor = tiny
    paths = []
    for number, clip in enumerate(clips[:3]):
        paths.append(str(tmp_path / f"take{number}.npy"))
        np.save(paths[-1], clip)
    index = MotionIndex.build(model, processor, paths)
    from_index = search_moments_in_gallery(model, processor, index, ["a person walks"], k=3)[0]
    ids = list(index.rows["id"])
    from_files = search_moments_in_gallery(model, processor, dict(zip(ids, paths)), ["a person walks"], k=3)[0]
    assert [(m.recording, m.start, m.end) for m in from_index] == [(m.recording, m.start, m.end) for m in from_files]
    np.testing.assert_allclose([m.score for m in from_index], [m.score for m in from_files], atol=1e-6)


# ----------------------------------------------------------------------------- bad input
def test_a_motion_shorter_than_the_smallest_window_is_named(tiny, clips):
    model, processor = tiny
    with pytest.raises(MotionTooShortError, match=r"19 frames \(0.95 s at 20 fps\).*20 frames \(1 s\)"):
        search_moments(model, processor, clips[0][:19], ["marked"])
    # a motion between two window lengths is searched with the lengths that fit
    found = search_moments(model, processor, clips[0][:45], ["marked"], k=10)[0]
    assert found and max(m.end - m.start for m in found) <= 2.0


def test_nan_is_named_with_its_frame(tiny, clips):
    model, processor = tiny
    motion = clips[0].copy()
    motion[37, 5, 1] = np.nan
    with pytest.raises(ValueError, match="NaN.*frame 37, joint 5"):
        search_moments(model, processor, motion, ["marked"])
    with pytest.raises(ValueError, match=r"recording 'b'.*NaN.*frame 37"):
        search_moments_in_gallery(model, processor, {"a": clips[1], "b": motion}, ["marked"])


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"texts": []}, "texts is empty"),
        ({"texts": "marked"}, "one string"),
        ({"texts": ["marked", " "]}, "non-empty string"),
        ({"k": 0}, "k must be a positive integer"),
        ({"k": -2}, "k must be a positive integer"),
        ({"window_seconds": [1, 4]}, r"4 s window is 80 frames.*64 frames the model sees \(3.2 s\)"),
        ({"window_seconds": [0]}, "positive numbers of seconds"),
        ({"window_seconds": []}, "window_seconds is empty"),
        ({"stride_seconds": 0}, "stride_seconds must be a positive"),
        ({"nms_iou": 1.5}, "nms_iou must be a number between 0 and 1"),
        ({"canonicalize": "up"}, "canonicalize='up'"),
        ({"batch_size": 0}, "batch_size must be a positive integer"),
    ],
)
def test_bad_arguments_are_refused_by_name(tiny, clips, arguments, message):
    model, processor = tiny
    call = {"texts": ["marked"], **arguments}
    with pytest.raises(ValueError, match=message):
        search_moments(model, processor, clips[0], call.pop("texts"), **call)


def test_wrong_joints_and_empty_galleries_are_refused(tiny, clips):
    model, processor = tiny
    with pytest.raises(ValueError, match="21 joints but the processor's skeleton 'humanml3d' has 22"):
        search_moments(model, processor, clips[0][:, :21], ["marked"])
    with pytest.raises(ValueError, match="recordings is empty"):
        search_moments_in_gallery(model, processor, {}, ["marked"])
    with pytest.raises(ValueError, match="recording ids repeat"):
        search_moments_in_gallery(model, processor, ["a.npy", "a.npy"], ["marked"])


# ----------------------------------------------------------------------------- the command
def test_the_moments_command_prints_and_writes_the_spans(saved_tiny_model, cli, clips, tmp_path):
    first, second = tmp_path / "take1.npy", tmp_path / "take2.npy"
    np.save(first, np.concatenate(clips[:2]))
    np.save(second, np.concatenate(clips[2:]))
    report = tmp_path / "moments"
    result = cli(
        "moments", "--model", saved_tiny_model, first, second, "--query", "a person walks", "--query", "someone jumps",
        "--top_k", "3", "--output_file", report,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == '"a person walks"' and lines[4] == '"someone jumps"'
    written = json.loads((tmp_path / "moments.json").read_text())
    model, processor = load_model_and_processor(saved_tiny_model)
    expected = search_moments_in_gallery(
        model, processor, {str(first): str(first), str(second): str(second)}, ["a person walks", "someone jumps"], k=3
    )
    for query, hits in zip(written["queries"], expected):
        assert [(m["recording"], m["start"], m["end"]) for m in query["moments"]] == [
            (h.recording, h.start, h.end) for h in hits
        ]
        np.testing.assert_allclose([m["score"] for m in query["moments"]], [h.score for h in hits], atol=1e-6)
    hit = expected[0][0]
    assert lines[1].split() == ["1.", f"{hit.score:.3f}", f"{hit.start:.2f}", "-", f"{hit.end:.2f}", "s", hit.recording]
    assert written["settings"]["stride_seconds"] == 0.5


def test_the_moments_command_names_a_short_file(saved_tiny_model, cli, clips, tmp_path):
    short = tmp_path / "short.npy"
    np.save(short, clips[0][:10])
    result = cli("moments", "--model", saved_tiny_model, short, "--query", "a person walks")
    assert result.returncode == 2
    assert "shorter than the smallest window" in result.stderr
    result = cli("moments", "--model", saved_tiny_model, short, "--query", "a person walks", "--window_seconds", "9")
    assert result.returncode == 2 and "9 s window is 180 frames" in result.stderr


def test_a_skeleton_without_legs_and_arms_has_no_facing():
    from motionpatches.processors import Skeleton

    skeleton = Skeleton(name="spine_only", joint_names=("a", "b", "c"), chains={"torso": (0, 1, 2)})
    with pytest.raises(
        ValueError, match=r"no left_leg, right_leg, left_arm, right_arm chain.*canonicalize=\"position\""
    ):
        facing_joints(skeleton)
    motion = np.arange(18, dtype=np.float32).reshape(2, 3, 3)
    np.testing.assert_allclose(place_at_origin(motion, skeleton, "position")[0, 0], [0.0, 1.0, 0.0])

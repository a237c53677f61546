"""Smoke tests of the moment-retrieval benchmark: the sequences it builds (spans, smooth joins), the metrics it
reports (recomputed from its answers) and its picture; how well the tiny random model does is not tested."""

import math

import numpy as np
import pytest
from PIL import Image

from benchmarks import moments
from motionpatches.moments import facing_angle, facing_joints
from motionpatches.processors import resolve_skeleton
from motionpatches.training.data.demo import generate_demo_motions

JOINTS = facing_joints(resolve_skeleton("humanml3d"))


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """One `--quick --no-write` run for the module (seconds), with its picture; RESULTS.md must come out untouched."""
    from benchmarks import results

    before = results.RESULTS_PATH.read_text()
    picture = tmp_path_factory.mktemp("moments") / "moments.png"
    out = moments.main(["--quick", "--no-write", "--picture", str(picture)])
    assert results.RESULTS_PATH.read_text() == before
    out["picture"] = picture
    return out


def test_a_sequence_joins_clips_where_the_previous_one_ended():
    clips = [m["motion"] for m in generate_demo_motions(3, seed=5)]
    clips[1] = moments.rotate_about_y(clips[1], 1.2).astype(np.float32)  # facing elsewhere at its start
    motion, spans = moments.build_sequence(clips, JOINTS, transition_frames=10)
    assert spans[0] == (0, len(clips[0]))
    assert spans[1] == (len(clips[0]) + 10, len(clips[0]) + 10 + len(clips[1]))
    assert len(motion) == spans[-1][1]
    for (_, end), (start, _) in zip(spans, spans[1:]):
        previous, following = motion[end - 1], motion[start]
        # the root continues where it stopped, facing the same way
        np.testing.assert_allclose(previous[0, [0, 2]], following[0, [0, 2]], atol=1e-5)
        assert abs(facing_angle(previous, JOINTS) - facing_angle(following, JOINTS)) < 1e-5
        # no jump between frames across the join larger than inside the clips
        steps = np.abs(np.diff(motion[end - 1 : start + 1], axis=0)).max()
        assert steps < 0.2
    # each clip is itself, turned and moved: its joints' distances are unchanged
    for clip, (start, end) in zip(clips, spans):
        placed = motion[start:end]
        np.testing.assert_allclose(
            np.linalg.norm(placed[:, 1] - placed[:, 4], axis=-1),
            np.linalg.norm(clip[:, 1] - clip[:, 4], axis=-1),
            atol=1e-5,
        )


def test_clips_of_a_sequence_have_distinct_actions(quick):
    for sequence in quick["sequences"]:
        assert len(set(sequence["actions"])) == len(sequence["actions"]) == moments.QUICK["clips"][0]
        assert sequence["spans"][0][0] == 0.0
        assert all(b <= c for (_, b), (c, _) in zip(sequence["spans"], sequence["spans"][1:]))


def test_reported_metrics_are_recomputed_from_the_answers(quick):
    truths = [truth for sequence in quick["sequences"] for truth in sequence["spans"]]
    tops = [answer for found in quick["answers"] for answer in found["ours"]]
    ious = [moments.span_iou(spans[0], truth) for spans, truth in zip(tops, truths)]
    row = next(r for r in quick["rows"] if r["method"] == "ours")
    assert row["queries"] == len(truths)
    assert float(row["R@1 IoU>=0.5"]) == pytest.approx(100 * np.mean(np.array(ious) >= 0.5), abs=0.05)
    assert float(row["mIoU"]) == pytest.approx(100 * np.mean(ious), abs=0.05)
    # the fixed-length baseline answers with windows of one length only
    for found in quick["answers"]:
        for spans in found["fixed-length window (model)"]:
            assert {round(b - a, 6) for a, b in spans} == {quick["fixed_seconds"]}


def test_random_spans_have_known_expectations():
    rng = np.random.default_rng(0)
    # a span as long as the sequence, with one length allowed, always covers it exactly
    whole = moments.random_metrics(4.0, (0.0, 4.0), np.array([4.0]), rng)
    assert whole == {"R@1 IoU>=0.5": 1.0, "R@1 IoU>=0.7": 1.0, "mIoU": 1.0, "R@5 IoU>=0.5": 1.0}
    # a 1 s span in 10 s against the true [0, 1): IoU = max(0, 1 - s) / (1 + min(1, s)) for start s ~ U(0, 9)
    far = moments.random_metrics(10.0, (0.0, 1.0), np.array([1.0]), rng)
    expected = (math.log(4) - 1) / 9  # integral of (1 - s) / (1 + s) over [0, 1], over 9
    assert far["mIoU"] == pytest.approx(expected, abs=0.01)


def test_the_picture_is_written(quick):
    with Image.open(quick["picture"]) as image:
        assert image.size == (1000, 420)


def test_exported_sequences_are_the_built_ones(tmp_path):
    import json

    out = moments.main(["--quick", "--no-write", "--export_sequences", str(tmp_path / "sequences")])
    listed = json.loads((tmp_path / "sequences" / "sequences.json").read_text())
    assert listed["fps"] == moments.FPS and len(listed["sequences"]) == len(out["sequences"])
    for described, sequence in zip(listed["sequences"], out["sequences"]):
        np.testing.assert_array_equal(np.load(tmp_path / "sequences" / described["file"]), sequence["motion"])
        assert [(c["start"], c["end"]) for c in described["clips"]] == [tuple(s) for s in sequence["spans"]]
        assert [c["caption"] for c in described["clips"]] == sequence["captions"]

"""The failure report (training/report.py): hand-counted answers on hand-built embeddings, brute force on random
ones, the files it writes, its model-card summary and `eval_retrieval.py --report` end to end."""

import json
import os
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from motionpatches.retrieval import retrieval_metrics
from motionpatches.training.evaluation import left_right_confusion
from motionpatches.training.model_card import report_summary_markdown, trained_model_card, write_model_card
from motionpatches.training.report import REPORT_FILES, failure_report, report_markdown, write_report

WALK, SLOW, RUN = "a person walks", "a person walks slowly", "a person runs"


def normalise(x):
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def embeddings_of(texts, motions, captions):
    return {
        "text_embeds": normalise(texts).astype(np.float32),
        "motion_embeds": normalise(motions).astype(np.float32),
        "captions": np.array(captions),
        "ids": np.array([f"m{i}" for i in range(len(captions))]),
    }


@pytest.fixture
def one_group_fails():
    """6 walks and 2 slow walks found first; the 2 runs' texts lie nearer every walk (cos 0.89) than their own
    motions (cos 0.45), so both run texts fail, at rank 7; every motion still finds its own texts first."""
    x, y, z, w = np.eye(4)
    walks = [x + 0.01 * i * w for i in range(6)]  # walk motion 0 is the closest to a run text, then 1, 2, ...
    motions = [*walks, y, y + 0.01 * w, z, z + 0.01 * w]
    texts = [x] * 6 + [y] * 2 + [x + 0.5 * z] * 2
    captions = [WALK] * 6 + [SLOW] * 2 + [RUN] * 2
    return embeddings_of(texts, motions, captions)


def test_a_whole_failing_group_shows_in_the_macro_average(one_group_fails):
    report = failure_report(one_group_fails)
    # per query: 8 of 10 texts; per caption group: (100 + 100 + 0) / 3
    assert report["per_query"]["t2m/R@1"] == pytest.approx(80.0)
    assert report["macro"]["t2m/R@1"] == pytest.approx(200.0 / 3)
    assert (report["per_query"]["t2m/R@5"], report["macro"]["t2m/R@5"]) == pytest.approx((80.0, 200.0 / 3))  # rank 7
    assert report["per_query"]["t2m/R@10"] == report["macro"]["t2m/R@10"] == pytest.approx(100.0)
    assert report["per_query"]["m2t/R@1"] == report["macro"]["m2t/R@1"] == pytest.approx(100.0)
    assert (report["group_by"], report["num_groups"], report["num_queries"]) == ("caption", 3, 10)
    assert report["left_right_confusion"] is None

    run_group, *others = report["groups"]
    assert run_group == {"group": RUN, "queries": 2, "t2m/R@1": 0.0, "m2t/R@1": 100.0,
                         "retrieved_instead": WALK, "retrieved_instead_count": 2, "failed_within_group": 0}  # fmt: skip
    assert [(row["group"], row["t2m/R@1"], row["retrieved_instead"]) for row in others] == [
        (WALK, 100.0, None),  # the bigger group first among equals
        (SLOW, 100.0, None),
    ]
    assert report["confused_pairs"] == [
        {"query_group": RUN, "retrieved_group": WALK, "count": 2, "percent_of_group": 100.0,
         "example": {"query": RUN, "retrieved": WALK}}
    ]  # fmt: skip

    (worst,) = report["worst_queries"]  # the two run texts share a caption: listed once
    assert (worst["index"], worst["caption"], worst["rank"], worst["texts_with_this_caption"]) == (8, RUN, 7, 2)
    assert [(r["index"], r["correct"]) for r in worst["retrieved"]] == [(0, False), (1, False), (2, False)]
    assert worst["retrieved"][0]["score"] == pytest.approx(1 / np.sqrt(1.25), abs=1e-6)
    assert (worst["true_motion"]["rank"], worst["true_motion"]["id"]) == (7, "m8")
    assert worst["true_motion"]["score"] == pytest.approx(0.5 / np.sqrt(1.25), abs=1e-6)


def test_labels_group_across_captions(one_group_fails):
    """Walks and slow walks are one action: per action (8/8 + 0/2) / 2; correctness is still by caption."""
    labels = ["walk"] * 8 + ["run"] * 2
    report = failure_report(one_group_fails, groups=labels, group_by="action")
    assert report["per_query"]["t2m/R@1"] == pytest.approx(80.0)
    assert report["macro"]["t2m/R@1"] == pytest.approx(50.0)
    assert (report["group_by"], report["num_groups"]) == ("action", 2)
    assert [(row["group"], row["queries"], row["t2m/R@1"]) for row in report["groups"]] == [
        ("run", 2, 0.0),
        ("walk", 8, 100.0),
    ]
    assert [(p["query_group"], p["retrieved_group"], p["count"]) for p in report["confused_pairs"]] == [
        ("run", "walk", 2)
    ]
    assert report["confused_pairs"][0]["example"] == {"query": RUN, "retrieved": WALK}
    assert report["worst_queries"][0]["group"] == "run"
    assert (report["failed_queries"], report["failed_within_group"]) == (2, 0)
    with pytest.raises(ValueError, match="one label per row: expected 10"):
        failure_report(one_group_fails, groups=labels[:-1])


def test_failures_within_a_label_are_counted_apart(one_group_fails):
    """Runs and walks as one label: the runs' failures stay inside it, so no pair of groups is confused."""
    report = failure_report(one_group_fails, groups=["move"] * 10, group_by="action")
    assert (report["failed_queries"], report["failed_within_group"], report["confused_pairs"]) == (2, 2, [])
    assert report["macro"]["t2m/R@1"] == pytest.approx(80.0)
    (row,) = report["groups"]
    assert (row["failed_within_group"], row["retrieved_instead"], row["retrieved_instead_count"]) == (2, None, 0)
    assert "2 of them retrieved first another caption of their own group" in report_markdown(report)
    assert "- 2 of the 2 texts missed at rank 1 retrieve first another caption of their own `action`." in (
        report_summary_markdown(report)
    )


def test_left_right_confusion_and_its_pair():
    """Both left-hand texts lie on the right-hand motions: 2 of the 4 side-specific texts swap sides."""
    x, y, z, w = np.eye(4)
    left, right = "a person waves the left hand", "a person waves the right hand"
    captions = [left, left, right, right, "a person jumps"]
    embeddings = embeddings_of([y, y, y, y, z], [x, x + 0.01 * w, y, y + 0.01 * w, z], captions)
    report = failure_report(embeddings)
    assert report["left_right_confusion"] == pytest.approx(50.0) == left_right_confusion(embeddings)
    assert [(p["query_group"], p["retrieved_group"], p["count"]) for p in report["confused_pairs"]] == [
        (left, right, 2)
    ]
    assert report["per_query"]["t2m/R@1"] == pytest.approx(60.0)
    assert report["macro"]["t2m/R@1"] == pytest.approx(200.0 / 3)


@pytest.fixture(scope="module")
def noisy():
    """Noisy pairs with many repeated captions, some differing only by side."""
    rng = np.random.default_rng(3)
    n, g = 240, 30
    groups = rng.integers(0, g, n)
    centres = rng.standard_normal((g, 12))
    captions = [
        f"a person waves the {'left' if k % 3 == 0 else 'right' if k % 3 == 1 else 'both'} hand {k}" for k in groups
    ]
    return embeddings_of(centres[groups] + rng.standard_normal((n, 12)), centres[groups] + rng.standard_normal((n, 12)), captions)  # fmt: skip


def test_per_query_recall_is_protocol_alls(noisy):
    report = failure_report(noisy, k_values=(1, 2, 3, 5, 10))
    expected = retrieval_metrics(noisy["text_embeds"], noisy["motion_embeds"], "all", captions=list(noisy["captions"]))
    assert report["per_query"] == pytest.approx(expected, abs=1e-9)
    assert list(report["per_query"]) == list(expected)
    assert 0 < expected["t2m/R@1"] < 100  # failures to report


def test_counts_match_brute_force(noisy):
    sims = noisy["text_embeds"] @ noisy["motion_embeds"].T
    captions = noisy["captions"]
    same = captions[:, None] == captions[None, :]
    ranks = 1 + (sims > np.where(same, sims, -np.inf).max(axis=1, keepdims=True)).sum(axis=1)
    instead = np.where(same, -np.inf, sims).argmax(axis=1)
    failed = ranks > 1
    pairs = Counter(zip(captions[failed], captions[instead[failed]]))
    macro = np.mean([np.mean(ranks[captions == c] <= 1) for c in np.unique(captions)])

    report = failure_report(noisy, top_pairs=1000, worst=5)
    assert report["macro"]["t2m/R@1"] == pytest.approx(100 * macro)
    assert {(p["query_group"], p["retrieved_group"]): p["count"] for p in report["confused_pairs"]} == pairs
    counts = [p["count"] for p in report["confused_pairs"]]
    assert counts == sorted(counts, reverse=True)
    assert sum(row["queries"] for row in report["groups"]) == len(captions)
    r1 = [row["t2m/R@1"] for row in report["groups"]]
    assert r1 == sorted(r1)
    worst_ranks = [entry["rank"] for entry in report["worst_queries"]]
    assert len(worst_ranks) == 5 and worst_ranks == sorted(worst_ranks, reverse=True)
    assert worst_ranks[0] == ranks.max()
    assert len({entry["caption"] for entry in report["worst_queries"]}) == 5
    assert report["left_right_confusion"] == pytest.approx(left_right_confusion(noisy))
    assert len(failure_report(noisy, top_pairs=3)["confused_pairs"]) == 3


@pytest.mark.parametrize(
    "change, message",
    [
        ({"text_embeds": np.full((10, 4), np.nan)}, "text_embeds holds NaN"),
        ({"motion_embeds": np.ones((9, 4))}, "same shape"),
        ({"captions": np.array(["a"] * 9)}, "one entry per row"),
        ({"ids": None}, None),
    ],
)
def test_bad_embeddings_are_named(one_group_fails, change, message):
    embeddings = {**one_group_fails, **change}
    if message is None:
        del embeddings["ids"]
        message = "embeddings lacks ids"
    with pytest.raises(ValueError, match=message):
        failure_report(embeddings)


# ----------------------------------------------------------------------------- files
@pytest.fixture
def motions():
    """Ten short HumanML3D-skeleton motions for the picture."""
    rng = np.random.default_rng(0)
    return [(rng.standard_normal((12, 22, 3)) * 0.2 + [0, 1, 0]).astype(np.float32) for _ in range(10)]


def test_write_report_writes_json_markdown_and_a_picture(one_group_fails, motions, tmp_path):
    report = failure_report(one_group_fails)
    out = tmp_path / "report"
    paths = write_report(report, motions, out, "humanml3d")
    assert paths == [str(out / name) for name in REPORT_FILES] and sorted(os.listdir(out)) == sorted(REPORT_FILES)
    assert json.loads((out / "report.json").read_text()) == report
    markdown = (out / "report.md").read_text()
    assert "| t2m per query | 80.0 | 80.0 | 80.0 | 80.0 | 100.0 |" in markdown
    assert "| t2m macro over groups | 66.7 |" in markdown
    assert f"| {RUN} | {WALK} | 2 | 100 |" in markdown
    assert "![worst text queries](worst_queries.png)" in markdown
    with Image.open(out / "worst_queries.png") as picture:
        picture.verify()
        assert picture.format == "PNG" and picture.width >= 4 * 3 * 80 and picture.height > 80


def test_a_report_without_failures_still_has_its_files(motions, tmp_path):
    x, y = np.eye(2)
    report = failure_report(embeddings_of([x, y], [x, y], ["a", "b"]))
    assert report["confused_pairs"] == [] and report["worst_queries"] == []
    write_report(report, motions, tmp_path, "humanml3d")
    assert "No text query failed at rank 1." in (tmp_path / "report.md").read_text()
    with Image.open(tmp_path / "worst_queries.png") as picture:
        assert picture.format == "PNG"


def test_a_failure_while_rendering_leaves_the_previous_report(one_group_fails, motions, tmp_path, monkeypatch):
    (tmp_path / "report.json").write_text("previous")
    report = failure_report(one_group_fails)
    import motionpatches.training.report as module

    monkeypatch.setattr(module, "report_markdown", lambda report: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        write_report(report, motions, tmp_path, "humanml3d")
    assert os.listdir(tmp_path) == ["report.json"] and (tmp_path / "report.json").read_text() == "previous"


def test_a_file_is_refused_as_report_folder(one_group_fails, motions, tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="is a file"):
        write_report(failure_report(one_group_fails), motions, tmp_path / "file", "humanml3d")


def test_markdown_escapes_table_cells():
    x, y = np.eye(2)
    report = failure_report(embeddings_of([x, x], [x, y], ["walk | run", "jump"]))
    assert "walk \\| run" in report_markdown(report)


# ----------------------------------------------------------------------------- model card
def test_model_card_summary_and_section(one_group_fails, tmp_path):
    summary = report_summary_markdown(failure_report(one_group_fails))
    assert "text-to-motion R@1 80.0 per query, 66.7 averaged over caption groups" in summary
    assert f'"{RUN}" -> "{WALK}" (2)' in summary and "left/right" not in summary
    metrics = retrieval_metrics(one_group_fails["text_embeds"], one_group_fails["motion_embeds"], "all",
                                captions=list(one_group_fails["captions"]))  # fmt: skip
    args = {"dataset_name": "demo", "num_frames": 64}
    for failure_summary, expected in ((summary, True), (None, False)):
        card = trained_model_card(args, {"test": [0] * 10}, None, metrics, 10, 10, failure_summary=failure_summary)
        text = open(write_model_card(str(tmp_path), **card), encoding="utf-8").read()
        assert ("## Failure modes\n" + summary in text) is expected


# ----------------------------------------------------------------------------- eval_retrieval.py --report
DEMO = ["--dataset_name", "demo", "--demo_sizes", "0,0,14"]


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory, tiny_model):
    folder = tmp_path_factory.mktemp("report") / "model"
    model, processor = tiny_model(["a person walks forward", "a person waves the left hand"], num_frames=64)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def evaluate_main(*args):
    from motionpatches.training.eval_retrieval import main

    return main([str(arg) for arg in args])


def test_eval_report_end_to_end(saved_model, tmp_path, capsys):
    evaluate_main("--model_name_or_path", saved_model, *DEMO, "--output_file", tmp_path / "metrics.json",
                  "--report", tmp_path / "report", "--group_by", "action")  # fmt: skip
    out = capsys.readouterr().out
    assert f"wrote {tmp_path / 'report' / 'worst_queries.png'}" in out and "averaged over groups of `action`" in out
    assert sorted(os.listdir(tmp_path / "report")) == sorted(REPORT_FILES)
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert report["per_query"] == pytest.approx(metrics)
    assert report["group_by"] == "action" and report["num_queries"] == 14
    assert sum(row["queries"] for row in report["groups"]) == 14
    with Image.open(tmp_path / "report" / "worst_queries.png") as picture:
        picture.verify()


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--report", "{tmp}/file"], "--report {tmp}/file is a file"),
        (["--report", "{tmp}/missing/report"], "the folder {tmp}/missing does not exist"),
        (["--group_by", "action"], "--group_by only changes the report; add --report DIR"),
    ],
)
def test_eval_checks_the_report_folder_before_any_work(flags, message, tmp_path):
    """The model does not exist: an error about the report means it was checked first."""
    (tmp_path / "file").write_text("")
    with pytest.raises(SystemExit) as exit_:
        evaluate_main("--model_name_or_path", tmp_path / "no_model", *DEMO, *[f.format(tmp=tmp_path) for f in flags])
    assert message.format(tmp=tmp_path) in str(exit_.value.code)
    assert os.listdir(tmp_path) == ["file"]


@pytest.mark.parametrize(
    "column, message", [("speed", "has no such column; its columns are id, motion, captions, action"),
                        ("captions", "holds List values")]
)  # fmt: skip
def test_eval_refuses_a_group_by_column_that_is_not_a_label(saved_model, tmp_path, column, message):
    with pytest.raises(SystemExit) as exit_:
        evaluate_main("--model_name_or_path", saved_model, *DEMO, "--report", tmp_path, "--group_by", column)
    assert message in str(exit_.value.code) and os.listdir(tmp_path) == []

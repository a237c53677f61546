"""Smoke tests of the preprocessing and retrieval-metrics benchmarks: what they time must be right; how fast is not tested."""

import math
import os
import re
import subprocess
import sys
import types

import numpy as np
import pytest
import torch

from benchmarks import preprocessing, results, retrieval_metrics
from motionpatches.processors.feature_extraction_motionpatches import MotionPatchFeatureExtractor


def test_preprocessing_quick_matches_reference(results_file_unchanged):
    out = preprocessing.main(["--quick", "--no-write"])
    assert out["max_abs_diff"] < 1e-5
    assert out["length_max_abs_diff"] < 1e-5
    assert [row["batch"] for row in out["batches"]] == list(preprocessing.QUICK["batches"])
    assert [row["frames"] for row in out["lengths"]] == list(preprocessing.QUICK["lengths"])
    for row in out["batches"] + out["lengths"]:
        assert row["ours_s"] > 0 and row["reference_s"] > 0
        assert row["speedup"] == pytest.approx(row["reference_s"] / row["ours_s"])
    assert isinstance(out["target_met"], bool)


def test_reference_loop_crops_after_processing_every_frame():
    """Past 224 frames the reference keeps the first window; a later frame must not leak into it."""
    rng = np.random.default_rng(1)
    mean = rng.standard_normal((22, 3)).astype(np.float32)
    std = rng.uniform(0.5, 1.5, (22, 3)).astype(np.float32)
    motion = rng.standard_normal((230, 22, 3), dtype=np.float32)
    changed = motion.copy()
    changed[-1] += 100.0
    reference = preprocessing.reference_motion_values(motion, mean, std)
    assert reference.shape == (3, 224, 80)
    np.testing.assert_array_equal(reference, preprocessing.reference_motion_values(changed, mean, std))
    short = preprocessing.reference_motion_values(motion[:10], mean, std)
    assert not short[:, 10:].any() and short[:, :10].any()
    extractor = MotionPatchFeatureExtractor(skeleton="humanml3d", part_order="reference", mean=mean, std=std)
    np.testing.assert_allclose(extractor([motion])["motion_values"][0], reference, atol=1e-5)


def test_retrieval_metrics_quick_matches_reference(results_file_unchanged):
    out = retrieval_metrics.main(["--quick", "--no-write"])
    rows = out["rows"]
    assert [row["n"] for row in rows] == list(retrieval_metrics.QUICK["ns"])
    measured = [row for row in rows if not row["extrapolated"]]
    extrapolated = [row for row in rows if row["extrapolated"]]
    assert measured and extrapolated
    for row in measured:
        assert row["check"]["equal"], row["check"]
        assert row["check"]["rank_mismatches"] == 0
    for row in rows:
        assert row["ours_s"] > 0 and row["reference_s"] > 0 and row["ours_mb"] >= 0
        assert set(row["metrics"]) >= {"t2m/R@1", "t2m/MedR", "m2t/R@10", "m2t/MedR"}
        assert row["product_s"] > 0 and row["tiled_product_s"] > 0
        assert row["over_product"] == pytest.approx(row["ours_s"] / row["product_s"])
        assert row["over_tiled"] == pytest.approx(row["ours_s"] / row["tiled_product_s"])
        # the products and the comparisons were timed inside ours: parts of its CPU time, not all of it
        assert row["products_cpu_s"] > 0 and row["comparisons_cpu_s"] > 0
        assert row["products_cpu_s"] + row["comparisons_cpu_s"] < row["ours_cpu_s"]
    assert torch.gt.__module__ == "torch" and torch.Tensor.addmv_.__name__ == "addmv_"  # unwrapped after
    assert math.isfinite(out["fit"]["a"]) and math.isfinite(out["fit"]["b"])
    assert len(out["targets"]) == 6 and all(isinstance(met, bool) for _, met, _ in out["targets"])
    bound_targets = [name for name, _, _ in out["targets"] if "product s" in name]
    assert bound_targets == ["ours <= 1.25x product s at N = 400", "ours <= 1.25x product s at N = 2,000"]


def test_reference_ranks_on_a_hand_made_case():
    """Texts 0 and 1 share a caption, so either motion 0 or 1 is correct for both."""
    text = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], dtype=np.float32)
    motion = np.array([[0.0, 1.0], [0.8, 0.6], [1.0, 0.0]], dtype=np.float32)
    captions = ["walk", "walk", "jump"]
    t2m, m2t = retrieval_metrics.reference_ranks(text, motion, captions)
    # similarities (rows texts, columns motions): [[0, .8, 1], [1, .6, 0], [.8, .96, .6]]; ranks are 0-based
    np.testing.assert_array_equal(t2m, [1, 0, 2])
    np.testing.assert_array_equal(m2t, [0, 1, 1])
    metrics = retrieval_metrics.reference_metrics(t2m, m2t)
    assert metrics["t2m/R@1"] == pytest.approx(100 / 3) and metrics["t2m/MedR"] == 2.0
    assert metrics["m2t/R@1"] == pytest.approx(100 / 3) and metrics["m2t/MedR"] == 2.0


def test_power_law_fit_recovers_exponent():
    ns = [100, 1000, 10000]
    a, b = retrieval_metrics.fit_power_law(ns, [3e-7 * n**2 for n in ns])
    assert b == pytest.approx(2.0) and a == pytest.approx(3e-7)


def test_append_results_writes_a_full_section(tmp_path):
    path = tmp_path / "RESULTS.md"
    table = results.format_table([{"N": 10, "seconds": "0.5"}, {"N": 1000, "seconds": "12.25"}], ["N", "seconds"])
    assert table.splitlines()[0] == "   N  seconds"
    results.append_results("First", table, "a note", path=path)
    results.append_results("Second", "x", path=path)
    text = path.read_text()
    assert text.startswith("# Benchmark results")
    first = text[text.index("## First") : text.index("## Second")]
    assert "- command: `python " in first
    assert f"- commit: {results.git_commit()}" in first
    assert f"cores {results.machine_info()['cores']}" in first and "torch " in first
    assert f"```\n{table}\n```" in first and "a note" in first
    assert text.count("# Benchmark results") == 1


def test_measure_and_memory_helpers():
    assert 0 < results.measure(lambda: sum(range(1000)), repeat=2, warmup=0) < 1
    assert results.peak_rss_mb() > 1
    info = results.machine_info()
    assert set(info) == {"cores", "torch_threads", "torch", "numpy", "python", "platform"}


def test_compare_flags_a_wrong_rank_that_is_no_near_tie():
    text, motion, captions = retrieval_metrics.make_data(300, seed=3)
    metrics = retrieval_metrics.retrieval_metrics(text, motion, "all", captions=captions)
    t2m, m2t = retrieval_metrics.reference_ranks(text, motion, captions)
    assert retrieval_metrics.compare(text, motion, captions, metrics, (t2m, m2t))["equal"]
    t2m[7] += 5
    check = retrieval_metrics.compare(text, motion, captions, metrics, (t2m, m2t))
    assert not check["equal"] and check["rank_mismatches"] == 1
    assert not check["mismatches_are_near_ties"]


def test_command_names_the_module_run_with_dash_m(monkeypatch):
    """`python -m benchmarks.<name>` sets `sys.argv[0]` to the file's path; the record must say `-m <module>`."""
    main = types.ModuleType("__main__")
    main.__spec__ = types.SimpleNamespace(name="benchmarks.preprocessing")
    monkeypatch.setitem(sys.modules, "__main__", main)
    monkeypatch.setattr(
        sys, "argv", [str(results.REPO_ROOT / "benchmarks" / "preprocessing.py"), "--quick", "--seed", "3"]
    )
    assert results._command() == "python -m benchmarks.preprocessing --quick --seed 3"


def test_command_of_a_script_in_the_repository(monkeypatch):
    """Without a module spec (a script, or a test runner's entry point) the path is given relative to the repository."""
    main = types.ModuleType("__main__")
    main.__spec__ = None
    monkeypatch.setitem(sys.modules, "__main__", main)
    monkeypatch.setattr(sys, "argv", [str(results.REPO_ROOT / "training" / "train.py"), "--demo_sizes", "64,16,16"])
    assert results._command() == "python training/train.py --demo_sizes 64,16,16"
    monkeypatch.setattr(sys, "argv", ["/usr/bin/some-tool", "-q", "a b"])
    assert results._command() == "python /usr/bin/some-tool -q 'a b'"


@pytest.mark.slow
def test_preprocessing_runs_as_a_module_from_the_repository_root(results_file_unchanged):
    """The documented command, in a fresh interpreter: nothing but the working directory makes `benchmarks` importable."""
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.preprocessing", "--quick", "--no-write"],
        cwd=results.REPO_ROOT,
        env={key: value for key, value in os.environ.items() if key != "PYTHONPATH"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr
    assert "max abs diff, ours vs reference loop" in completed.stdout
    table_header = next(line for line in completed.stdout.splitlines() if line.lstrip().startswith("batch"))
    assert re.split(r"\s{2,}", table_header.strip())[1:3] == ["ours motions/s", "reference motions/s"]
    assert "target >= 100x the per-frame loop" in completed.stdout

"""Smoke tests of the ONNX Runtime benchmark: what it times and reports must be right (same inputs, ratios, verdicts,
retrieval of each implementation); how fast is not tested."""

import re

import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from benchmarks import onnx_runtime, results  # noqa: E402

# one quick run exports a tiny model's towers (torch.export traces both) and embeds a small test split: ~15 s
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def quick():
    """One `--quick --no-write` run for the module; RESULTS.md must come out untouched."""
    before = results.RESULTS_PATH.read_text() if results.RESULTS_PATH.exists() else None
    out = onnx_runtime.main(["--quick", "--no-write"])
    after = results.RESULTS_PATH.read_text() if results.RESULTS_PATH.exists() else None
    assert after == before
    return out


def test_speed_rows_ratios_and_verdicts(quick):
    rows = quick["speed"]
    batches = onnx_runtime.QUICK["batches"]
    assert [(r["tower"], r["batch"]) for r in rows] == [(t, b) for t in ("motion", "text") for b in batches]
    for row in rows:
        rates = row["rates"]
        assert set(rates) == set(onnx_runtime.IMPLEMENTATIONS) and all(rate > 0 for rate in rates.values())
        # the best call is at least as fast as the median one
        assert all(row["best_rates"][name] >= rate for name, rate in rates.items())
        assert row["fp32_ratio"] == pytest.approx(rates["ORT fp32"] / rates["eager"])
        assert row["int8_ratio"] == pytest.approx(rates["ORT int8"] / rates["eager"])
        if row["batch"] == max(batches):
            assert row["goal_met"] == (row["fp32_ratio"] >= onnx_runtime.TARGET_SPEEDUP)
            verdict = "met" if row["goal_met"] else "NOT met"
            assert f"{row['tower']} tower {verdict} ({row['fp32_ratio']:.2f}x)" in quick["notes"]
        else:
            assert row["goal_met"] is None


def test_every_table_has_its_columns(quick):
    speed, profiles, retrieval = quick["table"].split("\n\n")
    goal = f"goal fp32 >= {onnx_runtime.TARGET_SPEEDUP}x"
    assert re.split(r"\s{2,}", speed.splitlines()[0].strip()) == onnx_runtime.SPEED_COLUMNS + [goal]
    assert len(speed.splitlines()) == 2 + len(quick["speed"])
    assert re.split(r"\s{2,}", profiles.splitlines()[1].strip()) == onnx_runtime.PROFILE_COLUMNS
    assert re.split(r"\s{2,}", retrieval.splitlines()[1].strip()) == onnx_runtime.RETRIEVAL_COLUMNS
    assert [line.split()[0] for line in retrieval.splitlines()[3:]] == ["eager", "ORT", "ORT"]


def test_profiles_split_each_call(quick):
    assert {(p["tower"], p["runtime"]) for p in quick["profiles"]} == {
        (t, r) for t in ("motion", "text") for r in ("eager", "ORT fp32")
    }
    for row in quick["profiles"]:
        assert 0 < row["matmul_ms"] <= row["total_ms"]
        assert row["largest other ops (ms)"].count(",") == 2  # three operators named with their times


def test_retrieval_of_fp32_equals_eager_and_int8_is_close_but_its_own(quick):
    by_name = {r["implementation"]: r for r in quick["retrieval"]}
    assert by_name["eager"]["max_abs_diff"] == 0.0
    assert by_name["ORT fp32"]["max_abs_diff"] <= 1e-4
    assert by_name["ORT fp32"]["metrics"] == by_name["eager"]["metrics"]
    assert 0.9 < by_name["ORT int8"]["min_cosine"] < 1.0
    assert by_name["ORT int8"]["max_abs_diff"] > 1e-6
    for result in by_name.values():
        assert all(0.0 <= result["metrics"][f"{d}/R@{k}"] <= 100.0 for d in ("t2m", "m2t") for k in (1, 10))


def test_threads_are_the_librarys(quick):
    import torch

    assert quick["threads"]["torch"] == quick["threads"]["onnxruntime"] == torch.get_num_threads()
    assert all(diff <= 1e-4 for diff in quick["export"].max_abs_diff.values())


def test_time_interleaved_runs_each_call_in_turn():
    calls = []
    seconds = onnx_runtime.time_interleaved(
        {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, repeats=3, warmup=1, pause_s=0
    )
    assert calls == ["a", "b"] + ["a", "b"] * 3
    assert set(seconds) == {"a", "b"} and all(len(v) == 3 and min(v) >= 0 for v in seconds.values())

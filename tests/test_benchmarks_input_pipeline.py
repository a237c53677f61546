"""Smoke run of the input-pipeline benchmark: the three loaders must produce the same batches and every timing
must be filled in; how fast is not tested."""

import pytest

from benchmarks import input_pipeline


def test_input_pipeline_quick(results_file_unchanged):
    out = input_pipeline.main(["--quick", "--no-write"])
    assert [row["loader"] for row in out["rows"]] == list(input_pipeline.VARIANTS)
    for name, check in out["checks"].items():
        assert check["keys_equal"] and check["tokens_equal"], name
        assert check["max_abs_diff"] < input_pipeline.CHECK_TOLERANCE, name
    assert out["checks_passed"]
    for row in out["rows"]:
        assert row["produce_s"] > 0 and row["step_s"] > 0
        assert row["share"] == pytest.approx(row["produce_s"] / (row["produce_s"] + row["step_s"]))
    assert isinstance(out["target_met"], bool)

"""Smoke runs of the model benchmarks: what they time must be right (timings themselves are never asserted)."""

import pytest
import torch

from benchmarks import inference, models, plain_networks, scale_out, training_step


@pytest.fixture(scope="module")
def inference_result():
    return inference.main(["--quick", "--no-write"])


@pytest.fixture(scope="module")
def training_result():
    return training_step.main(["--quick", "--no-write"])


@pytest.fixture(scope="module")
def scale_out_result():
    return scale_out.main(["--quick", "--no-write"])


# the quick inference run (the module fixture) takes ~17 s on 2 cores; both tests that use it are slow
@pytest.mark.slow
def test_plain_forward_matches_our_embeddings(inference_result):
    check = inference_result["checks"]["quick"]
    assert check["motion_fp32"] < 1e-4
    assert check["text_fp32"] < 1e-4
    assert inference_result["check_passed"]


def test_plain_forward_comparison_can_detect_a_difference():
    """The equality check compares two computations, not one with itself: a changed weight shows up."""
    model = models.build_model("quick")
    spec, weights = plain_networks.plain_spec(model), plain_networks.plain_weights(model, copy=True)
    with torch.no_grad():
        weights["motion_model.blocks.1.mlp.fc2.weight"].mul_(1.5)
        weights["text_model.transformer.layer.1.ffn.lin2.weight"].mul_(1.5)
    diffs = inference.check_plain_forward(model, weights, spec, models.caption_tokenizer())
    assert diffs["motion_fp32"] > 1e-3
    assert diffs["text_fp32"] > 1e-3


@pytest.mark.slow
def test_inference_rows_cover_every_configuration(inference_result):
    rows = inference_result["rows"]
    configurations = {(row["tower"], row["batch"], row["dtype"]) for row in rows}
    assert configurations == {(t, b, d) for t in ("motion", "text") for b in (1, 2) for d in ("fp32", "bf16")}
    for row in rows:
        assert all(rate > 0 for rate in row["rates"].values())
        assert row["speedup"] == pytest.approx(row["rates"]["ours"] / row["rates"]["plain"])
    assert inference_result["processor"]["rate"] > 0


def test_plain_step_loss_equals_ours(training_result):
    check = training_result["check"]
    assert check["loss_diff"] < 1e-4
    assert check["loss_after_diff"] < 1e-4
    # the Adam step really changed the weights, so the second comparison is a different point
    assert abs(check["loss_after_ours"] - check["loss_ours"]) > 1e-3
    assert training_result["check_passed"]


def test_demo_breakdown_adds_up(training_result):
    demo = training_result["demo"]
    assert set(demo["phases"]) == set(training_step.PHASES)
    assert demo["step_s"] == pytest.approx(sum(demo["phases"].values()))
    assert demo["batch"] == 8 and demo["top_ops"]


def test_communication_bytes(scale_out_result):
    comm = scale_out_result["comm"]
    assert comm["global_batch"] == 8 * 32
    assert comm["gather_bytes"] == 2 * 256 * 256 * 4 == comm["gather_backward_bytes"]
    assert 150e6 < comm["parameters"] < 155e6  # ViT-B/16 + DistilBERT + heads: ~152.6 M
    assert comm["ddp_allreduce_bytes"] == comm["parameters"] * 4


def test_epoch_costs_follow_from_the_measured_costs(scale_out_result):
    cpu = scale_out_result["cpu"]
    steps = 23_384 // 32
    cpu_row = next(r for r in scale_out_result["epochs"] if r["corpus"] == "HumanML3D train" and "CPU" in r["setting"])
    assert cpu_row["epoch_s"] == pytest.approx(steps * (32 * cpu["per_sample_s"] + cpu["adam_s"]))
    gpu_row = next(
        r for r in scale_out_result["epochs"] if r["corpus"] == "10x corpus" and r["setting"].startswith("1 GPU")
    )
    assert gpu_row["epoch_s"] == pytest.approx(233_840 // 32 * 32 / 2000.0)

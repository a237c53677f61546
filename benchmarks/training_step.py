"""Samples/s and peak memory of one training step, ours vs plain PyTorch; and where the demo run's step goes.

Ours is the step of `training/train.py` without accelerate's wrapping (`benchmarks/models.py`): `model(**batch)`,
`motionpatches.training.loss.global_contrastive_loss`, backward, `torch.optim.Adam` over `train.param_groups`'s
three groups (text / motion / heads, the paper's learning rates). The plain step (`benchmarks/plain_networks.py`)
uses the plain forward over copies of the same weights, a symmetric cross-entropy written out and
`torch.optim.Adam` over the same three groups. Both run in train mode (dropout on) at the paper's size,
batch 32. Then the demo's own model (ViT-Tiny depth 6 + all-MiniLM-L6-v2 when installed) takes steps on
demo data through the real collator, timed phase by phase and profiled.

Run from the repository root:

    python -m benchmarks.training_step                     # full run, a few minutes on 2 cores
    python -m benchmarks.training_step --quick --no-write  # seconds-long smoke run
"""

import contextlib
import os
import sys
import time
from collections import defaultdict

import torch
from torch.profiler import ProfilerActivity, profile, record_function

from benchmarks.models import SIZES, build_model, make_batch, our_loss, our_optimizer, our_step
from benchmarks.plain_networks import plain_loss, plain_optimizer, plain_spec, plain_step, plain_weights
from benchmarks.results import (
    append_results,
    benchmark_parser,
    cpu_snapshot,
    format_table,
    load_note,
    measure,
    peak_rss_mb,
    start_memory_window,
)
from motionpatches.tiny import minilm_path
from motionpatches.training.batching import EpochPermutationSampler, EpochSeededRows, MotionTextCollator
from motionpatches.training.loss import global_contrastive_loss
from motionpatches.training.params import parse_args as train_args
from motionpatches.training.train import build_model_and_processor, load_data, param_groups

CHECK_TOLERANCE = 1e-4
# the lead's wall time for `accelerate launch training/train.py` (demo defaults, 370 steps) on 2026-11-21
LEAD_DEMO_WALL_S = (7 * 60 + 7, 7 * 60 + 21)
LEAD_DEMO_STEPS = 370
PHASES = ("fetch rows", "collate", "forward", "loss", "backward", "optimizer")
FULL = {
    "size": "paper",
    "batch": 32,
    "check_batch": 8,
    "warmup": 1,
    "repeat": 2,
    "demo_args": [],
    "demo_steps": 4,
    "top_ops": 8,
}
QUICK = {
    "size": "quick",
    "batch": 4,
    "check_batch": 4,
    "warmup": 1,
    "repeat": 1,
    "demo_steps": 1,
    "top_ops": 5,
    "demo_args": [
        "--text_model",
        "tiny",
        "--motion_backbone_kwargs",
        '{"embed_dim": 32, "depth": 2, "num_heads": 2}',
        "--text_config_overrides",
        '{"hidden_size": 32, "num_attention_heads": 2, "intermediate_size": 64}',
        "--projection_dim",
        "16",
        "--num_frames",
        "64",
        "--per_device_train_batch_size",
        "8",
    ],
}


# ----------------------------------------------------------------------------------------------- checks and timing
def check_same_step(model, batch: dict) -> dict:
    """Same weights and batch, dropout off: both steps must give the same loss, and the same loss after one Adam step.

    The second loss also checks the optimiser side: a different learning rate or grouping would move the
    weights differently. Leaves `model` one step further on.
    """
    weights, spec = plain_weights(model, copy=True), plain_spec(model)
    model.eval()
    ours_before = our_step(model, our_optimizer(model), batch)
    plain_before = plain_step(weights, spec, plain_optimizer(weights), batch, train=False)
    with torch.no_grad():
        ours_after = our_loss(model, batch).item()
        plain_after = plain_loss(weights, spec, batch, train=False).item()
    model.train()
    return {
        "loss_ours": ours_before,
        "loss_plain": plain_before,
        "loss_diff": abs(ours_before - plain_before),
        "loss_after_ours": ours_after,
        "loss_after_plain": plain_after,
        "loss_after_diff": abs(ours_after - plain_after),
    }


def time_steps(step, config: dict) -> dict:
    """Best step time over `repeat` steps after `warmup`, and the peak RSS above the loaded weights (grads,
    Adam state created by the first step, activations)."""
    start_mb = start_memory_window()
    seconds = measure(step, repeat=config["repeat"], warmup=config["warmup"])
    return {"seconds": seconds, "extra_mb": peak_rss_mb() - start_mb, "start_mb": start_mb}


def bench_paper_step(config: dict) -> tuple[list[dict], dict]:
    """Ours, then the plain step on a copy of the weights with our model freed, so each holds one model."""
    model = build_model(config["size"]).train()
    check = check_same_step(model, make_batch(model, config["check_batch"], seed=1))
    print(
        f"same weights and batch, dropout off: loss ours {check['loss_ours']:.6f} plain {check['loss_plain']:.6f}; "
        f"after one Adam step ours {check['loss_after_ours']:.6f} plain {check['loss_after_plain']:.6f}",
        flush=True,
    )
    batch = make_batch(model, config["batch"])
    ours = time_our_steps(model, batch, config)  # its optimizer (and Adam state) is freed on return
    spec, weights = plain_spec(model), plain_weights(model, copy=True)
    del model
    plain = time_plain_steps(weights, spec, batch, config)
    rows = [_step_row("ours", ours, config, plain), _step_row("plain", plain, config, plain)]
    return rows, check


def time_our_steps(model, batch: dict, config: dict) -> dict:
    optimizer = our_optimizer(model)
    return time_steps(lambda: our_step(model, optimizer, batch), config)


def time_plain_steps(weights: dict, spec, batch: dict, config: dict) -> dict:
    optimizer = plain_optimizer(weights)
    return time_steps(lambda: plain_step(weights, spec, optimizer, batch), config)


def _step_row(name: str, result: dict, config: dict, plain: dict) -> dict:
    rate = config["batch"] / result["seconds"]
    return {
        "step": name,
        "model": SIZES[config["size"]]["label"],
        "batch": config["batch"],
        "timed steps": f"{config['repeat']} (+{config['warmup']} warm-up)",
        "s/step": f"{result['seconds']:.2f}",
        "samples/s": f"{rate:.2f}",
        "vs plain": f"{plain['seconds'] / result['seconds']:.2f}x",
        "peak MB over weights": f"{result['extra_mb']:,.0f}",
        "memory vs plain": f"{result['extra_mb'] / plain['extra_mb']:.2f}x",
        "seconds": result["seconds"],
        "samples_per_s": rate,
        "extra_mb": result["extra_mb"],
    }


# ----------------------------------------------------------------------------------------------- the demo step
class PhaseTimer:
    """Wall time per phase of a step, also labelled for torch.profiler."""

    def __init__(self):
        self.seconds = defaultdict(list)

    @contextlib.contextmanager
    def __call__(self, phase: str):
        start = time.perf_counter()
        with record_function(phase):
            yield
        self.seconds[phase].append(time.perf_counter() - start)


def demo_setup(extra_args: list) -> dict:
    """train.py's own demo model, processor, rows, collator and optimizer, on load_demo_dataset(64, 16, 16)."""
    args = train_args(["--demo_sizes", "64,16,16", *extra_args])
    data = load_data(args)
    model, processor = build_model_and_processor(args, data)
    rows = EpochSeededRows(data["train"], args.seed)
    order = list(EpochPermutationSampler(len(rows), args.seed))
    size = args.per_device_train_batch_size
    return {
        "args": args,
        "model": model.train(),
        "rows": rows,
        "collator": MotionTextCollator(processor, train=True),
        "optimizer": torch.optim.Adam(param_groups(model, args)),
        "batches": [order[i : i + size] for i in range(0, len(order) - size + 1, size)],  # drop_last, as train.py
        # train.py's rule for --text_model auto
        "text_model": args.text_model if args.text_model != "auto" else "minilm" if minilm_path() else "tiny",
    }


def demo_step(demo: dict, indices: list, timer: PhaseTimer) -> None:
    model, optimizer = demo["model"], demo["optimizer"]
    with timer("fetch rows"):
        rows = [demo["rows"][i] for i in indices]
    with timer("collate"):
        batch = demo["collator"](rows)
    with timer("forward"):
        out = model(**batch)
    with timer("loss"):
        loss = global_contrastive_loss(out.motion_embeds, out.text_embeds, model.logit_scale)
    with timer("backward"):
        loss.backward()
    with timer("optimizer"):
        optimizer.step()
        optimizer.zero_grad()


def bench_demo(config: dict) -> dict:
    """Phase times (mean over timed steps after one warm-up step) and the top operators of one profiled step."""
    demo = demo_setup(config["demo_args"])
    batches = demo["batches"]
    demo_step(demo, batches[0], PhaseTimer())
    timer = PhaseTimer()
    for step in range(config["demo_steps"]):
        demo_step(demo, batches[(step + 1) % len(batches)], timer)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        demo_step(demo, batches[0], PhaseTimer())
    phases = {phase: sum(timer.seconds[phase]) / len(timer.seconds[phase]) for phase in PHASES}
    ops = [e for e in prof.key_averages() if e.key not in PHASES]
    profiled_us = sum(e.self_cpu_time_total for e in ops)
    top = sorted(ops, key=lambda e: e.self_cpu_time_total, reverse=True)[: config["top_ops"]]
    return {
        "batch": len(batches[0]),
        "steps": config["demo_steps"],
        "phases": phases,
        "step_s": sum(phases.values()),
        "parameters": sum(p.numel() for p in demo["model"].parameters()),
        "model": f"{demo['args'].motion_backbone} {demo['args'].motion_backbone_kwargs} + {demo['text_model']} text model",
        "top_ops": [
            {
                "op": e.key,
                "calls": e.count,
                "self ms": f"{e.self_cpu_time_total / 1e3:,.1f}",
                "% of profiled step": f"{100 * e.self_cpu_time_total / profiled_us:.1f}",
            }
            for e in top
        ],
    }


# ----------------------------------------------------------------------------------------------- report
def parse_args(argv):
    parser = benchmark_parser(__doc__)
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    """Run the benchmark; returns the step rows, the equality check, the demo breakdown and the verdicts."""
    args = parse_args(argv)
    torch.set_num_threads(os.cpu_count())
    config = QUICK if args.quick else FULL
    started = cpu_snapshot()
    rows, check = bench_paper_step(config)
    demo = bench_demo(config)
    ours, plain = rows
    verdicts = {
        "no_slower": ours["seconds"] <= plain["seconds"],
        "no_more_memory": ours["extra_mb"] <= plain["extra_mb"],
    }
    table = tables(rows, demo)
    notes = describe(rows, check, demo, verdicts, config) + "\n" + load_note(started)
    print(f"\n{table}\n\n{notes}")
    if not args.no_write:
        title = "Training step: MotionTextModel + global_contrastive_loss + Adam vs a plain PyTorch step"
        append_results(title, table, notes)
    return {
        "rows": rows,
        "check": check,
        "demo": demo,
        "verdicts": verdicts,
        "table": table,
        "notes": notes,
        "check_passed": check["loss_diff"] < CHECK_TOLERANCE and check["loss_after_diff"] < CHECK_TOLERANCE,
    }


def tables(rows: list, demo: dict) -> str:
    step_columns = [
        "step",
        "model",
        "batch",
        "timed steps",
        "s/step",
        "samples/s",
        "vs plain",
        "peak MB over weights",
        "memory vs plain",
    ]
    total = demo["step_s"]
    phase_rows = [
        {"phase": phase, "ms/step": f"{1e3 * s:,.1f}", "% of step": f"{100 * s / total:.1f}"}
        for phase, s in demo["phases"].items()
    ]
    phase_rows.append({"phase": "total", "ms/step": f"{1e3 * total:,.1f}", "% of step": "100.0"})
    return (
        f"one training step, train mode, CPU\n{format_table(rows, step_columns)}\n\n"
        f"demo step ({demo['model']}, {demo['parameters'] / 1e6:.1f}M parameters, batch {demo['batch']}), "
        f"mean of {demo['steps']} steps after 1 warm-up\n{format_table(phase_rows, ['phase', 'ms/step', '% of step'])}\n\n"
        f"top operators of one profiled demo step (self CPU time)\n"
        f"{format_table(demo['top_ops'], ['op', 'calls', 'self ms', '% of profiled step'])}"
    )


def describe(rows, check, demo, verdicts, config) -> str:
    ours, plain = rows
    step_s, low, high = demo["step_s"], *LEAD_DEMO_WALL_S
    derived = LEAD_DEMO_STEPS * step_s
    collate_share = demo["phases"]["fetch rows"] + demo["phases"]["collate"]
    return "\n".join(
        [
            f"- Target, no slower than the plain step: {'met' if verdicts['no_slower'] else 'not met'} "
            f"(ours {ours['s/step']} s/step vs plain {plain['s/step']} s/step, {ours['vs plain']} the plain speed).",
            f"- Target, no more memory than the plain step: {'met' if verdicts['no_more_memory'] else 'not met'} "
            f"(ours {ours['peak MB over weights']} MB vs plain {plain['peak MB over weights']} MB over the loaded weights, "
            f"{ours['memory vs plain']}).",
            f"- Same computation: with the same weights and batch of {config['check_batch']} and dropout off, loss ours "
            f"{check['loss_ours']:.6f} vs plain {check['loss_plain']:.6f} (diff {check['loss_diff']:.1e}); after one Adam step "
            f"each, {check['loss_after_ours']:.6f} vs {check['loss_after_plain']:.6f} (diff {check['loss_after_diff']:.1e}).",
            "- Ours: `model(**batch)` -> `global_contrastive_loss(out.motion_embeds, out.text_embeds, model.logit_scale)` -> "
            "`backward()` -> `Adam(train.param_groups(...))` step (text 1e-5, motion 1e-4, heads 1e-3) -> `zero_grad()`. "
            "Plain: benchmarks/plain_networks.py's plain forward over a copy of the weights (explicit attention, dropout at the "
            "same places), normalise, `exp(logit_scale) * text @ motion.T`, mean of the two cross-entropies, `backward()`, "
            "`torch.optim.Adam` over the same three groups. Random weights; random motion images; word-level captions.",
            "- s/step: best of the timed steps (wall time). Peak MB over weights: peak RSS during warm-up and timed steps "
            "minus RSS before them (peak mark reset, freed heap trimmed), i.e. gradients + Adam state + activations; "
            "each step ran with only its own copy of the weights in memory.",
            f"- Demo step: train.py's own `build_model_and_processor` on `load_demo_dataset(64, 16, 16)` (via train.py's "
            f"`load_data`), rows through `EpochSeededRows` and `MotionTextCollator(train=True)` as the DataLoader does "
            f"(in the main process, as train.py runs it with no workers). Collation (fetch + collate) is "
            f"{100 * collate_share / step_s:.1f}% of the step; {demo['batch'] / step_s:.1f} samples/s "
            f"({demo['batch'] / (step_s - collate_share):.1f} without collation). The profiled step carries profiler overhead; "
            "its operator shares are what matters.",
            f"- Demo run wall time: 7 min 7 s - 7 min 21 s for `accelerate launch training/train.py` ({LEAD_DEMO_STEPS} "
            "steps, 1200/150/150 motions, validation every epoch), measured by the lead on 2026-11-21, not by this script. "
            f"Derived here: {LEAD_DEMO_STEPS} x this script's {step_s:.2f} s/step = {derived:.0f} s, i.e. "
            f"{100 * derived / high:.0f}-{100 * derived / low:.0f}% of that wall time would be training steps; the rest "
            "(data generation, validation, test, saving) is not measured here.",
        ]
    )


if __name__ == "__main__":
    main(sys.argv[1:])

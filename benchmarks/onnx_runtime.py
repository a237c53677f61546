"""Motions and texts per second through ONNX Runtime's fp32 and int8 towers against PyTorch eager, and what int8
does to retrieval on the demo's test split.

What is timed, in one run on the same inputs (the first 64 demo motions of a fixed seed through the model's
processor, and their first captions, padded to the longest; batch 1 is the first motion and caption alone):

- eager: `model.get_motion_features(motion_values).pooler_output` / `model.get_text_features(input_ids,
  attention_mask).pooler_output` under `torch.inference_mode()`;
- ORT fp32 / ORT int8: the same calls on `OnnxMotionTextModel` (motionpatches.onnx_inference) over the towers
  `export_onnx` wrote (`torch.onnx.export(dynamo=True)`; int8 by `onnxruntime.quantization.quantize_dynamic`).

Threads as the library sets them: `configure_threads()` for PyTorch, and ONNX Runtime's intra-op threads equal to
PyTorch's. Each call is warmed up, then the three implementations take turns for `repeats` rounds (so that a
change in the machine's load hits all three alike) and the median of each is reported. The goal is ORT fp32 >=
1.5x eager at batch 64, per tower; to explain a ratio, one batch-64 call of each is profiled (PyTorch's profiler,
ONNX Runtime's own) and its time split into matrix products and the rest.

Retrieval: the demo dataset's test split (150 motions, `load_named_dataset("demo")`, as `training/eval_retrieval.py`
loads it) embedded by each implementation as `training/evaluation.py` does (first caption, first window), then
`retrieval_metrics(..., protocol="all")`; R@1 and R@10 both ways.

Run from the repository root:

    python -m benchmarks.onnx_runtime                     # the demo model, outputs/motionpatches-demo (~3 minutes)
    python -m benchmarks.onnx_runtime --quick --no-write  # a tiny random model, small batches: a smoke run
"""

import json
import os
import sys
import tempfile
import time

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils.data import DataLoader

from benchmarks.results import REPO_ROOT, append_results, benchmark_parser, cpu_snapshot, format_table, load_note
from motionpatches import MotionPatchProcessor, MotionTextModel
from motionpatches.loading import load_model_and_processor
from motionpatches.onnx_export import export_onnx
from motionpatches.onnx_inference import OnnxMotionTextModel, import_onnxruntime
from motionpatches.retrieval import retrieval_metrics
from motionpatches.threads import configure_threads
from motionpatches.tiny import build_word_tokenizer, tiny_config
from motionpatches.training.batching import MotionTextCollator
from motionpatches.training.data.catalog import load_named_dataset
from motionpatches.training.data.demo import generate_demo_motions, load_demo_dataset
from motionpatches.training.skeleton_transfer import processor_for_dataset

TARGET_SPEEDUP = 1.5
IMPLEMENTATIONS = ("eager", "ORT fp32", "ORT int8")
DEMO_MODEL = REPO_ROOT / "outputs" / "motionpatches-demo"
SPEED_SEED = 1
PROFILED_CALLS = 3
FULL = {"batches": (1, 64), "repeats": {1: 30, 64: 10}, "eval_batch": 64}
QUICK = {"batches": (1, 8), "repeats": {1: 3, 8: 2}, "eval_batch": 16, "demo_sizes": (8, 8, 24)}
# where each runtime's matrix products are counted (their share of a call bounds what any runtime can gain);
# PyTorch's fused attention kernel is counted whole (its softmax included), ONNX Runtime runs attention as ops
TORCH_MATMUL_OPS = {"aten::addmm", "aten::mm", "aten::bmm", "aten::_scaled_dot_product_flash_attention_for_cpu"}
ORT_MATMUL_OPS = {
    "MatMul",
    "Gemm",
    "FusedMatMul",
    "FusedGemm",
    "MatMulInteger",
    "DynamicQuantizeMatMul",
    "MatMulIntegerToFloat",
    "Attention",
    "MultiHeadAttention",
}


# ----------------------------------------------------------------------------------------------- models and inputs
def tiny_model_and_processor(captions: list[str]):
    """A random tiny model for the smoke run (nothing downloaded; the trained demo model may be absent)."""
    tokenizer = build_word_tokenizer(captions)
    torch.manual_seed(0)
    model = MotionTextModel(tiny_config(len(tokenizer), hidden_size=64, projection_dim=32)).eval()
    return model, MotionPatchProcessor(tokenizer=tokenizer, skeleton="humanml3d")


def speed_inputs(processor, batches) -> dict:
    """{(tower, batch): keyword arguments} from demo motions and their first captions."""
    motions = generate_demo_motions(max(batches), seed=SPEED_SEED)
    inputs = {}
    for batch in batches:
        rows = motions[:batch]
        encoded = processor(
            text=[m["captions"][0] for m in rows],
            motions=[m["motion"] for m in rows],
            crop="first",
            return_tensors="pt",
        )
        inputs["motion", batch] = {"motion_values": encoded["motion_values"]}
        inputs["text", batch] = {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}
    return inputs


def feature_call(model, tower: str, kwargs: dict):
    method = model.get_motion_features if tower == "motion" else model.get_text_features
    if isinstance(model, torch.nn.Module):

        def call():
            with torch.inference_mode():
                return method(**kwargs).pooler_output

        return call
    return lambda: method(**kwargs).pooler_output


# ----------------------------------------------------------------------------------------------- speed
def time_interleaved(calls: dict, repeats: int, warmup: int = 2, pause_s: float = 0.02) -> dict:
    """{name: [seconds of each round]} of `repeats` rounds in which every call runs once, in turn, after `warmup`
    calls each.

    A pause precedes each timed call: both runtimes' worker threads spin for a moment after a call returns (ONNX
    Runtime's pool, OpenMP's), and would otherwise take the cores from the next implementation's first operators."""
    for call in calls.values():
        for _ in range(warmup):
            call()
    seconds = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            time.sleep(pause_s)
            start = time.perf_counter()
            call()
            seconds[name].append(time.perf_counter() - start)
    return seconds


def others_cpu(start: dict) -> dict:
    """CPU-seconds other processes used since `start = cpu_snapshot()`, and the wall time."""
    end = cpu_snapshot()
    others = max(0.0, (end["busy"] - start["busy"]) - (end["own"] - start["own"]))
    return {"others_s": others, "wall_s": end["wall"] - start["wall"]}


def bench_speed(models: dict, inputs: dict, config: dict) -> list[dict]:
    rows = []
    largest = max(config["batches"])
    for tower in ("motion", "text"):
        for batch in config["batches"]:
            kwargs = inputs[tower, batch]
            calls = {name: feature_call(model, tower, kwargs) for name, model in models.items()}
            seconds = time_interleaved(calls, config["repeats"][batch])
            rates = {name: batch / float(np.median(values)) for name, values in seconds.items()}
            best = {name: batch / min(values) for name, values in seconds.items()}
            row = {
                "tower": tower,
                "batch": batch,
                "unit": "motions/s" if tower == "motion" else "texts/s",
                "rates": rates,
                "best_rates": best,
                "repeats": config["repeats"][batch],
                "fp32_ratio": rates["ORT fp32"] / rates["eager"],
                "int8_ratio": rates["ORT int8"] / rates["eager"],
                "goal_met": rates["ORT fp32"] / rates["eager"] >= TARGET_SPEEDUP if batch == largest else None,
            }
            if tower == "text":
                row["tokens"] = int(kwargs["input_ids"].shape[1])
            rows.append(row)
            print(speed_table([row]).splitlines()[-1], flush=True)
    return rows


SPEED_COLUMNS = ["tower", "batch", "unit", "repeats", "eager", "ORT fp32", "ORT int8", "fp32/eager", "int8/eager"]


def speed_table(rows: list[dict]) -> str:
    goal = f"goal fp32 >= {TARGET_SPEEDUP}x"
    cells = []
    for row in rows:
        verdict = {None: f"n/a (batch {row['batch']})", True: "met", False: "NOT met"}[row["goal_met"]]
        cells.append(
            {
                "tower": row["tower"],
                "batch": row["batch"],
                "unit": row["unit"],
                "repeats": row["repeats"],
                **{name: rate_text(row["rates"][name]) for name in IMPLEMENTATIONS},
                "fp32/eager": f"{row['fp32_ratio']:.2f}x",
                "int8/eager": f"{row['int8_ratio']:.2f}x",
                goal: verdict,
            }
        )
    return format_table(cells, SPEED_COLUMNS + [goal])


def rate_text(value: float) -> str:
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


# ----------------------------------------------------------------------------------------------- where time goes
def torch_profile(call) -> dict:
    """Milliseconds of one call (operators' self times summed) and of its matrix products: the least disturbed
    (smallest total) of PROFILED_CALLS profiled calls."""
    call()
    splits = []
    for _ in range(PROFILED_CALLS):
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            call()
        times = {e.key: e.self_cpu_time_total / 1e3 for e in prof.key_averages()}
        splits.append(split_times(times, TORCH_MATMUL_OPS))
    return min(splits, key=lambda split: split["total_ms"])


def ort_profile(path: str, feed: dict, threads: int, folder: str) -> dict:
    """The same split for an ONNX Runtime session, from its own profile (kernel times of each node)."""
    ort = import_onnxruntime()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.enable_profiling = True
    options.profile_file_prefix = os.path.join(folder, "ort_profile")
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    runs = 1 + PROFILED_CALLS  # a warm-up, as on the torch side
    for _ in range(runs):
        session.run(None, feed)
    with open(session.end_profiling()) as f:
        events = json.load(f)
    kernels = [e for e in events if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time")]
    per_run = len(kernels) // runs  # every run executes the same nodes, in order
    splits = []
    for run in range(1, runs):
        times = {}
        for event in kernels[run * per_run : (run + 1) * per_run]:
            op = event["args"].get("op_name", "?")
            times[op] = times.get(op, 0.0) + event["dur"] / 1e3
        splits.append(split_times(times, ORT_MATMUL_OPS))
    return min(splits, key=lambda split: split["total_ms"])


def split_times(times: dict, matmul_ops: set) -> dict:
    """{op: ms} -> total, matrix products, and the three largest other operators."""
    others = sorted(((ms, op) for op, ms in times.items() if op not in matmul_ops), reverse=True)[:3]
    return {
        "total_ms": sum(times.values()),
        "matmul_ms": sum(ms for op, ms in times.items() if op in matmul_ops),
        "top_other": ", ".join(f"{op.removeprefix('aten::')} {ms:,.1f}" for ms, op in others),
    }


def profile_towers(model, onnx_folder: str, inputs: dict, batch: int, threads: int, folder: str) -> list[dict]:
    rows = []
    onnx_files = {"motion": "motion_tower.onnx", "text": "text_tower.onnx"}
    for tower in ("motion", "text"):
        kwargs = inputs[tower, batch]
        feed = {
            name: value.numpy().astype(np.float32 if tower == "motion" else np.int64) for name, value in kwargs.items()
        }
        for name, measured in (
            ("eager", torch_profile(feature_call(model, tower, kwargs))),
            ("ORT fp32", ort_profile(os.path.join(onnx_folder, onnx_files[tower]), feed, threads, folder)),
        ):
            rest = measured["total_ms"] - measured["matmul_ms"]
            rows.append(
                {
                    "tower": tower,
                    "batch": batch,
                    "runtime": name,
                    "op ms": f"{measured['total_ms']:,.1f}",
                    "matmul ms": f"{measured['matmul_ms']:,.1f}",
                    "matmul %": f"{100 * measured['matmul_ms'] / measured['total_ms']:.0f}",
                    "other ms": f"{rest:,.1f}",
                    "largest other ops (ms)": measured["top_other"],
                    **{key: measured[key] for key in ("total_ms", "matmul_ms")},
                }
            )
    return rows


PROFILE_COLUMNS = ["tower", "batch", "runtime", "op ms", "matmul ms", "matmul %", "other ms", "largest other ops (ms)"]


# ----------------------------------------------------------------------------------------------- retrieval
def embed_rows(model, processor, rows, batch_size: int) -> dict:
    """Normalised text and motion embeddings of the rows' first captions and first windows (training/evaluation.py's
    embed_split, through the feature API so that every implementation runs the same calls)."""
    loader = DataLoader(
        rows.with_format("numpy", columns=["motion"], output_all_columns=True),
        batch_size=batch_size,
        collate_fn=MotionTextCollator(processor, train=False),
    )
    texts, motions = [], []
    for batch in loader:
        text = feature_call(model, "text", {k: batch[k] for k in ("input_ids", "attention_mask")})()
        motion = feature_call(model, "motion", {"motion_values": batch["motion_values"]})()
        texts.append(torch.nn.functional.normalize(text.float(), dim=-1))
        motions.append(torch.nn.functional.normalize(motion.float(), dim=-1))
    return {"text_embeds": torch.cat(texts).numpy(), "motion_embeds": torch.cat(motions).numpy()}


def bench_retrieval(models: dict, processor, rows, batch_size: int) -> list[dict]:
    captions = [c[0] for c in rows["captions"]]
    embedded = {name: embed_rows(model, processor, rows, batch_size) for name, model in models.items()}
    reference = embedded["eager"]
    results = []
    for name, embeddings in embedded.items():
        metrics = retrieval_metrics(embeddings["text_embeds"], embeddings["motion_embeds"], "all", captions=captions)
        cosines = np.concatenate(
            [(embeddings[key] * reference[key]).sum(axis=1) for key in ("text_embeds", "motion_embeds")]
        )
        diff = max(float(np.abs(embeddings[key] - reference[key]).max()) for key in ("text_embeds", "motion_embeds"))
        results.append(
            {"implementation": name, "metrics": metrics, "max_abs_diff": diff, "min_cosine": float(cosines.min())}
        )
    return results


RETRIEVAL_COLUMNS = [
    "implementation",
    "t2m R@1",
    "t2m R@10",
    "m2t R@1",
    "m2t R@10",
    "max |diff| vs eager",
    "min cos vs eager",
]


def retrieval_table(results: list[dict]) -> str:
    cells = [
        {
            "implementation": r["implementation"],
            **{f"{d} R@{k}": f"{r['metrics'][f'{d}/R@{k}']:.2f}" for d in ("t2m", "m2t") for k in (1, 10)},
            "max |diff| vs eager": f"{r['max_abs_diff']:.1e}",
            "min cos vs eager": f"{r['min_cosine']:.5f}",
        }
        for r in results
    ]
    return format_table(cells, RETRIEVAL_COLUMNS)


# ----------------------------------------------------------------------------------------------- the run
def load_models(args, config: dict, folder: str):
    """(torch model, processor, description, test rows) of the run."""
    if args.quick:
        data = load_demo_dataset(*config["demo_sizes"], seed=0)
        model, processor = tiny_model_and_processor([c for row in data["test"]["captions"] for c in row])
        return model, processor, "a random tiny model (ViT 2x64 + BERT 2x64, 32-d)", data["test"]
    if not os.path.isdir(args.model):
        raise SystemExit(
            f"error: no model at {args.model}; train the demo model first (README, 'Two commands'), or give --model"
        )
    model, processor = load_model_and_processor(args.model)
    data, skeleton = load_named_dataset("demo")
    return (
        model,
        processor_for_dataset(processor, skeleton, data),
        f"{os.path.relpath(args.model, REPO_ROOT)}",
        data["test"],
    )


def parse_args(argv):
    parser = benchmark_parser(__doc__)
    parser.add_argument("--model", default=str(DEMO_MODEL), help="saved model folder (default: the trained demo)")
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    config = QUICK if args.quick else FULL
    started = cpu_snapshot()
    threads = configure_threads()
    with tempfile.TemporaryDirectory(prefix="onnx-benchmark-") as folder:
        model, processor, described, test_rows = load_models(args, config, folder)
        begin = time.perf_counter()
        exported = export_onnx(model, processor, os.path.join(folder, "export"), int8=True)
        export_s = time.perf_counter() - begin
        sizes = {key: os.path.getsize(os.path.join(exported.folder, name)) for key, name in exported.files.items()}
        with open(os.path.join(exported.folder, "onnx_export.json")) as f:
            opset = json.load(f)["exporter"]["opset"]
        models = {
            "eager": model,
            "ORT fp32": OnnxMotionTextModel(exported.folder),
            "ORT int8": OnnxMotionTextModel(exported.folder, int8=True),
        }
        ort_threads = models["ORT fp32"].num_threads
        inputs = speed_inputs(processor, config["batches"])
        timing_started = cpu_snapshot()
        speed = bench_speed(models, inputs, config)
        timing_load = others_cpu(timing_started)
        profiles = profile_towers(model, exported.folder, inputs, max(config["batches"]), ort_threads, folder)
        retrieval = bench_retrieval(models, processor, test_rows, config["eval_batch"])
    table = "\n\n".join(
        [
            speed_table(speed),
            f"where one batch-{max(config['batches'])} call spends its time (operators' self time, least disturbed of {PROFILED_CALLS} profiled calls)\n"
            + format_table(profiles, PROFILE_COLUMNS),
            f"retrieval on the demo test split ({len(test_rows)} motions, protocol 'all')\n"
            + retrieval_table(retrieval),
        ]
    )
    run = {
        "export_s": export_s,
        "sizes": sizes,
        "opset": opset,
        "model": described,
        "threads": threads,
        "test_motions": len(test_rows),
        "timing_load": timing_load,
    }
    notes = describe(speed, profiles, retrieval, exported, run, ort_threads, inputs)
    notes += "\n" + load_note(started)
    print(f"\n{table}\n\n{notes}")
    if not args.no_write:
        append_results("ONNX Runtime: fp32 and int8 towers vs PyTorch eager", table, notes)
    return {
        "speed": speed,
        "profiles": profiles,
        "retrieval": retrieval,
        "export": exported,
        "threads": {"torch": threads, "onnxruntime": ort_threads},
        "opset": opset,
        "table": table,
        "notes": notes,
    }


def unmet_cause(row: dict, eager: dict, ort: dict) -> str:
    """Why a tower missed the goal, from its profiles: how far ONNX Runtime could get at most."""
    share = eager["matmul_ms"] / eager["total_ms"]
    bound = eager["total_ms"] / ort["matmul_ms"]  # ORT with no time at all outside its matrix products
    text = (
        f" {row['tower'].capitalize()} NOT met ({row['fp32_ratio']:.2f}x): matrix products are {100 * share:.0f}% of "
        f"eager's call and ORT runs them {eager['matmul_ms'] / ort['matmul_ms']:.2f}x as fast (float32 GEMMs in both, "
        f"MLAS against PyTorch's; PyTorch's count includes its fused attention kernel); ORT with no time at all outside them would be {bound:.2f}x eager"
    )
    if bound < TARGET_SPEEDUP:
        return text + f", so {TARGET_SPEEDUP}x is out of reach of fp32 ONNX Runtime on this tower."
    return (
        text
        + f": ORT's operators outside the matrix products ({ort['total_ms'] - ort['matmul_ms']:,.1f} ms) hold it back."
    )


def describe(speed, profiles, retrieval, exported, run: dict, ort_threads: int, inputs: dict) -> str:
    import onnxruntime

    largest = max(row["batch"] for row in speed)
    goal_rows = [row for row in speed if row["goal_met"] is not None]
    verdicts = []
    for row in goal_rows:
        verdict = "met" if row["goal_met"] else "NOT met"
        verdicts.append(f"{row['tower']} tower {verdict} ({row['fp32_ratio']:.2f}x)")
    profile = {(p["tower"], p["runtime"]): p for p in profiles}
    causes = []
    for row in goal_rows:
        eager, ort = profile[row["tower"], "eager"], profile[row["tower"], "ORT fp32"]
        causes.append(
            f"{row['tower']}: matrix products {eager['matmul_ms']:,.1f} ms eager vs {ort['matmul_ms']:,.1f} ms ORT "
            f"({eager['matmul_ms'] / max(ort['matmul_ms'], 1e-9):.2f}x), everything else "
            f"{eager['total_ms'] - eager['matmul_ms']:,.1f} ms vs {ort['total_ms'] - ort['matmul_ms']:,.1f} ms "
            f"({(eager['total_ms'] - eager['matmul_ms']) / max(ort['total_ms'] - ort['matmul_ms'], 1e-9):.2f}x)"
        )
    unmet = [row for row in goal_rows if not row["goal_met"]]
    eager_metrics = next(r for r in retrieval if r["implementation"] == "eager")["metrics"]
    int8_metrics = next(r for r in retrieval if r["implementation"] == "ORT int8")["metrics"]
    deltas = ", ".join(
        f"{d} R@{k} {int8_metrics[f'{d}/R@{k}'] - eager_metrics[f'{d}/R@{k}']:+.2f}"
        for d in ("t2m", "m2t")
        for k in (1, 10)
    )
    tokens = inputs["text", largest]["input_ids"].shape[1]
    lines = [
        f"- Goal: ORT fp32 >= {TARGET_SPEEDUP}x PyTorch eager at batch {largest}: " + "; ".join(verdicts) + ".",
        "- Where the time goes (profiles, batch "
        f"{largest}; operators' self times of the least disturbed of {PROFILED_CALLS} profiled calls, which sum to a "
        "little less than the wall time): "
        + "; ".join(causes)
        + "."
        + "".join(unmet_cause(row, profile[row["tower"], "eager"], profile[row["tower"], "ORT fp32"]) for row in unmet),
        f"- Model: {run['model']}. Exported by `export_onnx` (torch.onnx.export, dynamo exporter, opset "
        f"{run['opset']}) in {run['export_s']:.0f} s, int8 included; validated against PyTorch at batches 1 and 5 "
        f"(traced at 2): max abs diff motion {exported.max_abs_diff['motion']:.1e}, text "
        f"{exported.max_abs_diff['text']:.1e} (must be <= 1e-4). Files: "
        + ", ".join(f"{key} {size / 2**20:,.1f} MiB" for key, size in run["sizes"].items())
        + ". int8: `quantize_dynamic`, QInt8 weights per output channel for MatMul and Gemm; the text tower's "
        "embedding table stays float32.",
        f"- Retrieval: int8 minus eager: {deltas} (percentage points; one of the {run['test_motions']} test motions is {100 / run['test_motions']:.2f} points). "
        "ORT fp32 gives eager's embeddings to the max |diff| above, so its metrics are eager's.",
        f"- Inputs: {largest} demo motions (seed {SPEED_SEED}) through the model's processor (first 224-frame window) "
        f"and their first captions, {tokens} tokens padded to the longest; batch 1 is the first motion and caption alone.",
        f"- Threads: PyTorch {run['threads']} (`configure_threads()`, the library's default), ONNX Runtime {ort_threads} intra-op "
        f"threads (1 inter-op, sequential), onnxruntime {onnxruntime.__version__}, CPUExecutionProvider.",
        "- Best single call of the rounds (the least disturbed by other processes) at batch "
        f"{largest}: "
        + "; ".join(
            f"{row['tower']} ORT fp32 {row['best_rates']['ORT fp32'] / row['best_rates']['eager']:.2f}x eager, int8 "
            f"{row['best_rates']['ORT int8'] / row['best_rates']['eager']:.2f}x"
            for row in goal_rows
        )
        + f". While the calls were timed ({run['timing_load']['wall_s']:.0f} s), other processes used "
        f"{run['timing_load']['others_s']:.0f} CPU-seconds ({100 * run['timing_load']['others_s'] / run['timing_load']['wall_s']:.0f}% "
        "of one core): PyTorch's OpenMP threads slow down far more than ONNX Runtime's pool when a core is taken, so "
        "only a run with ~0% here measures the runtimes rather than the contention.",
        "- Rates: batch / median wall time over the rounds ('repeats') in which eager, ORT fp32 and ORT int8 ran in turn, "
        "after 2 warm-up calls each, with a 20 ms pause before every timed call (so that neither runtime's spinning "
        "worker threads overlap the other's call).",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main(sys.argv[1:])

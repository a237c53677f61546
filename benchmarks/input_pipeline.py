"""Share of a paper-size training step spent producing its batch: train.py's loader vs per-sample loops.

Ours is the loader `training/train.py` trains with (`build_train_batches`: `EpochSeededRows`, the epoch's
permutation, `MotionTextCollator(train=True)`, which draws a caption and a window per motion and calls
`MotionPatchProcessor` once on the whole batch), in the main process as train.py runs it. The comparison is
a dataset class like the reference's: each item preprocessed alone in `__getitem__` (z-score, one
`cv2.resize` per frame and chain over the whole motion, then a random 224-frame window or zero padding),
stacked by DataLoader's default collate and tokenized per batch; and the same per-sample loop calling our
extractor on one motion at a time. All three draw the same captions and windows, so they produce the same
batch (checked). Each loader feeds a paper-size model (ViT-B/16 on the 224x80 motion image + a
DistilBERT-size text tower, random weights) at batch 32, and the loop times, step by step, producing the
batch (`next(loader)`) and the training step (forward, contrastive loss, backward, Adam).

Run from the repository root:

    python -m benchmarks.input_pipeline                     # full run, a few minutes on 2 cores
    python -m benchmarks.input_pipeline --quick --no-write  # seconds-long smoke run
"""

import os
import sys
import time

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, default_collate
from transformers import AutoTokenizer

from benchmarks.models import SIZES, build_model, our_optimizer, our_step
from benchmarks.preprocessing import reference_motion_values
from benchmarks.results import append_results, benchmark_parser, cpu_snapshot, format_table, load_note
from motionpatches import MotionPatchProcessor
from motionpatches.tiny import build_word_tokenizer, minilm_path
from motionpatches.training.batching import EpochPermutationSampler, EpochSeededRows
from motionpatches.training.data.demo import load_demo_dataset
from motionpatches.training.params import parse_args as train_args
from motionpatches.training.train import build_train_batches

TARGET_SHARE = 0.05
CHECK_TOLERANCE = 1e-5
# a GPU step at this size, as benchmarks/scale_out.py ASSUMES it (2,000 samples/s per GPU), for a derived note
ASSUMED_GPU_SAMPLES_PER_S = 2000.0
VARIANTS = ("ours", "per-sample, reference recipe", "per-sample, our extractor")
FULL = {"size": "paper", "batch": 32, "warmup": 1, "steps": 3, "rows": 160, "seed": 0, "phase_batches": 4}
QUICK = {"size": "quick", "batch": 4, "warmup": 1, "steps": 1, "rows": 12, "seed": 0, "phase_batches": 2}


# ----------------------------------------------------------------------------------------------- data and loaders
def build_tokenizer(rows):
    """The DistilBERT / BERT uncased WordPiece vocabulary (all-MiniLM-L6-v2's, installed with the `demo` extra)
    when available, else a word-level tokenizer over the rows' captions: nothing is downloaded."""
    folder = minilm_path()
    if folder:
        return AutoTokenizer.from_pretrained(folder)
    return build_word_tokenizer(caption for captions in rows["captions"] for caption in captions)


def build_processor(rows, model) -> MotionPatchProcessor:
    """train.py's processor for this model (reference part order, so the reference recipe's batch is the same
    image), with statistics fitted on the training rows as train.py does."""
    processor = MotionPatchProcessor(
        tokenizer=build_tokenizer(rows),
        skeleton="humanml3d",
        part_order="reference",
        num_frames=model.config.motion_config.num_frames,
        points_per_part=model.config.motion_config.patch_size,
    )
    processor.feature_extractor.fit_statistics(rows.with_format("numpy")["motion"])
    return processor


def draw(row) -> tuple[np.random.Generator, str]:
    """The caption and window generator `MotionTextCollator(train=True)` uses for this row, in its order."""
    rng = np.random.default_rng(list(row["draw_seed"]))
    return rng, row["captions"][rng.integers(len(row["captions"]))]


class ReferenceRecipeRows(Dataset):
    """Like the reference's dataset class: one motion preprocessed per `__getitem__`, every frame through a
    `cv2.resize` per chain, then the window; DataLoader's default collate stacks the items."""

    def __init__(self, rows: EpochSeededRows, processor: MotionPatchProcessor):
        self.rows = rows
        extractor = processor.feature_extractor
        self.mean, self.std, self.num_frames = extractor.mean, extractor.std, extractor.num_frames

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, index):
        row = self.rows[index]
        rng, caption = draw(row)
        motion = row["motion"]
        # the window start MotionPatchFeatureExtractor draws for crop="random" from this generator
        start = int(rng.integers(0, len(motion) - self.num_frames + 1)) if len(motion) > self.num_frames else 0
        values = reference_motion_values(motion, self.mean, self.std, start=start)
        return torch.from_numpy(np.ascontiguousarray(values)), caption


class ExtractorPerSampleRows(ReferenceRecipeRows):
    """The same per-sample loop, calling our extractor on one motion per `__getitem__`."""

    def __init__(self, rows: EpochSeededRows, processor: MotionPatchProcessor):
        super().__init__(rows, processor)
        self.extractor = processor.feature_extractor

    def __getitem__(self, index):
        row = self.rows[index]
        rng, caption = draw(row)
        values = self.extractor([row["motion"]], crop="random", rng=[rng])["motion_values"][0]
        return torch.from_numpy(values), caption


class TokenizingCollate:
    """Default collate for the per-sample items, then the captions tokenized as the processor does."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def __call__(self, items):
        motion_values, captions = default_collate(items)
        text = self.tokenizer(list(captions), padding=True, truncation=True, return_tensors="pt")
        return {**text, "motion_values": motion_values}


def build_loaders(config: dict, rows, processor) -> tuple[dict, object]:
    """The three loaders over the same rows, sampler seed and epoch: the same batches in the same order; and
    train.py's `TrainBatches` behind ours."""
    # mirroring off: the per-sample loops it is compared with reproduce the reference recipe, which has none
    batch_flags = ["--per_device_train_batch_size", str(config["batch"]), "--seed", str(config["seed"])]
    args = train_args([*batch_flags, "--mirror_prob", "0"])
    ours = build_train_batches(args, rows, processor)
    loaders = {"ours": ours.loader}
    for name, dataset_class in zip(VARIANTS[1:], (ReferenceRecipeRows, ExtractorPerSampleRows)):
        loaders[name] = DataLoader(
            dataset_class(EpochSeededRows(rows, config["seed"]), processor),
            batch_size=config["batch"],
            sampler=EpochPermutationSampler(len(rows), config["seed"]),
            drop_last=True,
            collate_fn=TokenizingCollate(processor.tokenizer),
        )
    return loaders, ours


# ----------------------------------------------------------------------------------------------- checks and timing
def check_same_batches(loaders: dict) -> dict:
    """The first batch of each per-sample loader against ours: same tokens, same image within float rounding."""
    first = {name: next(iter(loader)) for name, loader in loaders.items()}
    ours = first["ours"]
    checks = {}
    for name in VARIANTS[1:]:
        batch = first[name]
        checks[name] = {
            "keys_equal": set(batch) == set(ours),
            "tokens_equal": all(torch.equal(batch[key], ours[key]) for key in ours if key != "motion_values"),
            "max_abs_diff": float((batch["motion_values"] - ours["motion_values"]).abs().max()),
        }
    return checks


def time_phases(ours, config: dict) -> list[dict]:
    """Where ours' batch production goes, each part timed alone over the epoch's first batches (mean, after a
    warm-up batch): fetching the rows, then the collator, and within it the tokenizer and the extractor."""
    rows, collator, size = ours.loader.dataset, ours.loader.collate_fn, config["batch"]
    order = list(ours.sampler)
    batches = [order[i : i + size] for i in range(0, size * (config["phase_batches"] + 1), size)]
    fetched = [rows.__getitems__(indices) for indices in batches]
    captions = [[row["captions"][0] for row in batch] for batch in fetched]
    motions = [[row["motion"] for row in batch] for batch in fetched]
    processor = collator.processor
    phases = {
        "fetch rows (EpochSeededRows.__getitems__, one read per batch)": lambda k: rows.__getitems__(batches[k]),
        "fetch rows one by one (__getitem__ per row, before __getitems__)": lambda k: [rows[i] for i in batches[k]],
        "collate (MotionTextCollator, all of the below)": lambda k: collator(fetched[k]),
        "  tokenizer on the captions": lambda k: processor.tokenizer(
            captions[k], padding=True, truncation=True, return_tensors="pt"
        ),
        "  feature extractor on the motions": lambda k: processor.feature_extractor(
            motions[k], crop="random", rng=0, return_tensors="pt"
        ),
    }
    table = []
    for phase, run in phases.items():
        run(0)
        seconds = []
        for k in range(1, len(batches)):
            start = time.perf_counter()
            run(k)
            seconds.append(time.perf_counter() - start)
        table.append({"phase": phase, "ms/batch": f"{1e3 * np.mean(seconds):,.2f}", "seconds": float(np.mean(seconds))})
    return table


def run_loop(model, optimizer, loader, config: dict) -> dict:
    """The training loop: per step, the seconds `next(loader)` takes and the seconds the step takes."""
    produce, step = [], []
    batches = iter(loader)
    for _ in range(config["warmup"] + config["steps"]):
        start = time.perf_counter()
        batch = next(batches)
        produced = time.perf_counter()
        our_step(model, optimizer, batch)
        produce.append(produced - start)
        step.append(time.perf_counter() - produced)
    timed = slice(config["warmup"], None)
    return {"produce_s": produce[timed], "step_s": step[timed]}


def loader_row(name: str, result: dict, config: dict) -> dict:
    produce, step = float(np.mean(result["produce_s"])), float(np.mean(result["step_s"]))
    share = produce / (produce + step)
    return {
        "loader": name,
        "batch": config["batch"],
        "timed steps": f"{config['steps']} (+{config['warmup']} warm-up)",
        "batch ms": f"{1e3 * produce:,.1f}",
        "train step s": f"{step:.2f}",
        "share of step": f"{100 * share:.2f}%",
        f"< {TARGET_SHARE:.0%}": ("met" if share < TARGET_SHARE else "NOT met") if name == "ours" else "-",
        "produce_s": produce,
        "step_s": step,
        "share": share,
    }


# ----------------------------------------------------------------------------------------------- report
def parse_args(argv):
    return benchmark_parser(__doc__).parse_args(argv)


def main(argv=None) -> dict:
    """Run the benchmark; returns the loader rows (seconds), the batch checks and the verdict."""
    args = parse_args(argv)
    torch.set_num_threads(os.cpu_count())
    config = QUICK if args.quick else FULL
    started = cpu_snapshot()
    rows = load_demo_dataset(config["rows"], 1, 1, seed=config["seed"])["train"]
    model = build_model(config["size"]).train()
    processor = build_processor(rows, model)
    loaders, ours_batches = build_loaders(config, rows, processor)
    checks = check_same_batches(loaders)
    print(f"same batches: {checks}", flush=True)
    phases = time_phases(ours_batches, config)
    optimizer = our_optimizer(model)
    results = {}
    for name, loader in loaders.items():
        results[name] = run_loop(model, optimizer, loader, config)
        print(f"{name}: {results[name]}", flush=True)
    table_rows = [loader_row(name, results[name], config) for name in loaders]
    lengths = [len(motion) for motion in rows.with_format("numpy")["motion"]]
    table = tables(table_rows, phases, config)
    notes = describe(table_rows, checks, config, lengths, processor) + "\n" + load_note(started)
    print(f"\n{table}\n\n{notes}")
    if not args.no_write:
        append_results("Training input pipeline: batch production vs the training step", table, notes)
    ours = table_rows[0]
    return {
        "rows": table_rows,
        "phases": phases,
        "checks": checks,
        "target_met": ours["share"] < TARGET_SHARE,
        "checks_passed": all(
            c["keys_equal"] and c["tokens_equal"] and c["max_abs_diff"] < CHECK_TOLERANCE for c in checks.values()
        ),
    }


def tables(table_rows: list[dict], phases: list[dict], config: dict) -> str:
    columns = ["loader", "batch", "timed steps", "batch ms", "train step s", "share of step", f"< {TARGET_SHARE:.0%}"]
    return (
        f"{SIZES[config['size']]['label']}, train mode, CPU; per step: producing the batch, then the training step\n"
        f"{format_table(table_rows, columns)}\n\n"
        f"ours' batch production by part, each timed alone (mean of {config['phase_batches']} batches after a warm-up)\n"
        f"{format_table(phases, ['phase', 'ms/batch'])}"
    )


def describe(table_rows, checks, config, lengths, processor) -> str:
    ours, reference, per_item = table_rows
    gpu_step = config["batch"] / ASSUMED_GPU_SAMPLES_PER_S
    check_text = "; ".join(
        f"{name}: tokens {'equal' if c['tokens_equal'] else 'DIFFERENT'}, motion_values max abs diff {c['max_abs_diff']:.1e}"
        for name, c in checks.items()
    )
    return "\n".join(
        [
            f"- Goal, batch production < {TARGET_SHARE:.0%} of each training step (ours): "
            f"{'met' if ours['share'] < TARGET_SHARE else 'NOT met'} ({100 * ours['share']:.2f}%: "
            f"{1e3 * ours['produce_s']:.1f} ms per batch against {ours['step_s']:.2f} s per step).",
            f"- Per-sample loops in the same run: the reference recipe {1e3 * reference['produce_s']:.1f} ms per batch "
            f"({100 * reference['share']:.2f}% of its step, {reference['produce_s'] / ours['produce_s']:.1f}x ours); "
            f"our extractor per item {1e3 * per_item['produce_s']:.1f} ms "
            f"({100 * per_item['share']:.2f}%, {per_item['produce_s'] / ours['produce_s']:.1f}x ours).",
            "- share of step = batch / (batch + train step), means over the timed steps; batch = wall time of "
            "`next(iter(loader))` in the loop, in the main process (train.py's loader has no workers); train step = "
            "`model(**batch)`, `global_contrastive_loss`, backward, Adam over train.py's three groups, `zero_grad` "
            "(benchmarks/models.py `our_step`). All loaders fed one model and optimizer, one after another.",
            f"- Ours: `build_train_batches` from training/train.py (batch {config['batch']}, seed {config['seed']}), "
            "i.e. `EpochSeededRows` + `EpochPermutationSampler` + `MotionTextCollator(train=True)` -> "
            f"`MotionPatchProcessor(tokenizer={type(processor.tokenizer).__name__}, part_order='reference')` once per "
            "batch (tokenizer, then the extractor on the list of motions, random windows).",
            "- Reference recipe: a Dataset whose `__getitem__` z-scores the whole motion, calls `cv2.resize` per frame "
            "and chain into a float64 buffer (benchmarks/preprocessing.py `reference_motion_values`), then takes the "
            "window; DataLoader default collate; the captions tokenized per batch with the same tokenizer. Per-sample, "
            "our extractor: the same Dataset calling the extractor on one motion per item.",
            f"- Same batches: {check_text} (the reference recipe rounds differently; must be < {CHECK_TOLERANCE:.0e}).",
            f"- Data: `load_demo_dataset({config['rows']}, 1, 1)` train split, SMPL-22 motions of {min(lengths)}-"
            f"{max(lengths)} frames (mean {np.mean(lengths):.0f}), 20 fps; model {SIZES[config['size']]['label']} with "
            "random weights (benchmarks/models.py `build_model`), nothing downloaded.",
            f"- Derived, not measured: against a GPU step at the {ASSUMED_GPU_SAMPLES_PER_S:,.0f} samples/s that "
            f"benchmarks/scale_out.py ASSUMES ({1e3 * gpu_step:.0f} ms at batch {config['batch']}), ours' measured "
            f"{1e3 * ours['produce_s']:.1f} ms per batch would be "
            f"{100 * ours['produce_s'] / (ours['produce_s'] + gpu_step):.0f}% of a step if it did not overlap the "
            "GPU's work (train.py's loader runs in the main process, without workers), and the reference recipe's "
            f"{100 * reference['produce_s'] / (reference['produce_s'] + gpu_step):.0f}%.",
            "- Rows are fetched with `EpochSeededRows.__getitems__` (one `datasets` read per batch), added with this "
            "benchmark: the phase table times the row-by-row fetch train.py's loader made before it.",
        ]
    )


if __name__ == "__main__":
    main(sys.argv[1:])

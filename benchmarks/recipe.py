"""Training-recipe comparison: baseline vs each change vs all together, at equal steps, several seeds.

    python -m benchmarks.recipe --split demo --rows baseline fn mirror augment ema all --seeds 0 1 2
    python -m benchmarks.recipe --split demo_combinations --rows baseline fn mirror all --seeds 0 1 2

Each (row, seed) is one `motionpatches.training.train` run in its own process (one CPU thread each,
`--parallel` at a time); a run whose metrics.json exists in `--work_dir` is read, not repeated, so an
interrupted comparison continues. The seed sets the demo data and the model's initialisation alike,
so within a seed all rows see the same motions. Reported on the test split: t2m / m2t R@1 (protocol
`all`), t2m R@5, the percentage of side-specific texts whose best motion names the other side, and t2m
R@1 of the queries whose (action, variant) is one of the demo's held-out combinations (on `demo` these
are ordinary test motions; on `demo_combinations` no training motion has them).
"""

import json
import os
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from benchmarks.results import append_results, benchmark_parser, format_table

# the flags each row adds to the baseline: one change per row, then all the changes together
ROWS = {
    "baseline": [],
    "fn": ["--false_negatives", "similar", "--false_negative_threshold", "0.8"],
    "mirror": ["--mirror_prob", "0.5"],
    "rotation": ["--rotation_degrees", "15"],
    "speed": ["--speed_range", "0.9,1.1"],
    "crop": ["--min_crop_fraction", "0.8"],
    "ema": ["--ema_decay", "0.99"],
}
ROWS["augment"] = [flag for name in ("rotation", "speed", "crop") for flag in ROWS[name]]
ROWS["all"] = [flag for name in ("fn", "mirror", "augment", "ema") for flag in ROWS[name]]
METRICS = ("t2m/R@1", "m2t/R@1", "t2m/R@5", "left_right_confusion", "held_out/t2m/R@1")


def run_command(split: str, row: str, seed: int, epochs: int, output_dir: str, extra: list[str]) -> list[str]:
    return [
        sys.executable,
        "-m",
        "motionpatches.training.train",
        "--dataset_name",
        split,
        "--seed",
        str(seed),
        "--num_train_epochs",
        str(epochs),
        "--num_threads",
        "1",
        "--report_to",
        "none",
        "--query",
        "",
        "--output_dir",
        output_dir,
        *row_flags(row),
        *extra,
    ]


def row_flags(row: str) -> list[str]:
    """The row's flags; mirroring is named off where the row does not turn it on, since it is on by default."""
    flags = ROWS[row]
    return flags if "--mirror_prob" in flags else ["--mirror_prob", "0", *flags]


def held_out_recall(output_dir: str, split: str, seed: int, sizes: tuple[int, int, int]) -> float:
    """t2m R@1 (protocol all) of the test queries whose (action, variant) the held-out split keeps from training."""
    import torch

    from motionpatches.loading import load_model_and_processor
    from motionpatches.training.data.demo import generate_demo_motions, is_held_out, load_demo_dataset
    from motionpatches.training.evaluation import embed_split

    rows = load_demo_dataset(*sizes, seed=seed)["test"]
    test_seed = int(np.random.SeedSequence([seed, 2]).generate_state(1)[0])
    motions = generate_demo_motions(sizes[2], test_seed, first_index=sizes[0] + sizes[1])
    assert [m["id"] for m in motions] == list(rows["id"])
    queries = [i for i, m in enumerate(motions) if is_held_out(m["action"], m["variant"])]
    model, processor = load_model_and_processor(output_dir)
    with torch.inference_mode():
        embeddings = embed_split(model, processor, rows)
    similarity = embeddings["text_embeds"][queries] @ embeddings["motion_embeds"].T
    captions = embeddings["captions"]
    best = similarity.argmax(axis=1)
    return 100.0 * float(np.mean([captions[j] == captions[i] for i, j in zip(queries, best)]))


def run_one(args, row: str, seed: int) -> dict:
    output_dir = os.path.join(args.work_dir, args.split, f"{row}-seed{seed}")
    metrics_file = os.path.join(output_dir, "metrics.json")
    if not os.path.isfile(metrics_file):
        command = run_command(args.split, row, seed, args.epochs, output_dir, args.extra)
        log = output_dir + ".log"
        os.makedirs(os.path.dirname(log), exist_ok=True)
        print(f"running {row} seed {seed}: {shlex.join(command[1:])}", flush=True)
        with open(log, "w") as handle:
            done = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT)
        if done.returncode != 0:
            raise RuntimeError(f"{row} seed {seed} failed ({done.returncode}); see {log}")
    with open(metrics_file) as f:
        test = json.load(f)["test"]
    result = {name: test.get(name) for name in METRICS if not name.startswith("held_out")}
    held_out_file = os.path.join(output_dir, "held_out.json")
    if not os.path.isfile(held_out_file):
        sizes = tuple(int(n) for n in args.demo_sizes.split(","))
        with open(held_out_file, "w") as f:
            json.dump({"t2m/R@1": held_out_recall(output_dir, args.split, seed, sizes)}, f)
    with open(held_out_file) as f:
        result["held_out/t2m/R@1"] = json.load(f)["t2m/R@1"]
    return result


def summarise(results: dict[str, list[dict]]) -> list[dict]:
    table = []
    for row, runs in results.items():
        line = {"row": row, "runs": len(runs)}
        for name in METRICS:
            values = np.array([run[name] for run in runs if run.get(name) is not None], dtype=float)
            line[name] = f"{values.mean():.1f} ± {values.std(ddof=1) if len(values) > 1 else 0.0:.1f}"
        table.append(line)
    return table


def main(argv=None) -> None:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--split", default="demo", choices=["demo", "demo_combinations"])
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--work_dir", default="outputs/recipe")
    parser.add_argument("--demo_sizes", default="1200,150,150")
    parser.add_argument("--extra", type=shlex.split, default=[], help='flags added to every run, e.g. "--max_steps 50"')
    args = parser.parse_args(argv)
    if args.quick:
        args.extra = [*args.extra, "--demo_sizes", "64,32,32", "--max_steps", "2", "--text_model", "tiny"]
        args.demo_sizes = "64,32,32"
    jobs = [(row, seed) for row in args.rows for seed in args.seeds]
    with ThreadPoolExecutor(max_workers=args.parallel) as pool:
        finished = list(pool.map(lambda job: run_one(args, *job), jobs))
    results = {row: [] for row in args.rows}
    for (row, _), result in zip(jobs, finished):
        results[row].append(result)
    table = format_table(summarise(results), ["row", "runs", *METRICS])
    print(table)
    if not args.no_write:
        flags = "; ".join(f"{row}: {' '.join(row_flags(row))}" for row in args.rows)
        notes = (
            f"Test split of `{args.split}`, mean ± sample std over seeds {args.seeds}, {args.epochs} epochs each "
            f"(equal steps). Rows: {flags}."
        )
        append_results(f"Training recipe on {args.split}", table, notes)


if __name__ == "__main__":
    main()

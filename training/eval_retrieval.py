"""Text<->motion retrieval metrics of a saved model on a dataset split.

    python training/eval_retrieval.py --model_name_or_path outputs/motionpatches-demo --dataset_name demo \
        --protocol all --output_file metrics.json --save_embeddings test_embeddings.npz

Protocols: `all` (the paper's: whole split, every motion sharing the exact first caption counts as
correct), and TMR's `tmr-all` (diagonal ground truth), `threshold` (captions whose sentence
embeddings have cosine above 2*0.95-1 also count; `--sentence_encoder`, MiniLM by default),
`dissimilar` (a given id list) and `guo` (batches of 32, averaged).

A dataset folder's `new_joints/` may mix `.npy`, `.bvh` and `.npz` files (`--bvh_scale`, `--bvh_up_axis`,
`--motion_format`, `--body_model_dir` say what the files do not). A file that cannot be used is skipped
(`--on_error raise` stops at the first instead): the files read and skipped are printed, each skipped one
with its reason, and with `--output_file` listed in `<its stem>.skipped.json` beside it.

The model is loaded without running code saved in its folder; `--trust_remote_code` allows it. Output
paths and the id file are checked before the evaluation starts, and outputs are replaced whole.

`--report DIR` also writes where the model fails (see `training/report.py`): `report.json` and `report.md` with
R@k per query and macro-averaged over caption groups (or over the values of `--group_by COLUMN`, e.g. the
demo's `action`), a table per group, the left/right confusion, the most confused group pairs and the worst text
queries, and `worst_queries.png`, their top motions as skeleton keyframes. The report is always of protocol
`all`, whatever `--protocol` the metrics use.
"""

import argparse
import json
import os

import numpy as np

from motionpatches.arguments import add_threads_argument, add_trust_remote_code_argument, output_path, positive_int
from motionpatches.atomic import atomic_path, write_text_atomically
from motionpatches.loading import load_or_exit
from motionpatches.retrieval import (
    PROTOCOLS,
    default_sentence_encoder,
    format_metrics_table,
    sentence_embeddings,
)
from motionpatches.skipped import SkippedFiles, report_skipped
from motionpatches.threads import configure_threads
from motionpatches.training.data.catalog import add_dataset_arguments, load_dataset_from_args
from motionpatches.training.evaluation import embed_split, score_embeddings
from motionpatches.training.model_card import report_summary_markdown
from motionpatches.training.report import failure_report, group_labels, write_report
from motionpatches.training.skeleton_transfer import processor_for_dataset


def evaluate(
    model, processor, rows, protocol="all", batch_size=128, sentence_encoder=None, threshold=0.95, subset_ids=None
):
    """(metrics, embeddings) of `model` on `rows` under `protocol`; importable for notebooks and tests."""
    if protocol == "dissimilar" and subset_ids is None:
        raise ValueError("protocol 'dissimilar' needs --subset_ids (a file with one id per line)")
    embeddings = embed_split(model, processor, rows, batch_size)
    kwargs = {}
    if protocol == "threshold":
        encoder = sentence_encoder or default_sentence_encoder()
        if encoder is None:
            raise ValueError("protocol 'threshold' needs --sentence_encoder (or the demo extra's MiniLM)")
        kwargs.update(sentence_embeds=sentence_embeddings(list(embeddings["captions"]), encoder), threshold=threshold)
    if protocol == "dissimilar":
        kwargs.update(subset_ids=subset_ids)
    return score_embeddings(embeddings, protocol, **kwargs), embeddings


def unit_interval(text: str) -> float:
    """TMR's threshold rescales a cosine to [0, 1] (captions match above 2 * threshold - 1); outside it is no threshold."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(
            f"expected a number in [0, 1] (TMR's rescaled cosine similarity; 0.95 in TMR), got {text}"
        )
    return value


def read_subset_ids(path: str) -> list[str]:
    """The ids of a `--subset_ids` file, one per line; a missing or empty file is refused before any work."""
    try:
        with open(path, encoding="utf-8") as f:
            ids = [line.strip() for line in f if line.strip()]
    except OSError as err:
        raise SystemExit(f"error: cannot read --subset_ids {path}: {err.strerror or err}") from None
    if not ids:
        raise SystemExit(f"error: --subset_ids {path} is empty; it must list the ids to evaluate, one per line")
    return ids


def checked_outputs(args) -> tuple[str | None, str | None]:
    """(metrics file, embeddings file) as they will be written, refused now rather than after the evaluation."""
    try:
        metrics = output_path(args.output_file, "--output_file") if args.output_file else None
        embeddings = output_path(args.save_embeddings, "--save_embeddings", ".npz") if args.save_embeddings else None
    except (OSError, ValueError) as err:
        raise SystemExit(f"error: {err}") from None
    return metrics, embeddings


def checked_report_dir(args) -> str | None:
    """The `--report` folder, refused now if it could not be written after the evaluation."""
    if args.group_by and not args.report:
        raise SystemExit("error: --group_by only changes the report; add --report DIR")
    if not args.report:
        return None
    folder = args.report
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise SystemExit(f"error: --report {folder} is a file; give a folder for report.json, report.md and a picture")
    existing = folder if os.path.isdir(folder) else os.path.dirname(os.path.abspath(folder))
    if not os.path.isdir(existing):
        raise SystemExit(f"error: --report {folder}: the folder {existing} does not exist; create it first")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise SystemExit(f"error: --report {folder}: the folder {existing} is not writable")
    return folder


def make_report(args, embeddings: dict, rows, skeleton, groups: list[str] | None) -> None:
    """The failure report of the evaluated split into `--report`, its summary printed."""
    report = failure_report(embeddings, groups=groups, group_by=args.group_by)
    for path in write_report(report, rows, args.report, skeleton):
        print(f"wrote {path}")
    print(report_summary_markdown(report))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model_name_or_path", required=True)
    add_trust_remote_code_argument(p)
    add_threads_argument(p)
    add_dataset_arguments(p)
    p.add_argument("--seed", type=int, default=0, help="seed of the demo dataset")
    p.add_argument("--split", default="test", choices=["train", "validation", "test"])
    p.add_argument("--protocol", default="all", choices=PROTOCOLS)
    p.add_argument("--sentence_encoder", help="model folder or Hub id for the threshold protocol")
    p.add_argument("--threshold", type=unit_interval, default=0.95, help="threshold protocol, in [0, 1] (TMR: 0.95)")
    p.add_argument("--subset_ids", help="file of ids for the dissimilar protocol, one per line")
    p.add_argument("--batch_size", type=positive_int, default=128)
    p.add_argument(
        "--output_file", help="write the metrics as JSON, and the files skipped to <its stem>.skipped.json beside it"
    )
    p.add_argument(
        "--save_embeddings", help="write text_embeds, motion_embeds, captions, ids as .npz (added when no suffix)"
    )
    p.add_argument(
        "--report",
        metavar="DIR",
        help="also write a failure report of the split into DIR (created if missing): report.json, report.md, "
        "worst_queries.png",
    )
    p.add_argument(
        "--group_by",
        metavar="COLUMN",
        help="with --report: average over the values of this column (e.g. the demo's action) instead of captions",
    )
    return p.parse_args(argv)


def write_outputs(metrics: dict, embeddings: dict, metrics_file: str | None, embeddings_file: str | None) -> None:
    if metrics_file:
        write_text_atomically(metrics_file, json.dumps(metrics, indent=2))
        print(f"wrote {metrics_file}")
    if embeddings_file:
        with atomic_path(embeddings_file) as temporary, open(temporary, "wb") as f:
            np.savez(f, **embeddings)
        print(f"wrote {embeddings_file}")


def main(argv=None):
    args = parse_args(argv)
    configure_threads(args.num_threads)
    metrics_file, embeddings_file = checked_outputs(args)
    checked_report_dir(args)
    if args.protocol == "dissimilar" and not args.subset_ids:
        raise SystemExit("error: protocol 'dissimilar' needs --subset_ids (a file with one id per line)")
    subset_ids = read_subset_ids(args.subset_ids) if args.subset_ids else None
    model, processor = load_or_exit(args.model_name_or_path, trust_remote_code=args.trust_remote_code)
    skipped = SkippedFiles()
    data, skeleton = load_dataset_from_args(args, skipped)
    processor = processor_for_dataset(processor, skeleton, data)
    groups = None
    if args.group_by:
        try:
            groups = group_labels(data[args.split], args.group_by)  # a wrong column, before the evaluation
        except ValueError as err:
            raise SystemExit(f"error: --group_by: {err}") from None
    metrics, embeddings = evaluate(
        model,
        processor,
        data[args.split],
        args.protocol,
        args.batch_size,
        args.sentence_encoder,
        args.threshold,
        subset_ids,
    )
    print(f"{args.split} split, {len(data[args.split])} motions, protocol {args.protocol}:")
    print(format_metrics_table(metrics))
    write_outputs(metrics, embeddings, metrics_file, embeddings_file)
    if args.report:
        make_report(args, embeddings, data[args.split], skeleton, groups)
    report_skipped(skipped, metrics_file)


if __name__ == "__main__":
    main()

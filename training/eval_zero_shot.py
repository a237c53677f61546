"""Zero-shot action classification of labelled motions with a saved motion-text model.

    python training/eval_zero_shot.py --model_name_or_path DIR --csv clips.csv [--motions_dir DIR]
    python training/eval_zero_shot.py --model_name_or_path DIR --babel_json babel/val.json --joints_dir DIR --fps 30
    python training/eval_zero_shot.py --model_name_or_path DIR --babel_json babel/val.json --joints_dir AMASS \
        --body_model_dir body_models
    python training/eval_zero_shot.py --model_name_or_path DIR --dataset_name demo --label_text '{"walk": "walks"}'

Each label becomes a prompt (`--template`, "a person {label}" by default; `--label_text` maps a label
to nicer words, e.g. {"sit_down": "sits down"}), each motion is given the label whose prompt it is most
similar to. Labels default to every label in the data; with `--labels`, rows with other labels are left
out. Prints top-1/top-5 accuracy and the confusion matrix; `--output_file` writes the report as JSON
(with each motion's id and prediction), `--confusion_csv` the matrix as CSV and `--save_scores` every
motion-label similarity. For BABEL's file layouts see training/data/classification.py.

The CSV may list `.npy`, `.bvh` and `.npz` files (`--bvh_scale`, `--bvh_up_axis`, `--motion_format`,
`--body_model_dir` say what the files do not; a BVH or SMPL file's own frame rate wins over `--fps`; SMPL
files give the joints of the model's skeleton: 22, or 24 / 55 for an `smpl24` / `smplx` model).
A listed file that cannot be used is skipped (`--on_error raise` stops at the first instead): the files
read and skipped are printed, each skipped one with its reason and CSV line (BABEL: its sequence), and
with `--output_file` listed in `<its stem>.skipped.json` beside it.

The model is loaded without running code saved in its folder; `--trust_remote_code` allows it. Output
paths are checked before any work, and outputs are replaced whole (a crash leaves the previous file).
"""

import argparse
import csv
import io
import json
import os

import numpy as np

from motionpatches.arguments import (
    add_motion_file_arguments,
    add_threads_argument,
    add_trust_remote_code_argument,
    motion_file_options,
    output_path,
    positive_fps,
    positive_int,
)
from motionpatches.atomic import atomic_path, write_text_atomically
from motionpatches.loading import load_or_exit
from motionpatches.processors.motion_readers import MotionFileOptions, file_options_for_skeleton
from motionpatches.skipped import SkippedFiles, report_skipped
from motionpatches.threads import configure_threads
from motionpatches.training.data.catalog import demo_sizes
from motionpatches.training.data.classification import BABEL_LABEL_KEYS, TARGET_FPS, load_babel, load_label_csv
from motionpatches.zero_shot import (
    DEFAULT_TEMPLATE,
    build_prompts,
    classification_report,
    format_confusion_matrix,
    zero_shot_scores,
)


def load_rows(args, skipped: SkippedFiles, options: MotionFileOptions | None = None):
    """The labelled motions (columns id, motion, label, at 20 fps) named by the command line, their files read
    with `options` (default: the command line's); the files that cannot be used are recorded in `skipped` (or
    raised, with `--on_error raise`)."""
    options = options or motion_file_options(args)
    if args.csv:
        return load_label_csv(
            args.csv,
            args.motions_dir,
            args.fps or TARGET_FPS,
            file_options=options,
            on_error=args.on_error,
            skipped=skipped,
        )
    if args.babel_json:
        return load_babel(
            args.babel_json,
            args.joints_dir,
            args.fps,
            min_seconds=args.min_seconds,
            label_key=args.label_key,
            use_sequence_labels=args.use_sequence_labels,
            file_options=options,
            on_error=args.on_error,
            skipped=skipped,
        )
    from motionpatches.training.data.demo import load_demo_dataset

    train, validation, test = demo_sizes(args.demo_sizes)
    demo = load_demo_dataset(num_train=train, num_validation=validation, num_test=test, seed=args.seed)
    return demo["test"].select_columns(["id", "motion", "action"]).rename_column("action", "label")


def select_labels(rows, labels_arg: str | None):
    """(rows, labels): every label in the data, sorted, or those of `--labels` with the other rows left out."""
    if not labels_arg:
        return rows, sorted(set(rows["label"]))
    labels = [label.strip() for label in labels_arg.split(",") if label.strip()]
    wanted = set(labels)
    kept = rows.filter(lambda label: label in wanted, input_columns="label")
    if len(kept) == 0:
        raise SystemExit(f"no motion is labelled with any of {labels}")
    if len(kept) < len(rows):
        print(f"{len(rows) - len(kept)} of {len(rows)} motions have labels outside --labels and are left out")
    return kept, labels


def read_label_text(value: str | None) -> dict:
    """`--label_text`: a JSON object given inline or as a file path."""
    if not value:
        return {}
    if os.path.isfile(value):
        with open(value, encoding="utf-8") as f:
            value = f.read()
    mapping = json.loads(value)
    if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
        raise SystemExit('--label_text must be a JSON object mapping labels to words, e.g. {"walk": "walks"}')
    return mapping


def confusion_csv(report: dict) -> str:
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(["true \\ predicted", *report["labels"]])
    for label, row in zip(report["labels"], report["confusion_matrix"]):
        writer.writerow([label, *row])
    return text.getvalue()


def write_confusion_csv(report: dict, path: str) -> None:
    with atomic_path(path) as temporary, open(temporary, "w", newline="", encoding="utf-8") as f:
        f.write(confusion_csv(report))


def checked_outputs(args) -> dict:
    """{flag: path as it will be written}, refused now rather than after the scoring."""
    wanted = (
        ("--output_file", args.output_file, None),
        ("--confusion_csv", args.confusion_csv, None),
        ("--save_scores", args.save_scores, ".npy"),  # np.save would add .npy to a name without it
    )
    try:
        return {flag: output_path(path, flag, suffix) for flag, path, suffix in wanted if path}
    except (OSError, ValueError) as err:
        raise SystemExit(f"error: {err}") from None


def write_outputs(report: dict, scores: np.ndarray, outputs: dict) -> None:
    if "--output_file" in outputs:
        write_text_atomically(outputs["--output_file"], json.dumps(report, indent=2))
    if "--confusion_csv" in outputs:
        write_confusion_csv(report, outputs["--confusion_csv"])
    if "--save_scores" in outputs:
        with atomic_path(outputs["--save_scores"]) as temporary, open(temporary, "wb") as f:
            np.save(f, scores)
    for path in outputs.values():
        print(f"wrote {path}")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model_name_or_path", required=True)
    add_trust_remote_code_argument(p)
    add_threads_argument(p)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--csv", help="CSV with columns file,label[,start,end] (seconds)")
    source.add_argument("--babel_json", help="a BABEL split file, e.g. val.json")
    source.add_argument("--dataset_name", choices=["demo"], help="the procedural demo's test split, labelled by action")
    p.add_argument("--motions_dir", help="folder the CSV's files are relative to (default: the CSV's folder)")
    p.add_argument(
        "--joints_dir",
        help="BABEL: joint positions as <joints_dir>/<feat_p with .npy for .npz>, or with --body_model_dir the AMASS "
        "folder holding the .npz files",
    )
    p.add_argument(
        "--fps",
        "--motion_fps",
        dest="fps",
        type=positive_fps,
        help="frame rate of files that carry none, e.g. .npy joints (CSV default 20; BABEL: required for .npy joint "
        "files; AMASS .npz files read with --body_model_dir carry theirs)",
    )
    p.add_argument("--label_key", default="proc_label", choices=BABEL_LABEL_KEYS, help="BABEL label field")
    p.add_argument("--use_sequence_labels", action="store_true", help="BABEL: sequence labels, not segments")
    p.add_argument("--min_seconds", type=float, default=0.5, help="BABEL: shortest segment kept")
    p.add_argument("--demo_sizes", default="1200,150,150", help="train,validation,test sizes of the demo dataset")
    p.add_argument("--seed", type=int, default=0, help="seed of the demo dataset")
    p.add_argument("--labels", help="comma-separated labels to choose from (default: all labels in the data)")
    p.add_argument("--template", default=DEFAULT_TEMPLATE, help="prompt with a {label} placeholder")
    p.add_argument("--label_text", help='JSON object (or .json file) of label -> words, e.g. {"walk": "walks"}')
    p.add_argument("--batch_size", type=positive_int, default=64)
    add_motion_file_arguments(p)
    p.add_argument("--device", help="e.g. cuda or cpu (default: cuda when available)")
    p.add_argument(
        "--output_file", help="write the report as JSON, and the files skipped to <its stem>.skipped.json beside it"
    )
    p.add_argument("--confusion_csv", help="write the confusion matrix as CSV")
    p.add_argument(
        "--save_scores",
        help="write the (motions, labels) cosine similarities as .npy (added when no suffix), rows in the report's ids order",
    )
    args = p.parse_args(argv)
    if args.babel_json and not (args.joints_dir and (args.fps or args.body_model_dir)):
        p.error(
            "--babel_json needs --joints_dir and --fps (the frame rate of the joint files), or --joints_dir the AMASS "
            "folder with --body_model_dir"
        )
    return args


def main(argv=None):
    args = parse_args(argv)
    configure_threads(args.num_threads)
    outputs = checked_outputs(args)
    label_text = read_label_text(args.label_text)
    build_prompts(["label"], args.template)  # a template without {label} fails before any work
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    model, processor = load_or_exit(args.model_name_or_path, trust_remote_code=args.trust_remote_code)
    model = model.to(device)
    skipped = SkippedFiles()
    # .npz files give the joints of the model's skeleton when it is the smpl24 or smplx preset
    options = file_options_for_skeleton(motion_file_options(args), processor.feature_extractor.skeleton)
    try:
        rows, labels = select_labels(load_rows(args, skipped, options), args.labels)
    # a CSV or file that stops the loading (with --on_error raise, the first unusable file) ends the run, named
    except (OSError, ValueError) as err:
        raise SystemExit(f"error: {err}") from None
    prompts = build_prompts(labels, args.template, label_text)
    motions = (row["motion"] for row in rows.with_format("numpy", columns=["motion"]))
    # the loaders deliver 20 fps; the processor resamples to the model's rate if that differs
    scores = zero_shot_scores(model, processor, motions, labels, args.template, args.batch_size, TARGET_FPS, label_text)
    report = classification_report(scores, rows["label"], labels)
    report.update(
        template=args.template,
        prompts=prompts,
        ids=list(rows["id"]),
        predictions=[labels[j] for j in scores.argmax(axis=1)],
    )

    print(
        f"{report['num_samples']} motions, {len(labels)} labels: "
        f"top-1 {report['top1']:.2f}%  top-5 {report['top5']:.2f}%"
    )
    print(format_confusion_matrix(report))
    write_outputs(report, scores, outputs)
    report_skipped(skipped, outputs.get("--output_file"))


if __name__ == "__main__":
    main()

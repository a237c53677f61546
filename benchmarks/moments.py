"""Moment retrieval on long motions built from the demo test split: R@1 at IoU >= 0.5 / 0.7 and mIoU of the top-1
span, `motionpatches.moments.search_moments` against a random span and a fixed-length window.

**Sequences.** Each sequence joins 3 to 5 test clips of different actions (seeded), so every clip's first
caption names one span. Demo clips start at the origin facing +Z; a cut back to the origin would give the
boundary away, so each next clip is turned about Y to face where the previous one ended facing, moved so that its
root starts where the previous root ended (the height kept), and joined by a 0.5 s transition interpolating
(smoothstep) from the previous last pose to the next first pose. A clip's true span is its own frames, the
transitions excluded. Every clip of every sequence is queried with its first caption.

**Methods** (R@1 and mIoU score each method's top span per query, R@5 its top five; IoU in seconds):
- ours: `search_moments` (windows 1-10 s every 0.5 s, each placed as a clip, `canonicalize="heading"`), top 1;
  R@5 uses the top 5 after temporal non-maximum suppression (IoU 0.5).
- ours without placing windows as clips (`canonicalize="none"`): the same windows taken where they lie.
- fixed-length window (model): one window length only, the median duration of the demo *train* split's clips
  rounded to the window grid (chosen without looking at the test data), scored by the same model: the honest
  fixed-window baseline, since it differs from ours only in searching one length.
- fixed-length window, no model: that length, centred in the sequence (a prior without the model).
- random span: a length drawn among the window lengths that fit and a start uniform over the sequence, averaged
  over `RANDOM_DRAWS` seeded draws per query (R@5: five such spans).

Run from the repository root (after the demo model is trained: `accelerate launch training/train.py`):

    python -m benchmarks.moments                     # 50 sequences, 197 queries: about 6 minutes on 2 cores
    python -m benchmarks.moments --export_sequences outputs/demo-sequences   # only write the sequences (.npy + json)
    python -m benchmarks.moments --quick --no-write  # a tiny random model, seconds
"""

import json
import math
import os
import time

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from benchmarks.results import REPO_ROOT, append_results, benchmark_parser, cpu_snapshot, format_table, load_note
from motionpatches import MotionPatchProcessor, MotionTextModel
from motionpatches.atomic import atomic_path, write_text_atomically
from motionpatches.loading import load_model_and_processor
from motionpatches.moments import (
    facing_angle,
    facing_joints,
    search_moments,
    temporal_iou,
    temporal_nms,
    window_lengths,
    window_scores,
)
from motionpatches.processors import resolve_skeleton
from motionpatches.threads import configure_threads
from motionpatches.tiny import build_word_tokenizer, tiny_config
from motionpatches.training.data.demo import load_demo_dataset

DEMO_MODEL = REPO_ROOT / "outputs" / "motionpatches-demo"
PICTURE = REPO_ROOT / "docs" / "moments.png"
FPS = 20.0  # the demo data's frame rate
TRANSITION_SECONDS = 0.5
STRIDE_SECONDS = 0.5
NMS_IOU = 0.5
THRESHOLDS = (0.5, 0.7)
RANDOM_DRAWS = 1000
FULL = {
    "sequences": 50,
    "clips": (3, 5),
    "demo_sizes": (1200, 150, 150),
    "window_seconds": tuple(float(s) for s in range(1, 11)),
    "model": "demo",
}
QUICK = {
    "sequences": 3,
    "clips": (3, 3),
    "demo_sizes": (40, 10, 30),
    "window_seconds": (1.0, 2.0, 3.0),
    "model": "tiny",
}
COLUMNS = ["method", "R@1 IoU>=0.5", "R@1 IoU>=0.7", "mIoU", "R@5 IoU>=0.5", "queries"]


# ----------------------------------------------------------------------------------------------- sequences
def rotate_about_y(positions: np.ndarray, angle: float) -> np.ndarray:
    """`positions` (..., 3) turned by `angle` radians about +Y, as `motionpatches.moments` turns windows."""
    cos, sin = math.cos(angle), math.sin(angle)
    x, y, z = positions[..., 0], positions[..., 1], positions[..., 2]
    return np.stack([cos * x + sin * z, y, cos * z - sin * x], axis=-1)


def smoothstep(x: np.ndarray) -> np.ndarray:
    return x * x * (3.0 - 2.0 * x)


def build_sequence(clips: list[np.ndarray], joints: tuple[int, ...], transition_frames: int):
    """(motion (T, J, 3) float32, spans [(first frame, end frame)] of the clips): each next clip turned to face where
    the previous one ended facing and moved to start where its root ended, after `transition_frames` frames
    interpolated between the two poses."""
    root = joints[0]
    parts = [np.asarray(clips[0], dtype=np.float64)]
    spans = [(0, len(clips[0]))]
    length = len(clips[0])
    for clip in clips[1:]:
        last = parts[-1][-1]
        clip = np.asarray(clip, dtype=np.float64)
        # facing_angle is the turn that makes a pose face +Z: turning by the difference gives the next clip the
        # previous clip's final facing
        turned = rotate_about_y(clip, float(facing_angle(clip[0], joints) - facing_angle(last, joints)))
        shift = last[root] - turned[0, root]
        placed = turned + np.array([shift[0], 0.0, shift[2]])
        weights = smoothstep(np.arange(1, transition_frames + 1) / (transition_frames + 1))[:, None, None]
        parts += [(1.0 - weights) * last + weights * placed[0], placed]
        start = length + transition_frames
        spans.append((start, start + len(placed)))
        length = start + len(placed)
    return np.concatenate(parts).astype(np.float32), spans


def pick_clips(actions: list[str], count: int, rng: np.random.Generator) -> list[int]:
    """`count` row numbers of distinct actions, so that every clip's caption names one span."""
    chosen, seen = [], set()
    for row in rng.permutation(len(actions)):
        if actions[row] not in seen:
            chosen.append(int(row))
            seen.add(actions[row])
        if len(chosen) == count:
            break
    return chosen


def build_sequences(rows, config: dict, joints, seed: int) -> list[dict]:
    """The benchmark's sequences from the test rows: motion, clip spans (seconds), captions and actions."""
    rng = np.random.default_rng([seed, 1])
    actions = list(rows["action"])
    motions = rows.with_format("numpy")["motion"]
    captions = rows["captions"]
    sequences = []
    low, high = config["clips"]
    for number in range(config["sequences"]):
        picked = pick_clips(actions, int(rng.integers(low, high + 1)), rng)
        motion, spans = build_sequence([motions[i] for i in picked], joints, round(TRANSITION_SECONDS * FPS))
        sequences.append(
            {
                "number": number,
                "motion": motion,
                "spans": [(a / FPS, b / FPS) for a, b in spans],
                "captions": [captions[i][0] for i in picked],
                "actions": [actions[i] for i in picked],
                "ids": [rows[i]["id"] for i in picked],
            }
        )
    return sequences


def fixed_length_seconds(train_rows, window_seconds) -> float:
    """The window length nearest the median duration of the train split's clips (the longer one on a tie)."""
    durations = np.array([len(m) for m in train_rows.with_format("numpy")["motion"]]) / FPS
    median = float(np.median(durations))
    grid = np.asarray(window_seconds, dtype=np.float64)
    return float(grid[np.argmin(np.abs(grid - median) - 1e-9 * grid)])


# ----------------------------------------------------------------------------------------------- methods
def top_spans(start, end, scores, k: int) -> list[tuple[float, float]]:
    kept = temporal_nms(start, end, scores, k, NMS_IOU)
    return [(float(start[i]), float(end[i])) for i in kept]


def span_iou(span, truth) -> float:
    return float(temporal_iou(span[0], span[1], np.array([truth[0]]), np.array([truth[1]]))[0])


def score_sequence(model, processor, sequence: dict, config: dict, fixed_seconds: float) -> dict:
    """{method: [top spans per query]} for one sequence: ours (both placements) and the fixed-length window."""
    found = {}
    for label, canonicalize in (("ours", "heading"), ("ours, windows not placed", "none")):
        scored = window_scores(
            model,
            processor,
            sequence["motion"],
            sequence["captions"],
            window_seconds=config["window_seconds"],
            stride_seconds=STRIDE_SECONDS,
            fps=FPS,
            canonicalize=canonicalize,
        )
        found[label] = [top_spans(scored.start, scored.end, row, 5) for row in scored.scores]
        if canonicalize == "heading":
            single = np.isclose(scored.end - scored.start, fixed_seconds)
            found["fixed-length window (model)"] = [
                top_spans(scored.start[single], scored.end[single], row[single], 5) for row in scored.scores
            ]
            found["_scores"] = scored
    duration = len(sequence["motion"]) / FPS
    centre = max(0.0, (duration - fixed_seconds) / 2)
    found["fixed-length window, centred (no model)"] = [[(centre, centre + fixed_seconds)]] * len(sequence["captions"])
    return found


def random_metrics(duration: float, truth, lengths: np.ndarray, rng: np.random.Generator) -> dict:
    """Expected metrics of random spans for one query, over `RANDOM_DRAWS` draws (R@5: five spans per draw)."""
    fitting = lengths[lengths <= duration + 1e-9]
    size = (RANDOM_DRAWS, 5)
    span_length = rng.choice(fitting, size=size)
    start = rng.uniform(0.0, 1.0, size=size) * (duration - span_length)
    end = start + span_length
    overlap = np.clip(np.minimum(end, truth[1]) - np.maximum(start, truth[0]), 0.0, None)
    iou = overlap / ((end - start) + (truth[1] - truth[0]) - overlap)
    top1 = iou[:, 0]
    return {
        "R@1 IoU>=0.5": float(np.mean(top1 >= 0.5)),
        "R@1 IoU>=0.7": float(np.mean(top1 >= 0.7)),
        "mIoU": float(np.mean(top1)),
        "R@5 IoU>=0.5": float(np.mean((iou >= 0.5).any(axis=1))),
    }


def spans_metrics(spans: list[tuple[float, float]], truth) -> dict:
    ious = [span_iou(span, truth) for span in spans]
    top1 = ious[0]
    five = max(ious[:5]) if len(spans) > 1 else top1  # a method answering one span has R@5 = R@1
    return {
        "R@1 IoU>=0.5": float(top1 >= 0.5),
        "R@1 IoU>=0.7": float(top1 >= 0.7),
        "mIoU": top1,
        "R@5 IoU>=0.5": float(five >= 0.5),
    }


def summarise(per_query: dict[str, list[dict]]) -> list[dict]:
    rows = []
    for method, metrics in per_query.items():
        row = {"method": method, "queries": len(metrics)}
        for column in COLUMNS[1:-1]:
            row[column] = f"{100.0 * np.mean([m[column] for m in metrics]):.1f}"
        rows.append(row)
    return rows


# ----------------------------------------------------------------------------------------------- the picture
def _font(size: int):
    return ImageFont.load_default(size=size)


def draw_picture(sequence: dict, query: int, scored, top1, path, width: int = 1000, height: int = 420) -> None:
    """Similarity over time for one query on one sequence: the best window centred at each time (any length),
    the true span shaded, the retrieved top-1 span drawn as a bar, clip boundaries and actions marked."""
    scores = scored.scores[query]
    centres = np.round((scored.start + scored.end) / 2 / (STRIDE_SECONDS / 2)) * (STRIDE_SECONDS / 2)
    times = np.unique(centres)
    best = np.array([scores[centres == t].max() for t in times])
    duration = len(sequence["motion"]) / FPS
    left, right, top, bottom = 60, 20, 70, 90
    low, high = float(best.min()), float(best.max())
    margin = 0.08 * (high - low or 1.0)
    low, high = low - margin, high + margin

    def x_of(t):
        return left + (width - left - right) * t / duration

    def y_of(s):
        return top + (height - top - bottom) * (high - s) / (high - low)

    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    title, small = _font(15), _font(11)
    true_start, true_end = sequence["spans"][query]
    draw.rectangle([x_of(true_start), top, x_of(true_end), height - bottom], fill=(214, 240, 214))
    for number, (start, end) in enumerate(sequence["spans"]):
        for edge in (start, end):
            draw.line([x_of(edge), top, x_of(edge), height - bottom], fill=(200, 200, 200), width=1)
        label = sequence["actions"][number].replace("_", " ")
        draw.text(
            ((x_of(start) + x_of(end)) / 2, height - bottom + 26), label, fill=(90, 90, 90), font=small, anchor="mm"
        )
    draw.line([left, height - bottom, width - right, height - bottom], fill="black")
    draw.line([left, top, left, height - bottom], fill="black")
    for second in range(0, int(duration) + 1, 2):
        draw.line([x_of(second), height - bottom, x_of(second), height - bottom + 4], fill="black")
        draw.text((x_of(second), height - bottom + 12), f"{second}", fill="black", font=small, anchor="mm")
    draw.text(((left + width - right) / 2, height - bottom + 44), "time (s)", fill="black", font=small, anchor="mm")
    draw.text((left - 6, top - 22), "cosine", fill="black", font=small, anchor="rm")
    for tick in np.linspace(low + margin, high - margin, 4):
        draw.text((left - 6, y_of(tick)), f"{tick:.2f}", fill="black", font=small, anchor="rm")
    points = [(x_of(t), y_of(s)) for t, s in zip(times, best)]
    draw.line(points, fill=(40, 90, 200), width=2)
    start, end = top1
    bar = top - 12
    draw.rectangle([x_of(start), bar - 4, x_of(end), bar + 4], fill=(230, 120, 30))
    iou = span_iou(top1, (true_start, true_end))
    draw.text((left, 10), f'query: "{sequence["captions"][query]}"', fill="black", font=title)
    legend = (
        f"blue: cosine similarity of the best window centred at each time (windows {np.min(scored.end - scored.start):g}-"
        f"{np.max(scored.end - scored.start):g} s); green: true span "
        f"{true_start:.2f}-{true_end:.2f} s; orange bar: retrieved top-1 {start:.1f}-{end:.1f} s (IoU {iou:.2f})"
    )
    draw.text((left, 32), legend, fill=(60, 60, 60), font=small)
    draw.text(
        (left, height - 16),
        "clips joined with 0.5 s transitions; grey lines: clip boundaries",
        fill=(90, 90, 90),
        font=small,
    )
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    image.save(path, optimize=True)


# ----------------------------------------------------------------------------------------------- the run
def load_model(args, config: dict, data):
    if config["model"] == "tiny":
        tokenizer = build_word_tokenizer([c for row in data["test"]["captions"] for c in row])
        torch.manual_seed(0)
        model = MotionTextModel(tiny_config(len(tokenizer), motion_config={"num_frames": 64})).eval()
        processor = MotionPatchProcessor(tokenizer=tokenizer, skeleton="humanml3d", num_frames=64)
        return model, processor, "a random tiny model (64 frames)"
    if not os.path.isdir(args.model):
        raise SystemExit(
            f"error: no model at {args.model}; train the demo model first (README, 'Two commands'), or give --model"
        )
    model, processor = load_model_and_processor(args.model)
    return model, processor, os.path.relpath(os.path.abspath(args.model), REPO_ROOT)


def parse_args(argv):
    parser = benchmark_parser(__doc__, seed=True)
    parser.add_argument("--model", default=str(DEMO_MODEL), help="saved model folder (default: the trained demo)")
    parser.add_argument(
        "--picture",
        help=f"write the similarity-over-time picture here (default: {PICTURE.relative_to(REPO_ROOT)}, full runs only)",
    )
    parser.add_argument(
        "--export_sequences",
        metavar="DIR",
        help="only write the built sequences to DIR (sequence_NNN.npy, 20 fps, and sequences.json with their clips' "
        "spans and captions), to try `motionpatches moments` on; no model is loaded",
    )
    return parser.parse_args(argv)


def export_sequences(sequences: list[dict], folder) -> None:
    """Each sequence as a `.npy` file and one `sequences.json` describing them all (written last, each file whole)."""
    os.makedirs(folder, exist_ok=True)
    described = []
    for sequence in sequences:
        name = f"sequence_{sequence['number']:03d}.npy"
        with atomic_path(os.path.join(folder, name)) as temporary:
            np.save(temporary, sequence["motion"])
        clips = zip(sequence["ids"], sequence["actions"], sequence["captions"], sequence["spans"])
        described.append(
            {
                "file": name,
                "seconds": len(sequence["motion"]) / FPS,
                "clips": [{"id": i, "action": a, "caption": c, "start": s, "end": e} for i, a, c, (s, e) in clips],
            }
        )
    write_text_atomically(
        os.path.join(folder, "sequences.json"), json.dumps({"fps": FPS, "sequences": described}, indent=1)
    )
    print(f"wrote {len(sequences)} sequences to {folder}")


def main(argv=None) -> dict:
    args = parse_args(argv)
    config = QUICK if args.quick else FULL
    started = cpu_snapshot()
    configure_threads()
    data = load_demo_dataset(*config["demo_sizes"], seed=0)
    sequences = build_sequences(data["test"], config, facing_joints(resolve_skeleton("humanml3d")), args.seed)
    if args.export_sequences:
        export_sequences(sequences, args.export_sequences)
        return {"sequences": sequences}
    model, processor, described = load_model(args, config, data)
    lengths = window_lengths(processor, config["window_seconds"]) / processor.feature_extractor.fps
    fixed_seconds = fixed_length_seconds(data["train"], lengths)
    rng = np.random.default_rng([args.seed, 2])
    per_query = {
        "ours": [],
        "ours, windows not placed": [],
        "fixed-length window (model)": [],
        "fixed-length window, centred (no model)": [],
        "random span": [],
    }
    answers = []
    begin = time.perf_counter()
    for sequence in sequences:
        found = score_sequence(model, processor, sequence, config, fixed_seconds)
        duration = len(sequence["motion"]) / FPS
        for query, truth in enumerate(sequence["spans"]):
            for method in per_query:
                if method == "random span":
                    per_query[method].append(random_metrics(duration, truth, lengths, rng))
                else:
                    per_query[method].append(spans_metrics(found[method][query], truth))
        answers.append(found)
    search_s = time.perf_counter() - begin
    windows = sum(len(found["_scores"].start) for found in answers)
    # the API end to end on one sequence must give the spans the benchmark scored
    check = search_moments(
        model,
        processor,
        sequences[0]["motion"],
        sequences[0]["captions"],
        k=5,
        window_seconds=config["window_seconds"],
        stride_seconds=STRIDE_SECONDS,
        fps=FPS,
        nms_iou=NMS_IOU,
    )
    assert [[(m.start, m.end) for m in hits] for hits in check] == answers[0]["ours"], "search_moments disagrees"
    rows = summarise(per_query)
    durations = [len(s["motion"]) / FPS for s in sequences]
    clip_lengths = [b - a for s in sequences for a, b in s["spans"]]
    table = (
        f"{len(sequences)} sequences of {config['clips'][0]}-{config['clips'][1]} demo test clips (distinct actions) "
        f"joined with {TRANSITION_SECONDS} s transitions; every clip queried with its first caption\n"
        + format_table(rows, COLUMNS)
    )
    ours = next(r for r in rows if r["method"] == "ours")
    baselines = [
        r
        for r in rows
        if r["method"] in ("fixed-length window (model)", "random span", "fixed-length window, centred (no model)")
    ]
    beaten = all(float(ours[c]) > float(b[c]) for b in baselines for c in COLUMNS[1:4])
    notes = "\n".join(
        [
            f"- Model: {described}. Windows {', '.join(f'{s:g}' for s in lengths)} s every {STRIDE_SECONDS} s; "
            f"temporal NMS at IoU {NMS_IOU} (R@5 only: the top-1 span is the best window either way).",
            f"- Sequences {min(durations):.1f}-{max(durations):.1f} s (mean {np.mean(durations):.1f} s); clips "
            f"{min(clip_lengths):.1f}-{max(clip_lengths):.1f} s (mean {np.mean(clip_lengths):.1f} s). Seed {args.seed}.",
            f"- Fixed length: {fixed_seconds:g} s, the window length nearest the median duration of the "
            f"{len(data['train'])} demo train clips.",
            f"- Random span: {RANDOM_DRAWS} draws per query (length among the window lengths that fit, start uniform).",
            f"- Ours beats every baseline on R@1 at both IoU thresholds and on mIoU: {'yes' if beaten else 'NO'}.",
            f"- Scoring the {windows:,} windows of the {len(sequences)} sequences twice (both placements, the texts of a "
            f"sequence embedded once): {search_s:.0f} s, {2 * windows / search_s:.0f} windows/s.",
            load_note(started),
        ]
    )
    print(f"\n{table}\n\n{notes}")
    picture = args.picture or (None if args.quick else str(PICTURE))
    if picture:
        sequence = sequences[0]
        query = 1  # the second clip: the first sequence's first clip with neighbours on both sides
        draw_picture(sequence, query, answers[0]["_scores"], answers[0]["ours"][query][0], picture)
        print(f"wrote {picture}")
    if not args.no_write:
        append_results("Moment retrieval: spans of demo clips in long built sequences", table, notes)
    return {
        "rows": rows,
        "per_query": per_query,
        "sequences": sequences,
        "answers": answers,
        "fixed_seconds": fixed_seconds,
        "lengths": lengths,
        "beaten": beaten,
        "table": table,
        "notes": notes,
    }


if __name__ == "__main__":
    main()

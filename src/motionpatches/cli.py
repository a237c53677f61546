"""`motionpatches`: embed motion files with a saved model, index them once, search them by text or by motion.

    motionpatches embed --model DIR motions/ extra.bvh --out embeddings.npz
    motionpatches search --model DIR motions/ --query "a person waves with the left hand" --top_k 5
    motionpatches index --model DIR motions/ --out motions-index          # or --dataset_name demo --split test
    motionpatches search --index motions-index --query "a person waves with the left hand" --motion clip.bvh
    motionpatches app --model DIR --index motions-index                    # the web app (extra `app`)
    motionpatches export onnx --model DIR --out DIR-onnx [--int8]          # both towers for ONNX Runtime (extra `onnx`)
    motionpatches search --index motions-index --onnx DIR-onnx --query "a person jumps"   # queries embedded by it
    motionpatches score --model DIR --generated gen/ --texts texts.txt --real real/ --output_file report.json
    motionpatches moments --model DIR long_take.npy --query "a person waves" --top_k 5   # time spans in long motions

`search` with folders embeds them on every call; `index` embeds them once into a `MotionIndex` folder (a
`datasets.Dataset` with a FAISS index, see `motionpatches.index`), and running it again on the same `--out`
embeds only new or changed files. `search --index` answers text queries (`--query`), motion queries
(`--motion`, similar motions) and, with `--captions`, ranks the index's captions for each `--motion`.

Motions are `.npy` joint positions `(T, J, 3)` (or HumanML3D / KIT-ML feature rows, `--motion_format`),
`.bvh` files, or `.npz` SMPL-family parameters (`--body_model_dir`); one folder may mix them. `--fps` gives
the frame rate of files that do not carry one (default: the model's). `.npy` and `.npz` files are in the
`--skeleton` given, else the model's; a BVH file is in its rig's skeleton (or `--skeleton` when that lists
exactly the rig's joint names, for rigs whose names are not recognised). Files whose skeleton is not the
model's are embedded with that skeleton's chains and per-joint statistics of those files, one group per
skeleton; the output keeps the order of the files.

Each file is read and checked on its own. A file that cannot be used (damaged, truncated, NaN, wrong
shape) is skipped: the files read and skipped are counted on stderr, each skipped file listed with its
reason, and `embed` writes them to `<out stem>.skipped.json` beside `--out`. `--on_error raise` stops at
the first such file instead. Outputs are replaced whole, so a crash leaves the previous ones.

Models are loaded without running code saved in their folder; `--trust_remote_code` allows it.
"""

import argparse
import logging
import os
import sys
from typing import NamedTuple

import numpy as np
import torch

from motionpatches.arguments import (
    add_motion_file_arguments,
    add_threads_argument,
    add_trust_remote_code_argument,
    motion_file_options,
    non_negative_int,
    output_path,
    positive_fps,
    positive_int,
    positive_seconds,
)
from motionpatches.atomic import atomic_path
from motionpatches.index import INDEX_FILE, INDEX_TYPES, MotionIndex, check_index_folder, push_index
from motionpatches.loading import load_model_and_processor
from motionpatches.processors.motion_files import MotionFileError
from motionpatches.processors.motion_readers import file_options_for_skeleton
from motionpatches.skipped import REPORT_SUFFIX, SkippedFiles, bvh_rig, read_positions, report_skipped
from motionpatches.threads import configure_threads

MOTION_SUFFIXES = (".npy", ".bvh", ".npz")


class MotionInput(NamedTuple):
    index: int  # the file's place among the files given, which the output keeps
    path: str
    skeleton: object  # a Skeleton, or None for the model's
    fps: float | None  # the file's own rate, else --fps; None: the model's


class Run(NamedTuple):
    """What every step after reading the command line needs."""

    options: object  # MotionFileOptions
    on_error: str
    skipped: SkippedFiles

    def attempt(self, path: str, function, *args):
        return self.skipped.attempt(path, function, *args, on_error=self.on_error)


# ----------------------------------------------------------------------------- files and skeletons
def motion_files(paths: list[str]) -> list[str]:
    """Files given directly, plus every `.npy` / `.bvh` / `.npz` inside given folders (sorted, recursive)."""
    found = []
    for path in paths:
        if os.path.isdir(path):
            for folder, _, names in sorted(os.walk(path)):
                found += [os.path.join(folder, n) for n in sorted(names) if n.lower().endswith(MOTION_SUFFIXES)]
        elif os.path.isfile(path):
            found.append(path)
        else:
            raise FileNotFoundError(f"no such motion file or folder: {path}")
    if not found:
        raise ValueError(f"no .npy, .bvh or .npz motions in {paths}")
    return found


def is_bvh(path: str) -> bool:
    return path.lower().endswith(".bvh")


def rig_skeleton(path: str, joint_names, given, options, rigs: dict):
    """The skeleton of a BVH file: `--skeleton` when it names exactly the rig's joints, else the rig's own
    (one per set of joint names: files of one rig share it)."""
    if given is not None and given.joint_names == tuple(joint_names):
        return given
    if tuple(joint_names) not in rigs:
        try:
            rigs[tuple(joint_names)] = bvh_rig(path, options)
        except ValueError as err:
            if isinstance(err, MotionFileError):
                raise
            raise MotionFileError(
                path,
                f"{path}: {err} On the command line, pass --skeleton with a JSON skeleton listing this rig's "
                "joint names and chains.",
                "unrecognised rig",
            ) from None
    return rigs[tuple(joint_names)]


def scan_files(files: list[str], skeleton: str | None, fps: float | None, run: Run) -> list[MotionInput]:
    """Every file read and checked once, with its skeleton and frame rate; the others are recorded in `run.skipped`."""
    from motionpatches.processors import resolve_skeleton

    given = resolve_skeleton(skeleton) if skeleton else None
    options = file_options_for_skeleton(run.options, given)  # SMPL files scanned in the joint set later read
    rigs = {}

    def scan(index: int, path: str) -> MotionInput:
        motion = read_positions(path, options)
        file_skeleton = rig_skeleton(path, motion.joint_names, given, run.options, rigs) if is_bvh(path) else given
        return MotionInput(index, path, file_skeleton, motion.fps or fps)

    scanned = (run.attempt(path, scan, index, path) for index, path in enumerate(files))
    return [item for item in scanned if item is not None]


def skeleton_key(skeleton) -> tuple | None:
    """Skeletons with the same joints and chains share statistics; a BVH rig's name is only its file's."""
    if skeleton is None:
        return None
    return skeleton.joint_names, tuple(sorted(skeleton.chains.items()))


def skeleton_groups(inputs: list[MotionInput]) -> dict:
    """{key: (skeleton, its inputs)}, in order of first appearance."""
    groups = {}
    for item in inputs:
        groups.setdefault(skeleton_key(item.skeleton), (item.skeleton, []))[1].append(item)
    return groups


def read_input(item: MotionInput, feature_extractor, run: Run) -> np.ndarray | None:
    """The positions of a scanned file checked against the skeleton of `feature_extractor`, read as it reads
    files (SMPL files give its joint set), or None once recorded (the file may have changed since the scan)."""
    skeleton = feature_extractor.skeleton
    options = file_options_for_skeleton(run.options, skeleton)
    num_joints = skeleton.num_joints
    motion = run.attempt(item.path, read_positions, item.path, options, num_joints)
    return None if motion is None else motion.values


def processor_for(processor, skeleton, group: list[MotionInput], run: Run):
    """The model's processor, or one for `skeleton` with the statistics of `group` when that is another skeleton."""
    if skeleton is None or skeleton_key(skeleton) == skeleton_key(processor.feature_extractor.skeleton):
        return processor
    feature_extractor = processor.feature_extractor.for_skeleton(skeleton)
    feature_extractor.fit_statistics(_motions_at_model_rate(feature_extractor, group, run))
    return type(processor)(feature_extractor=feature_extractor, tokenizer=processor.tokenizer)


def _motions_at_model_rate(feature_extractor, group: list[MotionInput], run: Run):
    from motionpatches.processors.feature_extraction_motionpatches import resample_frame_rate

    for item in group:
        values = read_input(item, feature_extractor, run)
        if values is not None:
            yield resample_frame_rate(values, item.fps or feature_extractor.fps, feature_extractor.fps)


# ----------------------------------------------------------------------------- embedding
@torch.inference_mode()
def embed_arrays(model, processor, arrays: list[np.ndarray], rates: list) -> np.ndarray:
    inputs = processor(motions=arrays, motion_fps=rates, return_tensors="pt")
    features = model.get_motion_features(motion_values=inputs["motion_values"]).pooler_output
    return torch.nn.functional.normalize(features, dim=-1).float().numpy()


def embed_one(model, processor, item: MotionInput, values: np.ndarray) -> np.ndarray:
    try:
        return embed_arrays(model, processor, [values], [item.fps])[0]
    except ValueError as err:  # e.g. features beyond the model's range: a unit mistake in this file
        raise MotionFileError(item.path, f"{item.path}: {err}", "refused by the processor") from None


def embed_loaded(model, processor, loaded: list[tuple[MotionInput, np.ndarray]], run: Run) -> dict[int, np.ndarray]:
    """{input index: embedding}; a batch the processor refuses is embedded again file by file, so that only the
    file it refuses is lost."""
    if len(loaded) == 1:
        item, values = loaded[0]
        vector = run.attempt(item.path, embed_one, model, processor, item, values)
        return {} if vector is None else {item.index: vector}
    try:
        vectors = embed_arrays(model, processor, [values for _, values in loaded], [item.fps for item, _ in loaded])
    except ValueError:
        return {index: v for one in loaded for index, v in embed_loaded(model, processor, [one], run).items()}
    return {item.index: vector for (item, _), vector in zip(loaded, vectors)}


def embed_inputs(model, processor, inputs: list[MotionInput], batch_size: int, run: Run) -> dict[int, np.ndarray]:
    """{input index: embedding} of every input that could be embedded, each skeleton group through its own
    feature extractor; the files are read again batch by batch, so memory holds one batch."""
    embedded = {}
    for skeleton, group in skeleton_groups(inputs).values():
        group_processor = processor_for(processor, skeleton, group, run)
        extractor = group_processor.feature_extractor
        for start in range(0, len(group), batch_size):
            batch = [(item, read_input(item, extractor, run)) for item in group[start : start + batch_size]]
            loaded = [(item, values) for item, values in batch if values is not None]
            if loaded:
                embedded.update(embed_loaded(model, group_processor, loaded, run))
    return embedded


@torch.inference_mode()
def embed_texts(model, processor, texts: list[str]) -> np.ndarray:
    features = model.get_text_features(**processor(text=texts, return_tensors="pt")).pooler_output
    return torch.nn.functional.normalize(features, dim=-1).float().numpy()


def write_embeddings(path: str, embeddings: np.ndarray, files: list[str]) -> None:
    with atomic_path(path) as temporary, open(temporary, "wb") as f:
        np.savez(f, embeddings=embeddings, files=np.array(files))


def print_search(queries: list[str], text_embeddings: np.ndarray, motions: np.ndarray, files, top_k: int) -> None:
    for query, text in zip(queries, text_embeddings):
        scores = motions @ text
        print(f'"{query}"')
        for rank, index in enumerate(np.argsort(-scores, kind="stable")[:top_k], start=1):
            print(f"  {rank:>2}. {scores[index]:.3f}  {files[index]}")


# ----------------------------------------------------------------------------- indexes
def index_folder(path: str) -> str:
    """`--out` of `index`: a folder (made if missing) in an existing, writable folder; checked before any work."""
    path = os.path.normpath(path)
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise FileNotFoundError(f"--out {path}: the folder {parent} does not exist; create it first")
    if not os.access(parent, os.W_OK):
        raise PermissionError(f"--out {path}: the folder {parent} is not writable")
    return check_index_folder(path)


def load_dataset_rows(args, run: Run):
    """The rows (`id`, `motion`, `captions`) of `--dataset_name`'s `--split`, for `index`.

    The dataset catalog and the demo generator belong to the training package, which the library never
    imports. The command line is an application and only this flag needs them, so the catalog is imported
    here, when the flag is given: every other use of `motionpatches` (and of this command) runs without
    loading `motionpatches.training` (tests/test_packaging.py checks both).
    """
    from motionpatches.training.data.catalog import load_named_dataset

    splits, _ = load_named_dataset(
        args.dataset_name, dataset_dir=args.dataset_dir, options=run.options, on_error=run.on_error, skipped=run.skipped
    )
    if args.split not in splits:
        raise ValueError(f"dataset {args.dataset_name!r} has no split {args.split!r}; it has {sorted(splits)}")
    rows = splits[args.split]
    return rows.select_columns([c for c in ("id", "motion", "captions", "fps") if c in rows.column_names])


def previous_index(out: str) -> MotionIndex | None:
    """The index already at `--out`, whose unchanged motions need no embedding; None when there is none or
    it cannot be read (it is then replaced whole)."""
    if not os.path.isfile(os.path.join(out, INDEX_FILE)):
        return None
    try:
        return MotionIndex.load(out)
    except (OSError, ValueError, ImportError) as err:
        print(f"the index at {out} cannot be read ({err}); building it anew", file=sys.stderr)
        return None


def distributed_state():
    """The `Accelerator` of an `accelerate launch` with several processes, else None (no process group to set up).

    Processes that accelerate would run each alone (no GPU, and ACCELERATE_USE_CPU=1 not set) are refused: each
    would embed the whole gallery and write the same index."""
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched == 1:
        return None
    from accelerate import Accelerator

    accelerator = Accelerator()  # reads ACCELERATE_USE_CPU, which accelerate's PartialState alone does not
    if launched > accelerator.num_processes:
        raise ValueError(
            f"{launched} processes were launched, but accelerate found no GPU for them and would run each alone. "
            f"On CPU: ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes {launched} -m motionpatches.cli index ..."
        )
    return accelerator


def run_index(args) -> int:
    if bool(args.paths) == bool(args.dataset_name):
        raise ValueError("index needs motion files or folders, or --dataset_name (not both)")
    out = index_folder(args.out)
    run = Run(motion_file_options(args), args.on_error, SkippedFiles())
    sources = load_dataset_rows(args, run) if args.dataset_name else motion_files(args.paths)
    model, processor = load_model_and_processor(args.model, trust_remote_code=args.trust_remote_code)
    state = distributed_state()
    if state is not None:
        model.to(state.device)
    index = MotionIndex.build(
        model,
        processor,
        sources,
        file_options=run.options,
        on_error=run.on_error,
        skipped=run.skipped,
        batch_size=args.batch_size,
        index_type=args.index_type,
        previous=previous_index(out),
        accelerator=state,
        model_name_or_path=args.model,
    )
    if state is not None and not state.is_main_process:
        return 0  # the main process writes the index
    if args.dataset_name:
        index.info["source"] = f"dataset {args.dataset_name}, split {args.split}"
    index.save(out)
    counts = index.build_counts
    shards = counts["shard_sizes"]
    on = f" on {len(shards)} processes ({' + '.join(map(str, shards))} motions)" if len(shards) > 1 else ""
    print(f"{len(index)} motions indexed in {out}: {counts['embedded']} embedded{on}, {counts['reused']} unchanged")
    report_skipped(run.skipped, out)
    if args.push_to_hub:
        push_index(out, args.push_to_hub)
        print(f"pushed {out} to the dataset repository {args.push_to_hub}")
    return 0


def load_search_index(args) -> MotionIndex:
    model = processor = None
    if args.model or args.onnx or args.int8:
        model, processor = query_model(args)
    index = MotionIndex.load(args.index, trust_remote_code=args.trust_remote_code)
    if model is not None:
        index.use_model(model, processor, args.onnx or args.model)
    index.set_search_parameters(nprobe=args.nprobe, ef_search=args.ef_search)
    return index


def hit_line(rank: int, hit) -> str:
    described = hit.captions[0] if hit.captions else (hit.path or "")
    return f"  {rank:>2}. {hit.score:.3f}  {hit.id}  {described}".rstrip()


def run_index_search(args) -> int:
    if not args.query and not args.motion:
        raise ValueError("search --index needs --query TEXT or --motion FILE (each repeatable)")
    if args.captions and not args.motion:
        raise ValueError("--captions ranks the index's captions for each --motion FILE; give one")
    index = load_search_index(args)
    options = motion_file_options(args)
    for query, hits in zip(args.query or [], index.search_text(args.query, args.top_k) if args.query else []):
        print(f'"{query}"')
        print("\n".join(hit_line(rank, hit) for rank, hit in enumerate(hits, start=1)))
    if args.motion and args.captions:
        for path, pairs in zip(args.motion, index.search_captions(args.motion, args.top_k, file_options=options)):
            print(f"motion {path}")
            print("\n".join(f"  {rank:>2}. {score:.3f}  {text}" for rank, (text, score) in enumerate(pairs, start=1)))
    elif args.motion:
        rates = [args.fps if path.lower().endswith(".npy") else None for path in args.motion]  # others carry theirs
        hits = index.search_motion(args.motion, args.top_k, file_options=options, motion_fps=rates)
        for path, found in zip(args.motion, hits):
            print(f"motion {path}")
            print("\n".join(hit_line(rank, hit) for rank, hit in enumerate(found, start=1)))
    return 0


def run_export(args) -> int:
    """`export onnx`: the exporter lives in `motionpatches.onnx_export` (extra `onnx`), imported only when asked for."""
    from motionpatches.onnx_export import check_out_folder, export_onnx

    out = check_out_folder(args.out)  # before the model is loaded
    model, processor = load_model_and_processor(args.model, trust_remote_code=args.trust_remote_code)
    export = export_onnx(model, processor, out, int8=args.int8, opset=args.opset, model_name_or_path=args.model)
    diffs = ", ".join(f"{tower} {diff:.1e}" for tower, diff in export.max_abs_diff.items())
    print(f"ONNX towers written to {out}: {', '.join(export.files.values())}")
    print(f"ONNX Runtime fp32 vs PyTorch, max abs difference of the embeddings: {diffs}")
    if export.int8_min_cosine:
        cosines = ", ".join(f"{tower} {value:.4f}" for tower, value in export.int8_min_cosine.items())
        print(f"int8 vs fp32, lowest cosine similarity of the embeddings: {cosines}")
    return 0


def query_model(args):
    """(model, processor) for `search`: the ONNX Runtime towers of `--onnx` (extra `onnx`), else `--model`."""
    onnx, int8 = getattr(args, "onnx", None), getattr(args, "int8", False)
    if onnx and args.model:
        raise ValueError("give --model or --onnx, not both")
    if int8 and not onnx:
        raise ValueError("--int8 picks the int8 towers of an ONNX export: give --onnx DIR")
    if onnx:
        from motionpatches.onnx_inference import load_onnx_model_and_processor

        return load_onnx_model_and_processor(onnx, int8=int8)
    return load_model_and_processor(args.model, trust_remote_code=args.trust_remote_code)


def run_app(args) -> int:
    """The web app lives in `motionpatches.app` (extra `app`: Gradio), imported only when asked for."""
    try:
        from motionpatches import app
    except ImportError as err:
        raise ImportError(f'the app needs Gradio ({err}): pip install "motionpatches[app]"') from err
    return app.run(args)


# ----------------------------------------------------------------------------- score
class MotionSet(NamedTuple):
    """The motions of `score`'s --generated, --real or one --multimodality subfolder: files, or the arrays of an
    .npz archive. `keys` name them for the texts file (paths relative to the folder given, or "0", "1", ... in
    an archive), `labels` in the report."""

    keys: list[str]
    labels: list[str]
    files: list[str] | None
    arrays: list[np.ndarray] | None


def is_motion_archive(path: str) -> bool:
    """An .npz of generated motions (a `motions` array), not one AMASS motion (its `poses`)."""
    if not (path.lower().endswith(".npz") and os.path.isfile(path)):
        return False
    try:
        with np.load(path, allow_pickle=False) as archive:
            return "motions" in archive.files
    except (OSError, ValueError):
        return False  # read, and refused with its reason, as a motion file


def load_motion_archive(path: str) -> MotionSet:
    """`motions` (N, T, J, 3) joint positions or (N, T, 263 | 251) feature rows, and optionally `lengths` (N,),
    the real frames of each (generators pad a batch to its longest motion)."""
    with np.load(path, allow_pickle=False) as archive:
        motions = archive["motions"]
        lengths = archive["lengths"] if "lengths" in archive.files else None
    if motions.ndim not in (3, 4) or len(motions) == 0 or not np.issubdtype(motions.dtype, np.number):
        raise ValueError(
            f"{path}: `motions` has shape {motions.shape} ({motions.dtype}); expected numbers shaped (N, frames, "
            "joints, 3) or (N, frames, 263 | 251) feature rows"
        )
    if lengths is None:
        lengths = np.full(len(motions), motions.shape[1])
    if lengths.shape != (len(motions),) or not np.issubdtype(lengths.dtype, np.integer):
        raise ValueError(f"{path}: `lengths` must hold one integer per motion ({len(motions)}); got {lengths.shape}")
    bad = [i for i, length in enumerate(lengths) if not 1 <= length <= motions.shape[1]]
    if bad:
        raise ValueError(f"{path}: lengths[{bad[0]}] = {lengths[bad[0]]} is not in 1..{motions.shape[1]} (the frames)")
    arrays = [motion[:length] for motion, length in zip(motions, lengths)]
    keys = [str(i) for i in range(len(arrays))]
    return MotionSet(keys, [f"{path}[{i}]" for i in keys], None, arrays)


def load_motion_set(paths: list[str]) -> MotionSet:
    """One .npz archive of motions, or motion files and folders (as `embed` takes them)."""
    if len(paths) == 1 and is_motion_archive(paths[0]):
        return load_motion_archive(paths[0])
    files = motion_files(paths)
    root = paths[0] if len(paths) == 1 and os.path.isdir(paths[0]) else None
    keys = [os.path.relpath(f, root) if root else f for f in files]
    return MotionSet(keys, files, files, None)


def read_score_texts(path: str, keys: list[str]) -> list[str]:
    """The text of each generated motion: a .txt file (one text per line, in the order of the motions), a .json
    object {file: text} (a file's path relative to --generated, with or without its suffix; "0", "1", ... for
    an .npz archive), or a folder of HumanML3D-style texts/<name>.txt (the first caption: the first line up to
    its first "#")."""
    import json

    if os.path.isdir(path):
        texts, missing = [], []
        for key in keys:
            caption_file = os.path.join(path, os.path.splitext(key)[0] + ".txt")
            lines = _text_lines(caption_file) if os.path.isfile(caption_file) else []
            (texts if lines else missing).append(lines[0].split("#")[0].strip() if lines else caption_file)
        if missing:
            raise ValueError(f"--texts {path}: no caption for {len(missing)} generated motions: {_listed(missing)}")
        return texts
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--texts {path}: no such file or folder")
    if path.lower().endswith(".json"):
        with open(path, encoding="utf-8") as f:
            try:
                mapping = json.load(f)
            except json.JSONDecodeError as err:
                raise ValueError(f"--texts {path} is not valid JSON ({err})") from None
        if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
            raise ValueError(f"--texts {path} must be a JSON object mapping each generated file to its text")
        found = [mapping.get(key, mapping.get(os.path.splitext(key)[0])) for key in keys]
        missing = [key for key, text in zip(keys, found) if text is None]
        unused = sorted(set(mapping) - set(keys) - {os.path.splitext(key)[0] for key in keys})
        if missing:
            raise ValueError(f"--texts {path} has no text for {len(missing)} generated motions: {_listed(missing)}")
        if unused:
            raise ValueError(
                f"--texts {path} names {len(unused)} files that are not generated motions: {_listed(unused)}"
            )
        return found
    lines = _text_lines(path)
    while lines and not lines[-1].strip():
        lines.pop()
    if len(lines) != len(keys):
        raise ValueError(
            f"--texts {path} has {len(lines)} lines for {len(keys)} generated motions: one text per line, in the "
            "order of the generated files (sorted; see the report's `motions`)"
        )
    empty = [number for number, line in enumerate(lines, start=1) if not line.strip()]
    if empty:
        raise ValueError(f"--texts {path}: line {empty[0]} is empty; every generated motion needs its text")
    return [line.strip() for line in lines]


def _text_lines(path: str) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return f.read().splitlines()


def _listed(items: list[str], limit: int = 5) -> str:
    return ", ".join(items[:limit]) + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")


def set_features(model, processor, motion_set: MotionSet, args, run: Run, name: str) -> dict[int, np.ndarray]:
    """{index in the set: un-normalised motion features}. Files that cannot be used are recorded in `run` (or
    stop the command, --on_error raise); the arrays of an archive are refused naming their index."""
    from motionpatches.generation_metrics import motion_features

    if motion_set.arrays is not None:
        features = motion_features(
            model, processor, motion_set.arrays, motion_fps=args.fps, batch_size=args.batch_size, name=name
        )
        return dict(enumerate(features))
    found = {}
    inputs = scan_files(motion_set.files, args.skeleton, args.fps, run)
    for skeleton, group in skeleton_groups(inputs).values():
        group_processor = processor_for(processor, skeleton, group, run)
        extractor = group_processor.feature_extractor
        for start in range(0, len(group), args.batch_size):
            batch = [(item, read_input(item, extractor, run)) for item in group[start : start + args.batch_size]]
            loaded = [(item, values) for item, values in batch if values is not None]
            if loaded:
                found.update(loaded_features(model, group_processor, loaded, run))
    run.skipped.read += len(found)
    return found


def loaded_features(model, processor, loaded: list[tuple[MotionInput, np.ndarray]], run: Run) -> dict[int, np.ndarray]:
    """{input index: features} of read files; when the processor refuses the batch, file by file, so that only
    the file it refuses is lost."""
    from motionpatches.generation_metrics import motion_features

    def one(item: MotionInput, values: np.ndarray) -> np.ndarray:
        return motion_features(model, processor, [values], motion_fps=[item.fps], labels=[item.path])[0]

    try:
        values = [values for _, values in loaded]
        features = motion_features(model, processor, values, motion_fps=[item.fps for item, _ in loaded])
        return {item.index: vector for (item, _), vector in zip(loaded, features)}
    except ValueError:
        found = {item.index: run.attempt(item.path, one, item, values) for item, values in loaded}
        return {index: vector for index, vector in found.items() if vector is not None}


def multimodality_sets(folder: str) -> list[MotionSet]:
    """One motion set per subfolder of `folder`: the motions generated from one text."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"--multimodality {folder}: no such folder")
    subfolders = sorted(e.path for e in os.scandir(folder) if e.is_dir())
    if not subfolders:
        raise ValueError(
            f"--multimodality {folder} has no subfolders; give one subfolder per text, holding the motions "
            "generated from that text"
        )
    return [load_motion_set([sub]) for sub in subfolders]


def run_score(args) -> int:
    import json

    from motionpatches.atomic import write_text_atomically
    from motionpatches.generation_metrics import (
        format_generation_metrics,
        generation_metrics_from_embeddings,
        text_features,
        unavailable_metrics,
    )

    out = output_path(args.output_file, "--output_file", ".json")
    generated = load_motion_set([args.generated])
    texts = read_score_texts(args.texts, generated.keys)
    real = load_motion_set(args.real) if args.real else None
    groups = multimodality_sets(args.multimodality) if args.multimodality else None
    unavailable_metrics(  # a metric asked for that these inputs cannot give is refused before any work
        len(generated.keys),
        None if real is None else len(real.keys),
        [len(group.keys) for group in groups or ()],
        batch_size=args.r_precision_batch_size,
        requested=args.metrics,
    )
    run = Run(motion_file_options(args), args.on_error, SkippedFiles())
    model, processor = load_model_and_processor(args.model, trust_remote_code=args.trust_remote_code)

    features = set_features(model, processor, generated, args, run, f"{args.generated}: motions")
    kept = sorted(features)
    if not kept:
        run.skipped.print()
        raise ValueError("none of the generated motions could be used (listed above); nothing was written")
    real_features = None
    if real is not None:
        found = set_features(model, processor, real, args, run, f"{args.real[0]}: motions")
        real_features = np.stack([found[i] for i in sorted(found)]) if found else None
    group_features = None
    if groups is not None:
        group_features = []
        for number, group in enumerate(groups):
            found = set_features(
                model, processor, group, args, run, f"{args.multimodality} subfolder {number}: motions"
            )
            if found:
                group_features.append(np.stack([found[i] for i in sorted(found)]))
    result = generation_metrics_from_embeddings(
        text_features(model, processor, [texts[i] for i in kept], batch_size=args.batch_size),
        np.stack([features[i] for i in kept]),
        real_features,
        multimodality_features=group_features,
        batch_size=args.r_precision_batch_size,
        replications=args.replications,
        seed=args.seed,
        diversity_pairs=args.diversity_pairs,
        multimodality_pairs=args.multimodality_pairs,
        metrics=args.metrics,
    )
    metrics = {key: value for key, value in result.items() if key not in ("unavailable", "settings")}
    report = {
        "model": args.model,
        "generated": args.generated,
        "texts": args.texts,
        "real": args.real,
        "multimodality": args.multimodality,
        "metrics": metrics,
        "unavailable": result["unavailable"],
        "settings": result["settings"],
        "skipped_files": len(run.skipped),
        "motions": [{"file": generated.labels[i], "text": texts[i]} for i in kept],
    }
    write_text_atomically(out, json.dumps(report, indent=2) + "\n")
    print(format_generation_metrics(result))
    print(f"{len(kept)} generated motions scored; report written to {out}")
    report_skipped(run.skipped, out)
    return 0


# ----------------------------------------------------------------------------- command line
def add_model_arguments(command, required: bool = True, help_text: str = "saved model folder or Hub id") -> None:
    command.add_argument("--model", required=required, help=help_text)
    add_trust_remote_code_argument(command)
    add_threads_argument(command)


def add_embed_and_search_parsers(commands) -> None:
    for name, help_text in (
        ("embed", "write motion embeddings to an .npz file"),
        ("search", "rank motions by a text query: files and folders, or an index (--index)"),
    ):
        command = commands.add_parser(name, help=help_text)
        is_search = name == "search"
        command.add_argument(
            "paths", nargs="*" if is_search else "+", help=".npy / .bvh / .npz files or folders of them (may mix)"
        )
        add_model_arguments(
            command,
            required=not is_search,
            help_text="saved model folder or Hub id"
            + (" (with --index: default the index's own)" if is_search else ""),
        )
        command.add_argument(
            "--fps", type=positive_fps, help="frame rate of files that carry none, e.g. .npy (default: the model's)"
        )
        command.add_argument(
            "--skeleton",
            help="skeleton of the .npy / .npz files: preset or JSON (default: the model's); BVH files use their rig",
        )
        command.add_argument("--batch_size", type=positive_int, default=64)
        add_motion_file_arguments(command)
    commands.choices["embed"].add_argument(
        "--out",
        required=True,
        help="output .npz (embeddings, files: only the files embedded); .npz is added to a name without a suffix. "
        f"Skipped files are listed beside it, in <stem>{REPORT_SUFFIX} (JSON)",
    )
    search = commands.choices["search"]
    search.add_argument("--query", action="append", help="text query (repeatable)")
    search.add_argument("--top_k", type=positive_int, default=5, help="results per query (1 or more)")
    search.add_argument("--index", help="an index folder written by `motionpatches index`, instead of paths")
    search.add_argument(
        "--motion", action="append", help="with --index: a motion file to find similar motions to (repeatable)"
    )
    search.add_argument("--captions", action="store_true", help="with --motion: rank the index's captions instead")
    search.add_argument(
        "--nprobe", type=positive_int, help="ivf indexes: lists visited per query (more: better recall)"
    )
    search.add_argument("--ef_search", type=positive_int, help="hnsw indexes: search breadth (more: better recall)")
    search.add_argument(
        "--onnx",
        metavar="DIR",
        help="embed with the ONNX Runtime towers of `motionpatches export onnx` instead of --model",
    )
    search.add_argument("--int8", action="store_true", help="with --onnx: its int8 towers")


def add_index_parser(commands) -> None:
    command = commands.add_parser("index", help="embed motions once into a searchable index folder")
    command.add_argument("paths", nargs="*", help=".npy / .bvh / .npz files or folders of them (may mix)")
    add_model_arguments(command)
    command.add_argument("--dataset_name", help="instead of paths: demo, humanml3d, kit, or a folder in that layout")
    command.add_argument("--dataset_dir", help="folder of humanml3d / kit data")
    command.add_argument("--split", default="test", help="the dataset's split to index (default: test)")
    command.add_argument(
        "--out",
        required=True,
        help=f"the index folder; run again on it, only new or changed files are embedded. Skipped files are "
        f"listed beside it, in <folder>{REPORT_SUFFIX}",
    )
    command.add_argument(
        "--index_type", default="flat", choices=INDEX_TYPES, help="flat: exact; ivf, hnsw: approximate"
    )
    command.add_argument("--push_to_hub", metavar="REPO", help="upload the index as this Hub dataset repository")
    command.add_argument("--batch_size", type=positive_int, default=64)
    add_motion_file_arguments(command)


def add_app_parser(commands) -> None:
    command = commands.add_parser("app", help="the search web app over an index (extra `app`)")
    add_model_arguments(command, required=False, help_text="saved model folder or Hub id (default: the index's own)")
    command.add_argument("--index", required=True, help="an index folder written by `motionpatches index`")
    command.add_argument("--dataset_name", help="build the index from this dataset (e.g. demo) when it is missing")
    command.add_argument("--host", default="127.0.0.1")
    command.add_argument("--port", type=positive_int, default=7860)
    command.add_argument("--top_k", type=positive_int, default=8, help="results shown at first")
    add_motion_file_arguments(command)


def add_export_parser(commands) -> None:
    command = commands.add_parser("export", help="export a model's towers for another runtime (onnx: extra `onnx`)")
    command.add_argument("format", choices=["onnx"], help="onnx: both towers as ONNX files, for ONNX Runtime")
    add_model_arguments(command)
    command.add_argument("--out", required=True, help="the export folder: new, empty, or an earlier export")
    command.add_argument("--int8", action="store_true", help="also write dynamically quantised int8 towers")
    command.add_argument("--opset", type=positive_int, help="ONNX opset (default: the exporter's)")


def metric_names(text: str) -> list[str]:
    from motionpatches.generation_metrics import METRICS

    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in METRICS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown metrics {unknown or text!r}; choose among {','.join(METRICS)}")
    return names


def add_score_parser(commands) -> None:
    command = commands.add_parser(
        "score",
        help="score generated motions in the model's space: R-precision, FID, Diversity, ... (Guo et al.)",
    )
    add_model_arguments(command)
    command.add_argument(
        "--generated",
        required=True,
        help="folder of generated motion files (.npy / .bvh / .npz, may mix), or an .npz archive with `motions` "
        "(N, frames, joints, 3) or (N, frames, 263 | 251) and optionally `lengths` (N,)",
    )
    command.add_argument(
        "--texts",
        required=True,
        help="the text of each generated motion: a .txt file with one text per line in the order of the files "
        "(sorted, as the report's `motions` lists them; array order in an archive), a .json object {file: text} "
        '(path relative to --generated, suffix optional; "0", "1", ... in an archive), or a folder of '
        "HumanML3D texts/<name>.txt (first caption)",
    )
    command.add_argument(
        "--real", nargs="+", help="real motions, for FID and the real Diversity: files, folders or an .npz archive"
    )
    command.add_argument(
        "--multimodality",
        metavar="DIR",
        help="for MultiModality: a folder with one subfolder per text, each holding motions generated from it",
    )
    command.add_argument("--output_file", required=True, help="the report (.json; the suffix is added when missing)")
    command.add_argument("--replications", type=positive_int, default=20, help="replications (default 20)")
    command.add_argument("--seed", type=non_negative_int, default=0, help="seed of the shuffles and pairs")
    command.add_argument(
        "--r_precision_batch_size", type=positive_int, default=32, help="R-precision batch size (default 32)"
    )
    command.add_argument("--diversity_pairs", type=positive_int, default=300)
    command.add_argument("--multimodality_pairs", type=positive_int, default=10)
    command.add_argument(
        "--metrics",
        type=metric_names,
        help="comma-separated metrics that must be computed (an error says why one cannot be); "
        "default: every metric the inputs allow, the others listed as unavailable",
    )
    command.add_argument(
        "--fps", type=positive_fps, help="frame rate of files and arrays that carry none (default: the model's)"
    )
    command.add_argument("--skeleton", help="skeleton of the .npy / .npz files: preset or JSON (default: the model's)")
    command.add_argument("--batch_size", type=positive_int, default=64, help="motions or texts embedded at once")
    add_motion_file_arguments(command)
    # a generated motion that cannot be read is a failure of the generator: dropping it would flatter the scores
    command.set_defaults(on_error="raise")
    for action in command._actions:
        if action.dest == "on_error":
            action.help = (
                "a motion file that cannot be read stops the command, naming it (raise, the default here), or is "
                "left out with its text and listed (skip)"
            )


def add_moments_parser(commands) -> None:
    from motionpatches.moments import CANONICALIZE_MODES, DEFAULT_NMS_IOU, DEFAULT_STRIDE_SECONDS

    command = commands.add_parser("moments", help="find where in long motions a text happens (time spans)")
    command.add_argument("paths", nargs="+", help="long motions: .npy / .bvh / .npz files or folders of them")
    add_model_arguments(command)
    command.add_argument("--query", action="append", required=True, help="text to find (repeatable)")
    command.add_argument("--top_k", type=positive_int, default=5, help="spans per query, over all files (1 or more)")
    command.add_argument(
        "--fps", type=positive_fps, help="frame rate of files that carry none, e.g. .npy (default: the model's)"
    )
    command.add_argument(
        "--window_seconds",
        type=positive_seconds,
        nargs="+",
        help="window lengths in seconds (default: whole seconds 1 to 10 that the model sees); give them after the files",
    )
    command.add_argument(
        "--stride_seconds", type=positive_seconds, default=DEFAULT_STRIDE_SECONDS, help="window step (default 0.5 s)"
    )
    command.add_argument(
        "--nms_iou",
        type=float,
        default=DEFAULT_NMS_IOU,
        help="a span overlapping a better one of its file by more than this IoU is dropped (default 0.5)",
    )
    command.add_argument(
        "--canonicalize",
        choices=CANONICALIZE_MODES,
        default="heading",
        help="how each window is placed before embedding: as a clip starting at the origin facing +Z (heading, the "
        "default), only moved to the origin (position), or as it lies (none)",
    )
    command.add_argument("--batch_size", type=positive_int, default=64, help="windows embedded at once")
    command.add_argument("--output_file", help="also write the spans to this .json file")
    add_motion_file_arguments(command)


def run_moments(args) -> int:
    """`moments`: every file read once (unreadable ones skipped and listed), then the best spans of all files for each
    --query, ranked together. Files are in the model's skeleton."""
    import json

    from motionpatches.atomic import write_text_atomically
    from motionpatches.moments import search_moments_in_gallery

    out = output_path(args.output_file, "--output_file", ".json") if args.output_file else None
    run = Run(motion_file_options(args), args.on_error, SkippedFiles())
    files = motion_files(args.paths)
    model, processor = load_model_and_processor(args.model, trust_remote_code=args.trust_remote_code)
    skeleton = processor.feature_extractor.skeleton
    options = file_options_for_skeleton(run.options, skeleton)
    recordings, rates = {}, {}
    for path in files:
        motion = run.attempt(path, read_positions, path, options, skeleton.num_joints)
        if motion is not None:
            recordings[path], rates[path] = motion.values, motion.fps or args.fps
    run.skipped.read = len(recordings)
    if not recordings:
        run.skipped.print()
        raise ValueError(f"none of the {len(files)} motion files could be read (listed above); nothing was searched")
    found = search_moments_in_gallery(
        model,
        processor,
        recordings,
        args.query,
        k=args.top_k,
        window_seconds=args.window_seconds,
        stride_seconds=args.stride_seconds,
        fps=rates,
        nms_iou=args.nms_iou,
        batch_size=args.batch_size,
        canonicalize=args.canonicalize,
    )
    for query, hits in zip(args.query, found):
        print(f'"{query}"')
        for rank, hit in enumerate(hits, start=1):
            print(f"  {rank:>2}. {hit.score:.3f}  {hit.start:7.2f} - {hit.end:7.2f} s  {hit.recording}")
    if out is not None:
        report = {
            "model": args.model,
            "settings": {
                key: getattr(args, key)
                for key in ("window_seconds", "stride_seconds", "nms_iou", "canonicalize", "top_k", "fps")
            },
            "queries": [
                {"query": query, "moments": [hit._asdict() for hit in hits]} for query, hits in zip(args.query, found)
            ],
        }
        write_text_atomically(out, json.dumps(report, indent=2) + "\n")
        print(f"wrote {out}")
    report_skipped(run.skipped, out)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="motionpatches", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    add_embed_and_search_parsers(commands)
    add_index_parser(commands)
    add_app_parser(commands)
    add_export_parser(commands)
    add_score_parser(commands)
    add_moments_parser(commands)
    return parser


def run_command(args) -> int:
    if args.command == "index":
        return run_index(args)
    if args.command == "app":
        return run_app(args)
    if args.command == "export":
        return run_export(args)
    if args.command == "score":
        return run_score(args)
    if args.command == "moments":
        return run_moments(args)
    if args.command == "search" and args.index:
        if args.paths:
            raise ValueError("search takes motion files and folders, or --index, not both")
        return run_index_search(args)
    if args.command == "search":
        check_folder_search(args)
    return run_files_command(args)


def check_folder_search(args) -> None:
    if args.motion or args.captions:
        raise ValueError(
            "--motion and --captions search an index: pass --index DIR (build one with `motionpatches index`)"
        )
    missing = [
        flag
        for flag, value in (("paths", args.paths), ("--model", args.model or args.onnx), ("--query", args.query))
        if not value
    ]
    if missing:
        raise ValueError(f"search without --index needs {', '.join(missing)}")


def run_files_command(args) -> int:
    out = output_path(args.out, "--out", ".npz") if args.command == "embed" else None
    run = Run(motion_file_options(args), args.on_error, SkippedFiles())
    files = motion_files(args.paths)
    inputs = scan_files(files, args.skeleton, args.fps, run)
    if not inputs:
        run.skipped.print()
        raise ValueError(f"none of the {len(files)} motion files could be read (listed above); nothing was written")
    model, processor = query_model(args)
    embedded = embed_inputs(model, processor, inputs, args.batch_size, run)
    run.skipped.read = len(embedded)
    if not embedded:
        run.skipped.print()
        raise ValueError(f"none of the {len(files)} motion files could be embedded (listed above); nothing was written")
    order = sorted(embedded)
    motions, paths = np.stack([embedded[i] for i in order]), [files[i] for i in order]
    if out is None:
        print_search(args.query, embed_texts(model, processor, args.query), motions, paths, args.top_k)
    else:
        write_embeddings(out, motions, paths)
        print(f"{len(paths)} motion embeddings ({motions.shape[1]}-d) written to {out}")
    report_skipped(run.skipped, out)
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(format="%(name)s: %(message)s")
    logging.getLogger("motionpatches").setLevel(logging.INFO)
    try:
        configure_threads(args.num_threads)
        return run_command(args)
    except (OSError, ValueError, TypeError, ImportError) as err:
        print(f"motionpatches: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

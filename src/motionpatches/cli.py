"""`motionpatches`: embed motion files with a saved model, or search them by text.

    motionpatches embed --model DIR motions/ extra.bvh --out embeddings.npz
    motionpatches search --model DIR motions/ --query "a person waves with the left hand" --top_k 5

Motions are `.npy` joint positions `(T, J, 3)` (`--fps` gives their frame rate, default the model's)
or `.bvh` files, which carry their own frame rate and rig. `.npy` files are in the `--skeleton` given,
else the model's; a BVH file is in its rig's skeleton (or `--skeleton` when that lists exactly the
rig's joint names, for rigs whose names are not recognised). Files whose skeleton is not the model's
are embedded with that skeleton's chains and per-joint statistics of those files, one group per
skeleton; the output keeps the order of the files.

Models are loaded without running code saved in their folder; `--trust_remote_code` allows it.
"""

import argparse
import math
import os
import sys

import numpy as np
import torch

from motionpatches.atomic import atomic_path
from motionpatches.loading import add_trust_remote_code_argument, load_model_and_processor

MOTION_SUFFIXES = (".npy", ".bvh")


# ----------------------------------------------------------------------------- argument checks
def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer (1 or more), got {value}")
    return value


def positive_fps(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected frames per second, a number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a finite positive frame rate, got {text}")
    return value


def output_path(path: str, flag: str, suffix: str | None = None) -> str:
    """The file an output will really be written to, checked before any work so a typo costs nothing.

    With `suffix`, a name without one gets it (numpy would add it anyway, and the path reported must be
    the one written) and a name with another suffix is refused.
    """
    if path.endswith(("/", os.sep)) or os.path.isdir(path):
        raise ValueError(
            f"{flag} {path} is a folder; give a file name, e.g. {os.path.join(path, 'out' + (suffix or ''))}"
        )
    if suffix:
        extension = os.path.splitext(path)[1]
        if not extension:
            path += suffix
        elif extension.lower() != suffix:
            raise ValueError(f"{flag} {path} must end in {suffix} (it is written in that format)")
        if os.path.isdir(path):
            raise ValueError(f"{flag} {path} is a folder; give a file name")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{flag} {path}: the folder {folder} does not exist; create it first")
    if not os.access(folder, os.W_OK):
        raise PermissionError(f"{flag} {path}: the folder {folder} is not writable")
    return path


# ----------------------------------------------------------------------------- files and skeletons
def motion_files(paths: list[str]) -> list[str]:
    """Files given directly, plus every `.npy` / `.bvh` inside given folders (sorted, recursive)."""
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
        raise ValueError(f"no .npy or .bvh motions in {paths}")
    return found


def is_bvh(path: str) -> bool:
    return path.lower().endswith(".bvh")


def bvh_skeleton(path: str, npy_skeleton):
    """The skeleton of a BVH file: `--skeleton` when it names exactly the rig's joints, else the rig's own."""
    from motionpatches.processors import load_bvh, skeleton_from_bvh

    motion = load_bvh(path)
    if npy_skeleton is not None and npy_skeleton.joint_names == motion.joint_names:
        return npy_skeleton
    try:
        return skeleton_from_bvh(motion)
    except ValueError as err:
        raise ValueError(
            f"{path}: {err} On the command line, pass --skeleton with a JSON skeleton listing this rig's "
            "joint names and chains."
        ) from None


def file_skeletons(files: list[str], skeleton: str | None) -> list:
    """Each file's skeleton; None stands for the model's (`.npy` files without `--skeleton`)."""
    from motionpatches.processors import resolve_skeleton

    npy_skeleton = resolve_skeleton(skeleton) if skeleton else None
    return [bvh_skeleton(path, npy_skeleton) if is_bvh(path) else npy_skeleton for path in files]


def skeleton_key(skeleton) -> tuple | None:
    """Skeletons with the same joints and chains share statistics; a BVH rig's name is only its file's."""
    if skeleton is None:
        return None
    return skeleton.joint_names, tuple(sorted(skeleton.chains.items()))


def skeleton_groups(skeletons: list) -> dict:
    """{key: (skeleton, indices of its files)}, in order of first appearance."""
    groups = {}
    for index, skeleton in enumerate(skeletons):
        groups.setdefault(skeleton_key(skeleton), (skeleton, []))[1].append(index)
    return groups


def processor_for(processor, skeleton, files: list[str], fps: float | None):
    """The model's processor, or one for `skeleton` with the statistics of `files` when that is another skeleton."""
    model_skeleton = processor.feature_extractor.skeleton
    if skeleton is None or skeleton_key(skeleton) == skeleton_key(model_skeleton):
        return processor
    feature_extractor = processor.feature_extractor.for_skeleton(skeleton)
    feature_extractor.fit_statistics(_motions_at_model_rate(feature_extractor, files, fps))
    return type(processor)(feature_extractor=feature_extractor, tokenizer=processor.tokenizer)


def _motions_at_model_rate(feature_extractor, files, fps):
    from motionpatches.processors.bvh import load_bvh
    from motionpatches.processors.feature_extraction_motionpatches import load_motion, resample_frame_rate

    for index, path in enumerate(files):
        if is_bvh(path):
            motion = load_bvh(path)
            yield resample_frame_rate(motion.positions, motion.fps, feature_extractor.fps)
        else:
            yield resample_frame_rate(load_motion(path, index), fps or feature_extractor.fps, feature_extractor.fps)


# ----------------------------------------------------------------------------- embedding
@torch.inference_mode()
def embed_motions(model, processor, files: list[str], fps: float | None, batch_size: int = 64) -> np.ndarray:
    embeddings = []
    for start in range(0, len(files), batch_size):
        batch = files[start : start + batch_size]
        # --fps describes .npy files; a BVH file carries its own frame rate
        rates = [None if is_bvh(path) else fps for path in batch]
        inputs = processor(motions=batch, motion_fps=rates, return_tensors="pt")
        features = model.get_motion_features(motion_values=inputs["motion_values"]).pooler_output
        embeddings.append(torch.nn.functional.normalize(features, dim=-1).float().numpy())
    return np.concatenate(embeddings)


def embed_files(model, processor, files: list[str], skeletons: list, fps: float | None, batch_size: int) -> np.ndarray:
    """Every file's embedding, in the order of `files`, each skeleton group through its own feature extractor."""
    embeddings = None
    for skeleton, indices in skeleton_groups(skeletons).values():
        group = [files[i] for i in indices]
        vectors = embed_motions(model, processor_for(processor, skeleton, group, fps), group, fps, batch_size)
        if embeddings is None:
            embeddings = np.empty((len(files), vectors.shape[1]), dtype=vectors.dtype)
        embeddings[indices] = vectors
    return embeddings


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


# ----------------------------------------------------------------------------- command line
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="motionpatches", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("embed", "write motion embeddings to an .npz file"),
        ("search", "rank motions by a text query"),
    ):
        command = commands.add_parser(name, help=help_text)
        command.add_argument("paths", nargs="+", help=".npy / .bvh files or folders of them")
        command.add_argument("--model", required=True, help="saved model folder or Hub id")
        command.add_argument("--fps", type=positive_fps, help="frame rate of .npy motions (default: the model's)")
        command.add_argument(
            "--skeleton",
            help="skeleton of the .npy files: preset or JSON (default: the model's); BVH files use their rig",
        )
        command.add_argument("--batch_size", type=positive_int, default=64)
        add_trust_remote_code_argument(command)
    commands.choices["embed"].add_argument(
        "--out", required=True, help="output .npz (embeddings, files); .npz is added to a name without a suffix"
    )
    commands.choices["search"].add_argument("--query", required=True, action="append", help="text query (repeatable)")
    commands.choices["search"].add_argument(
        "--top_k", type=positive_int, default=5, help="results per query (1 or more)"
    )
    return parser


def run(args) -> int:
    out = output_path(args.out, "--out", ".npz") if args.command == "embed" else None
    files = motion_files(args.paths)
    skeletons = file_skeletons(files, args.skeleton)
    model, processor = load_model_and_processor(args.model, trust_remote_code=args.trust_remote_code)
    motions = embed_files(model, processor, files, skeletons, args.fps, args.batch_size)
    if out is not None:
        write_embeddings(out, motions, files)
        print(f"{len(files)} motion embeddings ({motions.shape[1]}-d) written to {out}")
    else:
        print_search(args.query, embed_texts(model, processor, args.query), motions, files, args.top_k)
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except (OSError, ValueError, TypeError) as err:
        print(f"motionpatches: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""`motionpatches`: embed motion files with a saved model, or search them by text.

    motionpatches embed --model DIR motions/ extra.bvh --out embeddings.npz
    motionpatches search --model DIR motions/ --query "a person waves with the left hand" --top_k 5

Motions are `.npy` joint positions `(T, J, 3)` (`--fps` gives their frame rate, default the model's)
or `.bvh` files. When the files' skeleton differs from the model's (`--skeleton`, or a BVH rig), the
motion patches are built with the files' chains and per-joint statistics of the files themselves.
"""

import argparse
import os
import sys

import numpy as np
import torch

MOTION_SUFFIXES = (".npy", ".bvh")


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


def files_skeleton(files: list[str], skeleton: str | None, mapping: dict | None):
    """The skeleton the files are in: `--skeleton`, else the first BVH file's rig, else None (the model's)."""
    if skeleton:
        return skeleton
    bvh_files = [f for f in files if f.lower().endswith(".bvh")]
    if not bvh_files:
        return None
    from motionpatches.processors import load_bvh, skeleton_from_bvh

    return skeleton_from_bvh(load_bvh(bvh_files[0]), mapping=mapping)


def load_model(model_dir: str, files: list[str], skeleton, fps: float | None):
    from transformers import AutoModel, AutoProcessor

    model = AutoModel.from_pretrained(model_dir, trust_remote_code=True).eval()
    processor = AutoProcessor.from_pretrained(model_dir, trust_remote_code=True)
    if skeleton is not None:
        feature_extractor = processor.feature_extractor.for_skeleton(skeleton)
        if feature_extractor.skeleton != processor.feature_extractor.skeleton:
            feature_extractor.fit_statistics(_motions_at_model_rate(feature_extractor, files, fps))
            processor = type(processor)(feature_extractor=feature_extractor, tokenizer=processor.tokenizer)
    return model, processor


def _motions_at_model_rate(feature_extractor, files, fps):
    from motionpatches.processors.bvh import load_bvh
    from motionpatches.processors.feature_extraction_motionpatches import load_motion, resample_frame_rate

    for index, path in enumerate(files):
        if path.lower().endswith(".bvh"):
            motion = load_bvh(path)
            yield resample_frame_rate(motion.positions, motion.fps, feature_extractor.fps)
        else:
            yield resample_frame_rate(load_motion(path, index), fps or feature_extractor.fps, feature_extractor.fps)


@torch.inference_mode()
def embed_motions(model, processor, files: list[str], fps: float | None, batch_size: int = 64) -> np.ndarray:
    embeddings = []
    for start in range(0, len(files), batch_size):
        batch = files[start : start + batch_size]
        # --fps describes .npy files; a BVH file carries its own frame rate
        rates = [None if path.lower().endswith(".bvh") else fps for path in batch]
        inputs = processor(motions=batch, motion_fps=rates, return_tensors="pt")
        features = model.get_motion_features(motion_values=inputs["motion_values"]).pooler_output
        embeddings.append(torch.nn.functional.normalize(features, dim=-1).float().numpy())
    return np.concatenate(embeddings)


@torch.inference_mode()
def embed_texts(model, processor, texts: list[str]) -> np.ndarray:
    features = model.get_text_features(**processor(text=texts, return_tensors="pt")).pooler_output
    return torch.nn.functional.normalize(features, dim=-1).float().numpy()


def main(argv=None) -> int:
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
        command.add_argument("--fps", type=float, help="frame rate of .npy motions (default: the model's)")
        command.add_argument(
            "--skeleton", help="skeleton of the files: preset or JSON (default: the model's, or the BVH rig)"
        )
        command.add_argument("--batch_size", type=int, default=64)
    commands.choices["embed"].add_argument("--out", required=True, help="output .npz (embeddings, files)")
    commands.choices["search"].add_argument("--query", required=True, action="append", help="text query (repeatable)")
    commands.choices["search"].add_argument("--top_k", type=int, default=5)
    args = parser.parse_args(argv)

    try:
        files = motion_files(args.paths)
        model, processor = load_model(args.model, files, files_skeleton(files, args.skeleton, None), args.fps)
        motions = embed_motions(model, processor, files, args.fps, args.batch_size)
    except (FileNotFoundError, ValueError, TypeError) as err:
        print(f"motionpatches: {err}", file=sys.stderr)
        return 2
    if args.command == "embed":
        np.savez(args.out, embeddings=motions, files=np.array(files))
        print(f"{len(files)} motion embeddings ({motions.shape[1]}-d) written to {args.out}")
        return 0
    for query, text in zip(args.query, embed_texts(model, processor, args.query)):
        scores = motions @ text
        print(f'"{query}"')
        for rank, index in enumerate(np.argsort(-scores)[: args.top_k], start=1):
            print(f"  {rank:>2}. {scores[index]:.3f}  {files[index]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Pictures of motions, motion patches, retrieval results and attention, from the command line.

    python training/visualize.py patches MOTION.npy --skeleton humanml3d --out patches.png
    python training/visualize.py gif MOTION.bvh --out motion.gif [--view side]
    python training/visualize.py keyframes MOTION.npz --skeleton smpl24 --body_model_dir DIR --out keyframes.png
    python training/visualize.py retrieval --model_name_or_path DIR --query "a person waves" \
        --motions_dir DIR_OF_MOTIONS --top_k 3 --out retrieval.png
    python training/visualize.py attention MOTION.npy --model_name_or_path DIR --out attention.png

Motions are read as every script reads them: `.npy` joint positions `(frames, joints, 3)` (HumanML3D
`new_joints` layout: metres, Y up) or HumanML3D / KIT-ML feature rows (`--motion_format`), `.bvh` files
(`--bvh_scale`, `--bvh_up_axis`) and AMASS `.npz` SMPL parameters (`--body_model_dir`). A motion is drawn in
`--skeleton` (default: a BVH file's rig, else humanml3d; SMPL files give that skeleton's joint set), or in the
model's skeleton for `retrieval` and `attention`. Files that carry a frame rate (BVH, SMPL) are played and
turned into patches at it; `--fps` is for those that do not. `retrieval` skips the files of its folder it
cannot use, lists them and writes them to `<--out stem>.skipped.json` (`--on_error raise` stops at the
first); a single motion that cannot be read always stops the command, naming the file. Camera views and
colours are described in `src/motionpatches/visualization.py`.

Models are loaded without running code saved in their folder; `--trust_remote_code` allows it. `--out`
is checked before any work (its folder must exist) and the picture replaces it whole.
"""

import argparse
import os

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from motionpatches.arguments import (
    add_motion_file_arguments,
    add_trust_remote_code_argument,
    motion_file_options,
    output_path,
    positive_fps,
    positive_int,
)
from motionpatches.atomic import atomic_path
from motionpatches.cli import is_bvh, motion_files
from motionpatches.loading import load_or_exit
from motionpatches.processors import MotionPatchFeatureExtractor
from motionpatches.processors.feature_extraction_motionpatches import resample_frame_rate
from motionpatches.processors.motion_files import MotionFile, MotionFileError
from motionpatches.processors.motion_readers import file_options_for_skeleton
from motionpatches.processors.skeletons import resolve_skeleton
from motionpatches.skipped import SkippedFiles, bvh_rig, read_positions, report_skipped
from motionpatches.visualization import (
    VIEWS,
    attention_figure,
    keyframe_strip,
    motion_attention,
    motion_patches_image,
    retrieval_figure,
    skeleton_animation,
)

# the rate motion patches are made at without a model (the feature extractor's default, the models' rate)
PATCH_FPS = 20.0
MOTION_HELP = "a motion file: .npy joint positions (frames, joints, 3) or feature rows, .bvh, or .npz SMPL parameters"


def motion_skeleton(args):
    """The skeleton the motion of `args` is drawn in: `--skeleton`, else a BVH file's rig, else humanml3d."""
    if args.skeleton:
        return resolve_skeleton(args.skeleton)
    if not is_bvh(args.motion):
        return resolve_skeleton("humanml3d")
    try:
        return bvh_rig(args.motion, motion_file_options(args))
    except MotionFileError as err:
        raise SystemExit(f"error: {err}") from None
    except ValueError as err:  # a rig whose chains are not recognised
        raise SystemExit(f"error: {args.motion}: {err} Pass --skeleton with a JSON skeleton of this rig.") from None


def read_motion(path: str, skeleton, args) -> MotionFile:
    """The positions in `path` in `skeleton`'s joints, read with the motion-file flags of `args`, and the file's
    frame rate when it has one."""
    return read_positions(path, file_options_for_skeleton(motion_file_options(args), skeleton), skeleton.num_joints)


def read_motion_or_exit(path: str, skeleton, args) -> MotionFile:
    """`read_motion`, or exit with a message naming the file (missing, unreadable, wrong shape)."""
    try:
        return read_motion(path, skeleton, args)
    except (OSError, ValueError) as err:
        raise SystemExit(f"error: {err}") from None


def at_rate(motion: MotionFile, fps: float) -> np.ndarray:
    """The positions at `fps`: a file that states its rate (BVH, SMPL) is resampled, others are taken to be at it."""
    return motion.values if motion.fps is None else resample_frame_rate(motion.values, motion.fps, fps)


def load_model(model_name_or_path: str, trust_remote_code: bool = False):
    """Model (eval mode, on the GPU when there is one) and processor saved together by training/train.py."""
    model, processor = load_or_exit(model_name_or_path, trust_remote_code=trust_remote_code)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return model.to(device).eval(), processor


def picture_path(path: str, suffix: str) -> str:
    """`--out` as it will be written: `suffix` added to a bare name; a GIF must be .gif, a still any format Pillow writes."""
    try:
        path = output_path(path, "--out", suffix if suffix == ".gif" else None)
        if not os.path.splitext(path)[1]:
            path = output_path(path + suffix, "--out", suffix)
    except (OSError, ValueError) as err:
        raise SystemExit(f"error: {err}") from None
    extension = os.path.splitext(path)[1].lower()
    if extension not in Image.registered_extensions():
        raise SystemExit(f"error: --out {path}: Pillow writes no {extension} pictures; use {suffix}")
    return path


def saved(image, out: str) -> None:
    with atomic_path(out) as temporary:
        image.save(temporary)
    print(f"wrote {out}")


# ------------------------------------------------------------------------------------------ commands


def cmd_patches(args):
    skeleton = motion_skeleton(args)
    motion = at_rate(read_motion_or_exit(args.motion, skeleton, args), PATCH_FPS)
    extractor = MotionPatchFeatureExtractor(
        skeleton=skeleton, part_order=args.part_order, num_frames=args.num_frames or len(motion), fps=PATCH_FPS
    )
    values = extractor(motion)["motion_values"]
    saved(motion_patches_image(values, extractor.part_names, cell=args.cell), args.out)


def cmd_gif(args):
    skeleton = motion_skeleton(args)
    motion = read_motion_or_exit(args.motion, skeleton, args)
    with atomic_path(args.out) as temporary:
        skeleton_animation(
            motion.values,
            skeleton,
            temporary,
            fps=motion.fps or args.fps,
            size=args.size,
            view=args.view,
            trail=args.trail,
            stride=args.stride,
        )
    print(f"wrote {args.out}")


def cmd_keyframes(args):
    skeleton = motion_skeleton(args)
    motion = read_motion_or_exit(args.motion, skeleton, args)
    saved(keyframe_strip(motion.values, skeleton, args.num_keyframes, args.size, args.view), args.out)


def folder_motions(args, extractor) -> tuple[list[str], list[np.ndarray], SkippedFiles]:
    """(files, their motions at the model's rate, the files skipped) of `--motions_dir`: each file read on its
    own in the model's skeleton; one that cannot be used is skipped or, with `--on_error raise`, stops the command."""
    try:
        files = motion_files([args.motions_dir])
    except (OSError, ValueError) as err:
        raise SystemExit(f"error: --motions_dir: {err}") from None
    skipped = SkippedFiles()
    reading = (extractor.skeleton, args)
    try:
        read = [skipped.attempt(path, read_motion, path, *reading, on_error=args.on_error) for path in files]
    except MotionFileError as err:
        raise SystemExit(f"error: {err}") from None
    kept = [(path, at_rate(motion, extractor.fps)) for path, motion in zip(files, read) if motion is not None]
    skipped.read = len(kept)
    if not kept:
        skipped.print()
        raise SystemExit(f"error: none of the {len(files)} motion files in {args.motions_dir} could be read")
    return [path for path, _ in kept], [motion for _, motion in kept], skipped


def caption_of(motion_path: str, texts_dir: str | None) -> str:
    """The first caption of a motion in a HumanML3D-style `texts/NAME.txt` ("caption#tokens#start#end"), else its file name."""
    name = os.path.basename(motion_path)
    if texts_dir is None:
        return name
    text_path = os.path.join(texts_dir, os.path.splitext(name)[0] + ".txt")
    if not os.path.isfile(text_path):
        return name
    with open(text_path, encoding="utf-8") as f:
        first_line = f.readline().strip()
    return f"{name}: {first_line.split('#')[0]}" if first_line else name


@torch.inference_mode()
def rank_motions(model, processor, query: str, motions: list[np.ndarray], batch_size: int) -> np.ndarray:
    """Cosine similarity of `query` with every motion, as the model scores them for retrieval."""
    device = next(model.parameters()).device
    text = processor(text=[query], return_tensors="pt").to(device)
    text_embeds = F.normalize(model.get_text_features(**text).pooler_output, dim=-1)
    scores = []
    for start in range(0, len(motions), batch_size):
        values = processor(motions=motions[start : start + batch_size], return_tensors="pt")["motion_values"]
        motion_embeds = F.normalize(model.get_motion_features(motion_values=values.to(device)).pooler_output, dim=-1)
        scores.append((motion_embeds @ text_embeds[0]).float().cpu().numpy())
    return np.concatenate(scores)


def cmd_retrieval(args):
    model, processor = load_model(args.model_name_or_path, args.trust_remote_code)
    skeleton = processor.feature_extractor.skeleton
    files, motions, skipped = folder_motions(args, processor.feature_extractor)
    scores = rank_motions(model, processor, args.query, motions, args.batch_size)
    best = np.argsort(-scores, kind="stable")[: args.top_k]
    for rank, index in enumerate(best, start=1):
        print(f"{rank}. {scores[index]:.3f}  {files[index]}")
    figure = retrieval_figure(
        args.query,
        [motions[i] for i in best],
        skeleton,
        scores=scores[best],
        captions=[caption_of(files[i], args.texts_dir) for i in best],
        num_keyframes=args.num_keyframes,
        size=args.size,
    )
    saved(figure, args.out)
    report_skipped(skipped, args.out)


def cmd_attention(args):
    model, processor = load_model(args.model_name_or_path, args.trust_remote_code)
    extractor = processor.feature_extractor
    motion = read_motion_or_exit(args.motion, extractor.skeleton, args)
    values = extractor(at_rate(motion, extractor.fps), return_tensors="pt")["motion_values"]
    attention = motion_attention(model, values)
    saved(attention_figure(values, attention, extractor.part_names, cell=args.cell), args.out)


# ------------------------------------------------------------------------------------------ arguments


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = p.add_subparsers(dest="command", required=True)

    def motion_command(name, help, func, out):
        sub = commands.add_parser(name, help=help)
        sub.add_argument("motion", help=MOTION_HELP)
        sub.add_argument(
            "--skeleton", help="preset name or JSON skeleton file (default: a BVH file's rig, else humanml3d)"
        )
        sub.add_argument("--out", default=out)
        add_motion_file_arguments(sub)
        sub.set_defaults(func=func, suffix=os.path.splitext(out)[1])
        return sub

    patches = motion_command(
        "patches", "the motion-patch image (x, y, z as red, green, blue)", cmd_patches, "patches.png"
    )
    patches.add_argument("--part_order", default="canonical", choices=["canonical", "reference"])
    patches.add_argument(
        "--num_frames", type=positive_int, help="crop or pad to this many frames (default: the whole motion)"
    )
    patches.add_argument("--cell", type=positive_int, default=4, help="pixels per value")

    gif = motion_command("gif", "an animated GIF of the skeleton", cmd_gif, "motion.gif")
    gif.add_argument("--view", default="front", choices=sorted(VIEWS))
    gif.add_argument("--size", type=positive_int, default=256)
    gif.add_argument(
        "--fps",
        type=positive_fps,
        help="frame rate of a motion file that carries none, e.g. .npy (default: the skeleton's); BVH and SMPL "
        "files play at their own",
    )
    gif.add_argument("--stride", type=positive_int, default=1, help="keep every n-th frame (smaller file, same speed)")
    gif.add_argument("--trail", action="store_true", help="draw the root's path")

    keyframes = motion_command("keyframes", "evenly spaced poses side by side", cmd_keyframes, "keyframes.png")
    keyframes.add_argument("--view", default="front", choices=sorted(VIEWS))
    keyframes.add_argument("--num_keyframes", type=positive_int, default=6)
    keyframes.add_argument("--size", type=positive_int, default=160)

    retrieval = commands.add_parser("retrieval", help="the top motions of a folder for a text query")
    retrieval.add_argument("--model_name_or_path", required=True, help="a model saved with its processor")
    add_trust_remote_code_argument(retrieval)
    retrieval.add_argument("--query", required=True)
    retrieval.add_argument(
        "--motions_dir", required=True, help="folder of .npy / .bvh / .npz motions in the model's skeleton (may mix)"
    )
    retrieval.add_argument("--texts_dir", help="captions to show, NAME.txt per motion NAME (HumanML3D texts/ layout)")
    retrieval.add_argument("--top_k", type=positive_int, default=3)
    retrieval.add_argument("--num_keyframes", type=positive_int, default=5)
    retrieval.add_argument("--size", type=positive_int, default=140, help="pixels per keyframe")
    retrieval.add_argument("--batch_size", type=positive_int, default=64)
    retrieval.add_argument("--out", default="retrieval.png")
    retrieval.set_defaults(func=cmd_retrieval, suffix=".png")
    add_motion_file_arguments(retrieval)

    attention = commands.add_parser("attention", help="the class token's last-block attention over the patches")
    attention.add_argument("motion", help=MOTION_HELP)
    attention.add_argument("--model_name_or_path", required=True, help="a model saved with its processor")
    add_trust_remote_code_argument(attention)
    attention.add_argument("--cell", type=positive_int, default=8, help="pixels per value")
    attention.add_argument("--out", default="attention.png")
    attention.set_defaults(func=cmd_attention, suffix=".png")
    add_motion_file_arguments(attention)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    args.out = picture_path(args.out, args.suffix)
    args.func(args)


if __name__ == "__main__":
    main()

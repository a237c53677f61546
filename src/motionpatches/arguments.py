"""Command-line arguments shared by the `motionpatches` command and the training and evaluation scripts.

One definition per flag, so a flag means the same and is checked the same wherever a model is loaded or a
motion file enters: numbers are refused by argparse (naming the flag) before any work, output paths before
the model is loaded, and the motion-file flags become the `MotionFileOptions` every reader takes.
"""

import argparse
import math
import os

from motionpatches.processors.bvh import UP_AXIS_ROTATIONS
from motionpatches.processors.motion_readers import MOTION_FORMATS, MotionFileOptions
from motionpatches.skipped import ON_ERROR_CHOICES

TRUST_REMOTE_CODE_HELP = (
    "run Python code saved in the model folder or Hub repository (its auto_map); motionpatches models need "
    "none, so only pass this for a model whose code you have read and trust"
)


def _int_at_least(text: str, minimum: int, description: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {description}, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected {description} ({minimum} or more), got {value}")
    return value


def positive_int(text: str) -> int:
    return _int_at_least(text, 1, "a positive integer")


def non_negative_int(text: str) -> int:
    return _int_at_least(text, 0, "an integer >= 0")


def positive_number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a {what}, a number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a finite positive {what}, got {text}")
    return value


def positive_fps(text: str) -> float:
    return positive_number(text, "frame rate")


def positive_seconds(text: str) -> float:
    return positive_number(text, "number of seconds")


def positive_scale(text: str) -> float:
    return positive_number(text, "scale (metres per file unit, e.g. 0.01 for centimetres)")


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


def add_trust_remote_code_argument(parser) -> None:
    """The same opt-in flag, off by default, on every command that loads a model."""
    parser.add_argument("--trust_remote_code", action="store_true", help=TRUST_REMOTE_CODE_HELP)


def add_threads_argument(parser) -> None:
    """CPU threads for PyTorch; the default (all cores this process may use, shared among the machine's
    processes, unless OMP_NUM_THREADS was chosen) is motionpatches.threads'."""
    parser.add_argument(
        "--num_threads",
        type=positive_int,
        help="PyTorch CPU threads per process (default: available cores / processes on this machine, or the "
        "OMP_NUM_THREADS or --num_cpu_threads_per_process you gave; not accelerate launch's default of 1)",
    )


def add_motion_file_arguments(parser) -> None:
    """What a motion file does not say about itself, and what to do with a file that cannot be read; in a group of
    their own, or in the group given (argparse deprecates groups within groups)."""
    is_parser = isinstance(parser, argparse.ArgumentParser)
    group = parser.add_argument_group("motion files (.npy, .bvh, .npz)") if is_parser else parser
    group.add_argument(
        "--bvh_scale",
        type=positive_scale,
        help="metres per BVH length unit, e.g. 0.01 for centimetres (default: detected from the bone lengths)",
    )
    group.add_argument(
        "--bvh_up_axis",
        type=str.lower,
        choices=tuple(UP_AXIS_ROTATIONS),  # the axes the BVH reader turns to Y up
        help="the BVH files' up axis (default: detected from the animation)",
    )
    group.add_argument(
        "--motion_format",
        default="auto",
        choices=MOTION_FORMATS,
        help=".npy files hold joint positions (T, J, 3) or HumanML3D / KIT-ML feature rows (T, 263 | 251); "
        "auto decides by shape",
    )
    group.add_argument(
        "--body_model_dir", help="folder of the SMPL / SMPL-H / SMPL-X body models that .npz parameter files need"
    )
    group.add_argument(
        "--on_error",
        default="skip",
        choices=ON_ERROR_CHOICES,
        help="a motion file that cannot be read is skipped and listed with its reason (skip, the default), "
        "or stops the run naming it (raise)",
    )


def motion_file_options(args: argparse.Namespace) -> MotionFileOptions:
    return MotionFileOptions(
        bvh_scale=args.bvh_scale,
        bvh_up_axis=args.bvh_up_axis,
        motion_format=args.motion_format,
        body_model_dir=args.body_model_dir,
    )

"""Datasets by name: the demo, HumanML3D, KIT-ML, InterHuman, or any folder in the HumanML3D layout.

`add_dataset_arguments` and `load_dataset_from_args` are the command-line side shared by the trainer and
the evaluation scripts: the same flags, turned into the same `load_named_dataset` call.
"""

import argparse

import datasets

from motionpatches.arguments import add_motion_file_arguments, motion_file_options, positive_fps
from motionpatches.processors.motion_files import MotionFileError
from motionpatches.processors.motion_readers import MotionFileOptions
from motionpatches.skipped import SkippedFiles

from .demo import load_demo_dataset
from .interhuman import load_interhuman
from .motion_folder import folder_skeleton, load_motion_folder

# frame rates and the length limits of Guo et al.'s loaders (used by the Motion Patches and TMR
# evaluations), in source frames
DATASET_PRESETS = {
    "humanml3d": {"skeleton": "humanml3d", "fps": 20.0, "min_frames": 40, "max_frames": 200},
    "kit": {"skeleton": "kit", "fps": 12.5, "min_frames": 24, "max_frames": 200},
}
INTERHUMAN_FPS = 30.0
DEMO_SIZES = "1200,150,150"


def load_named_dataset(
    name: str,
    dataset_dir: str | None = None,
    skeleton=None,
    dataset_fps: float | None = None,
    kit_repeat_frames: bool = False,
    num_proc: int | None = None,
    demo_sizes: tuple[int, int, int] = (1200, 150, 150),
    seed: int = 0,
    options: MotionFileOptions | None = None,
    on_error: str = "skip",
    skipped: SkippedFiles | None = None,
) -> tuple[datasets.DatasetDict, str]:
    """`demo`, `humanml3d`, `kit`, `interhuman` (with `dataset_dir`) or a folder path -> (DatasetDict, skeleton).

    options, on_error, skipped: how a folder's motion files are read, whether an unusable one is skipped or
    raised, and the record the skipped ones are added to (see `load_motion_folder`)."""
    if name in ("demo", "demo_combinations"):
        train, validation, test = demo_sizes
        return load_demo_dataset(
            num_train=train, num_validation=validation, num_test=test, seed=seed, hold_out=name == "demo_combinations"
        ), skeleton or "humanml3d"
    if name == "interhuman":
        if not dataset_dir:
            raise ValueError("dataset 'interhuman' needs a dataset_dir")
        return load_interhuman(dataset_dir, fps=dataset_fps or INTERHUMAN_FPS), skeleton or "humanml3d"
    preset = DATASET_PRESETS.get(name, {})
    root = dataset_dir if preset else (dataset_dir or name)
    if not root:
        raise ValueError(f"dataset {name!r} needs a dataset_dir (the folder holding new_joints/ and texts/)")
    skeleton = folder_skeleton(root, skeleton or preset.get("skeleton"), options)
    data = load_motion_folder(
        root,
        skeleton=skeleton,
        fps=dataset_fps or preset.get("fps"),
        min_frames=preset.get("min_frames", 1),
        max_frames=preset.get("max_frames"),
        kit_repeat_frames=kit_repeat_frames,
        num_proc=num_proc,
        options=options,
        on_error=on_error,
        skipped=skipped,
    )
    return data, skeleton


# ----------------------------------------------------------------------------- command line
def add_dataset_arguments(parser) -> None:
    """The dataset flags of the trainer and the retrieval evaluation, motion-file flags included; the demo's
    seed is the script's own `--seed`."""
    parser.add_argument(
        "--dataset_name",
        default="demo",
        help="demo, demo_combinations (the demo with some action/variant combinations held out of training), "
        "humanml3d, kit, interhuman, or a folder in the HumanML3D layout",
    )
    parser.add_argument("--dataset_dir", help="folder of humanml3d / kit / interhuman data")
    parser.add_argument("--skeleton", help="preset name or JSON skeleton file (default: the dataset's)")
    parser.add_argument(
        "--dataset_fps", type=positive_fps, help="frame rate of motion files that carry none (default: the skeleton's)"
    )
    parser.add_argument(
        "--kit_repeat_frames", action="store_true", help="the reference's frame repeating for 12.5 -> 20 fps"
    )
    parser.add_argument("--demo_sizes", default=DEMO_SIZES, help="train,validation,test motions of the demo dataset")
    add_motion_file_arguments(parser)


def demo_sizes(text: str) -> tuple[int, int, int]:
    return tuple(int(n) for n in text.split(","))


def load_dataset_from_args(
    args: argparse.Namespace, skipped: SkippedFiles | None = None, num_proc: int | None = None
) -> tuple[datasets.DatasetDict, str]:
    """`load_named_dataset` with the flags of `add_dataset_arguments` (and the script's `--seed`). For scripts, a
    file that stops the loading (`--on_error raise`) ends the script with its message rather than a traceback."""
    try:
        return load_named_dataset(
            args.dataset_name,
            dataset_dir=args.dataset_dir,
            skeleton=args.skeleton,
            dataset_fps=args.dataset_fps,
            kit_repeat_frames=args.kit_repeat_frames,
            num_proc=num_proc,
            demo_sizes=demo_sizes(args.demo_sizes),
            seed=args.seed,
            options=motion_file_options(args),
            on_error=args.on_error,
            skipped=skipped,
        )
    except MotionFileError as err:
        raise SystemExit(f"error: {err}") from None

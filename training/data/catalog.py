"""Datasets by name: the demo, HumanML3D, KIT-ML, InterHuman, or any folder in the HumanML3D layout."""

import datasets

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


def load_named_dataset(
    name: str,
    dataset_dir: str | None = None,
    skeleton=None,
    dataset_fps: float | None = None,
    kit_repeat_frames: bool = False,
    num_proc: int | None = None,
    demo_sizes: tuple[int, int, int] = (1200, 150, 150),
    seed: int = 0,
) -> tuple[datasets.DatasetDict, str]:
    """`demo`, `humanml3d`, `kit`, `interhuman` (with `dataset_dir`) or a folder path -> (DatasetDict, skeleton)."""
    if name == "demo":
        train, validation, test = demo_sizes
        return load_demo_dataset(
            num_train=train, num_validation=validation, num_test=test, seed=seed
        ), skeleton or "humanml3d"
    if name == "interhuman":
        if not dataset_dir:
            raise ValueError("dataset 'interhuman' needs a dataset_dir")
        return load_interhuman(dataset_dir, fps=dataset_fps or INTERHUMAN_FPS), skeleton or "humanml3d"
    preset = DATASET_PRESETS.get(name, {})
    root = dataset_dir if preset else (dataset_dir or name)
    if not root:
        raise ValueError(f"dataset {name!r} needs a dataset_dir (the folder holding new_joints/ and texts/)")
    skeleton = folder_skeleton(root, skeleton or preset.get("skeleton"))
    data = load_motion_folder(
        root,
        skeleton=skeleton,
        fps=dataset_fps or preset.get("fps"),
        min_frames=preset.get("min_frames", 1),
        max_frames=preset.get("max_frames"),
        kit_repeat_frames=kit_repeat_frames,
        num_proc=num_proc,
    )
    return data, skeleton

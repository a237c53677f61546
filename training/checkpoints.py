"""Checkpoints of a training run: accelerate's state plus `progress.json`, in `output_dir/checkpoints/step_N`."""

import json
import os
import shutil

PROGRESS_FILE = "progress.json"


def checkpoints_dir(output_dir: str) -> str:
    return os.path.join(output_dir, "checkpoints")


def save_checkpoint(accelerator, output_dir: str, step: int, progress: dict) -> str:
    """Save the model, optimizer and RNG states and `progress` as `checkpoints/step_{step}`; returns its path."""
    final = os.path.join(checkpoints_dir(output_dir), f"step_{step}")
    partial = final + ".partial"  # renamed when complete, so a killed run never leaves a half checkpoint
    accelerator.save_state(partial)
    if accelerator.is_main_process:
        with open(os.path.join(partial, PROGRESS_FILE), "w") as f:
            json.dump(progress, f)
        if os.path.isdir(final):  # saved before by the run this one resumed; this step's state replaces it
            shutil.rmtree(final)
        os.replace(partial, final)
    accelerator.wait_for_everyone()
    return final


def find_checkpoint(resume_from_checkpoint: str, output_dir: str) -> str | None:
    """The folder `--resume_from_checkpoint` names: itself, or for `latest` the highest step saved in
    `output_dir` (None when there is none)."""
    if resume_from_checkpoint != "latest":
        return resume_from_checkpoint
    folder = checkpoints_dir(output_dir)
    names = [n for n in os.listdir(folder) if n.startswith("step_")] if os.path.isdir(folder) else []
    return os.path.join(folder, max(names, key=lambda n: int(n.split("_")[1]))) if names else None


def load_checkpoint(accelerator, path: str) -> dict:
    """Restore the states `save_checkpoint` saved in `path` into the prepared objects; returns its progress."""
    accelerator.load_state(path)
    with open(os.path.join(path, PROGRESS_FILE)) as f:
        return json.load(f)

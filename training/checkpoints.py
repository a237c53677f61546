"""Checkpoints of a training run: accelerate's state, `progress.json` and the best model so far (`best_model/`,
hard links where the file system allows), in `output_dir/checkpoints/step_N`.

A checkpoint is written as `step_N.partial` and renamed to `step_N` once every process has saved its part, so
a `step_N` folder is complete; a `.partial` folder is what a run killed while saving leaves, and is never
resumed from. Loading refuses what would not resume exactly: a damaged file, or random states that cannot
be restored (accelerate only logs those and carries on with other random draws). Resuming also puts the
checkpoint's best model back in place, so the model finally saved is the one its `best_step` names.
"""

import json
import os
import pickle
import random
import re
import shutil

import numpy as np
import torch
from accelerate.logging import get_logger
from accelerate.utils import RNG_STATE_NAME
from accelerate.utils import load as accelerate_load
from safetensors import SafetensorError
from safetensors.torch import load_file

from motionpatches.atomic import staged_folder

logger = get_logger(__name__)  # warns once, from the main process

PROGRESS_FILE = "progress.json"
BEST_MODEL = "best_model"
PARTIAL_SUFFIX = ".partial"
STEP_FOLDER = re.compile(r"step_(\d+)")
# what a file cut short, or not a checkpoint file at all, raises while torch, safetensors or pickle read it
UNREADABLE = (OSError, RuntimeError, ValueError, EOFError, KeyError, TypeError, pickle.UnpicklingError, SafetensorError)


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be resumed from exactly; the message names it and what to do instead."""


def checkpoints_dir(output_dir: str) -> str:
    return os.path.join(output_dir, "checkpoints")


def save_checkpoint(accelerator, output_dir: str, step: int, progress: dict, best_model_dir: str | None = None) -> str:
    """Save the model, optimizer and RNG states, `progress` and the folder `best_model_dir` (when it exists) as
    `checkpoints/step_{step}`; returns its path."""
    final = os.path.join(checkpoints_dir(output_dir), f"step_{step}")
    partial = final + PARTIAL_SUFFIX
    if accelerator.is_main_process and os.path.isdir(partial):
        shutil.rmtree(partial)  # left by a run killed while saving this step: its files may be cut short
    accelerator.wait_for_everyone()
    accelerator.save_state(partial)
    # each process writes its own random states: the folder is complete only once all of them have
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        with open(os.path.join(partial, PROGRESS_FILE), "w") as f:
            json.dump(progress, f)
        if best_model_dir and os.path.isdir(best_model_dir):
            link_or_copy_files(best_model_dir, os.path.join(partial, BEST_MODEL))
        if os.path.isdir(final):  # saved before by the run this one resumed; this step's state replaces it
            shutil.rmtree(final)
        os.replace(partial, final)
    accelerator.wait_for_everyone()
    return final


def checkpoint_step(path: str) -> int:
    """The optimizer step a checkpoint holds, from its `progress.json`."""
    check_complete(path)
    return int(read_progress(path)["step"])


def find_checkpoint(resume_from_checkpoint: str, output_dir: str) -> str | None:
    """The folder `--resume_from_checkpoint` names: itself, or for `latest` the highest complete step saved in
    `output_dir` (None, with a warning, when there is none)."""
    if resume_from_checkpoint != "latest":
        check_complete(resume_from_checkpoint)
        return resume_from_checkpoint
    folder = checkpoints_dir(output_dir)
    complete, incomplete = list_checkpoints(folder)
    if incomplete:
        logger.warning(
            f"skipping incomplete checkpoints in {folder} (a run killed while saving leaves them): "
            f"{', '.join(incomplete)}; they are replaced when training saves those steps again"
        )
    if not complete:
        logger.warning(
            f"--resume_from_checkpoint latest: no complete checkpoint in {folder}; training starts at step 0"
        )
        return None
    return complete[-1][1]


def list_checkpoints(folder: str) -> tuple[list[tuple[int, str]], list[str]]:
    """(`(step, path)` of the complete checkpoints by increasing step, names of the incomplete ones) in `folder`."""
    names = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
    complete, incomplete = [], []
    for name in names:
        match = STEP_FOLDER.fullmatch(name.removesuffix(PARTIAL_SUFFIX))
        if not match or not os.path.isdir(os.path.join(folder, name)):
            continue
        if name.endswith(PARTIAL_SUFFIX) or not os.path.isfile(os.path.join(folder, name, PROGRESS_FILE)):
            incomplete.append(name)
        else:
            complete.append((int(match.group(1)), os.path.join(folder, name)))
    return sorted(complete), incomplete


def check_complete(path: str) -> None:
    if not os.path.isdir(path):
        raise CheckpointError(
            f"checkpoint folder not found: {path}; --resume_from_checkpoint takes an output_dir/checkpoints/step_N "
            "folder, or 'latest'"
        )
    if path.rstrip(os.sep).endswith(PARTIAL_SUFFIX) or not os.path.isfile(os.path.join(path, PROGRESS_FILE)):
        raise CheckpointError(
            f"{path} is an incomplete checkpoint (no {PROGRESS_FILE}: the run was killed while saving it); "
            f"resume from a complete one{earlier_checkpoints_hint(path)}"
        )


def read_progress(path: str) -> dict:
    try:
        with open(os.path.join(path, PROGRESS_FILE)) as f:
            return json.load(f)
    except (OSError, ValueError) as err:
        raise CheckpointError(
            f"{path}: cannot read {PROGRESS_FILE} ({err}); resume from another checkpoint{earlier_checkpoints_hint(path)}"
        ) from err


def load_checkpoint(accelerator, path: str) -> dict:
    """Restore the states `save_checkpoint` saved in `path` into the prepared objects; returns its progress."""
    progress = read_progress(path)
    try:
        accelerator.load_state(path)
    except UNREADABLE as err:
        raise CheckpointError(damaged_message(path, err)) from err
    restore_random_states(path, accelerator.process_index)
    return progress


def restore_best_model(path: str, best_model_dir: str) -> bool:
    """Publish the checkpoint's best model into `best_model_dir`: the folder there may hold a later step's best
    model (the interrupted run went on) or none (a checkpoint copied elsewhere). False when it holds none."""
    saved = os.path.join(path, BEST_MODEL)
    if not os.path.isdir(saved):
        return False
    with staged_folder(best_model_dir) as staging:
        link_or_copy_files(saved, staging)
    return True


def link_or_copy_files(source: str, target: str) -> None:
    """Hard links cost no space, and stay valid because saved files are replaced by renames, never rewritten."""
    os.makedirs(target, exist_ok=True)
    for name in os.listdir(source):
        try:
            os.link(os.path.join(source, name), os.path.join(target, name))
        except OSError:
            shutil.copy2(os.path.join(source, name), os.path.join(target, name))


def restore_random_states(path: str, process_index: int) -> None:
    """Set Python's, numpy's and torch's random states from this process's file; raises when they cannot be,
    where accelerate's `load_state` only logs it and training would go on with other random draws."""
    file = os.path.join(path, f"{RNG_STATE_NAME}_{process_index}.pkl")
    if not os.path.isfile(file):
        raise CheckpointError(
            f"{path} holds no random states for process {process_index} ({os.path.basename(file)}): it was saved by "
            "a run of fewer processes; resume with the process count it was saved with"
        )
    try:
        states = accelerate_load(file)
        random.setstate(states["random_state"])
        np.random.set_state(states["numpy_random_seed"])
        torch.set_rng_state(states["torch_manual_seed"])
    except UNREADABLE as err:
        raise CheckpointError(
            f"{file}: the random states cannot be restored ({type(err).__name__}: {err}), so resuming would not "
            f"repeat the interrupted run's dropout; resume from another checkpoint{earlier_checkpoints_hint(path)}"
        ) from err


def damaged_message(path: str, err: Exception) -> str:
    file = first_unreadable_file(path)
    what = f"{os.path.join(path, file)} is damaged (cut short?)" if file else f"{path} cannot be loaded"
    return (
        f"{what}: {type(err).__name__}: {str(err).rstrip('.')}. "
        f"Resume from an earlier checkpoint{earlier_checkpoints_hint(path)}; if it was saved with other model or "
        "optimizer settings, resume with the flags it was trained with"
    )


def first_unreadable_file(path: str) -> str | None:
    """The first state file in `path` that does not read whole, to name it in the error."""
    for name in sorted(os.listdir(path)):
        file = os.path.join(path, name)
        try:
            if name.endswith(".safetensors"):
                load_file(file)
            elif name.endswith((".bin", ".pkl")):
                accelerate_load(file)
        except UNREADABLE:
            return name
    return None


def earlier_checkpoints_hint(path: str) -> str:
    """`: --resume_from_checkpoint <the complete checkpoint before path>`, or what to do when there is none."""
    path = os.path.abspath(path)
    match = STEP_FOLDER.fullmatch(os.path.basename(path).removesuffix(PARTIAL_SUFFIX))
    complete, _ = list_checkpoints(os.path.dirname(path))
    earlier = [p for step, p in complete if p != path and (not match or step < int(match.group(1)))]
    if not earlier:
        return " (there is none before it in its folder: start again without --resume_from_checkpoint)"
    return f": --resume_from_checkpoint {earlier[-1]}"

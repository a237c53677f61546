"""Resuming a training run (motionpatches.training.train): bit-identical to the uninterrupted run from any
position in an epoch, past the first epoch, with 1 and 2 processes, after SIGKILLs and after a kill while a
checkpoint was being saved; a finished run is left alone; what cannot resume exactly is refused by name.

Runs are tiny (epochs of 3-4 steps, a checkpoint every step) and compared with a run started the same way:
in this process (as `python training/train.py` runs), or by `accelerate launch` for two processes (launchers
differ bitwise from each other by their thread counts).
"""

import contextlib
import io
import json
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import psutil
import pytest
import safetensors.torch
import torch
from launch import two_process_command

from motionpatches import MotionPatchProcessor
from motionpatches.training.checkpoints import CheckpointError, list_checkpoints
from motionpatches.training.train import main as train_main

REPO = Path(__file__).resolve().parents[1]
TRAIN = REPO / "training" / "train.py"
TINY = [
    "--dataset_name", "demo", "--text_model", "tiny",
    "--text_config_overrides", json.dumps({"hidden_size": 32, "num_attention_heads": 2, "intermediate_size": 64}),
    "--motion_backbone_kwargs", json.dumps({"embed_dim": 32, "depth": 1, "num_heads": 2}),
    "--projection_dim", "16", "--num_frames", "64",
    "--per_device_train_batch_size", "8", "--per_device_eval_batch_size", "16",
    "--checkpointing_steps", "1", "--eval_steps", "2", "--report_to", "none", "--query", "",
]  # fmt: skip
# one process: 32 rows, 4 steps per epoch, 3 epochs
ONE = [*TINY, "--demo_sizes", "32,8,8", "--max_steps", "12"]
ONE_STEPS = 12
# resumed from: one step into epoch 1 (start), the end of epoch 1 (boundary), two steps into epoch 2 (middle)
ONE_POSITIONS = {"start": 5, "boundary": 8, "middle": 10}
# two processes: 48 rows, 6 global batches, 3 steps per epoch in each process, 3 epochs
TWO = [*TINY, "--demo_sizes", "48,8,8", "--max_steps", "9"]
TWO_STEPS = 9
TWO_POSITIONS = {"start": 4, "boundary": 6, "middle": 8}


def train(*args) -> str:
    """The trainer's `main(args)` in this process; returns what it printed."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        train_main([str(arg) for arg in args])
    return printed.getvalue()


def checkpoint(run: Path, step: int) -> Path:
    return run / "checkpoints" / f"step_{step}"


def complete_steps(run: Path) -> set[int]:
    return {step for step, _ in list_checkpoints(run / "checkpoints")[0]}


def copy_checkpoint(source: Path, step: int, target: Path, name: str | None = None) -> Path:
    """Copy `source`'s checkpoint of `step` into `target`'s checkpoints (as `name`), as a user moving a run would."""
    copy = target / "checkpoints" / (name or f"step_{step}")
    shutil.copytree(checkpoint(source, step), copy)
    return copy


def leave_mid_save_leftover(run: Path) -> str:
    """What a kill between accelerate's `save_state` and the rename leaves: `step_{N+1}.partial` after the
    latest complete step N, its files written but one cut short and no progress.json yet."""
    latest = max(complete_steps(run))
    partial = copy_checkpoint(run, latest, run, f"step_{latest + 1}.partial")
    (partial / "progress.json").unlink()
    truncate(partial / "optimizer.bin")
    return partial.name


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def assert_same_run(expected: Path, actual: Path, last_step: int) -> None:
    """Bit-identical last checkpoint and final model, and the same metrics (best step, validation, test)."""
    for relative in (f"checkpoints/step_{last_step}/model.safetensors", "model.safetensors"):
        want = safetensors.torch.load_file(str(expected / relative))
        got = safetensors.torch.load_file(str(actual / relative))
        assert want.keys() == got.keys(), relative
        for name, tensor in want.items():
            torch.testing.assert_close(got[name], tensor, rtol=0, atol=0, msg=f"{relative}: {name}")
    assert json.loads((actual / "metrics.json").read_text()) == json.loads((expected / "metrics.json").read_text())


def snapshot(folder: Path) -> dict:
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()
    }


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> Path:
    """The uninterrupted one-process run every resumed run is compared with."""
    run = tmp_path_factory.mktemp("straight") / "run"
    train(*ONE, "--output_dir", run)
    return run


@pytest.mark.parametrize("position", ONE_POSITIONS)
def test_resuming_anywhere_in_an_epoch_is_bit_identical(straight, tmp_path, position):
    step = ONE_POSITIONS[position]
    # a checkpoint copied alone into a new folder: the best model so far travels inside it
    resume_from = copy_checkpoint(straight, step, tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train(*ONE, "--output_dir", tmp_path, "--resume_from_checkpoint", resume_from)
    assert_same_run(straight, tmp_path, ONE_STEPS)
    assert not [w for w in caught if "lr_scheduler.step()" in str(w.message)]  # the schedule is rebuilt, not replayed
    initial = safetensors.torch.load_file(str(resume_from / "model.safetensors"))
    final = safetensors.torch.load_file(str(checkpoint(tmp_path, ONE_STEPS) / "model.safetensors"))
    assert any(not torch.equal(initial[name], final[name]) for name in final), "the resumed steps changed nothing"


def test_resuming_with_gradient_accumulation_is_bit_identical(tmp_path):
    # 3 batches per epoch accumulated by 2: accelerate steps after batches 2 and 3, so 2 steps per epoch
    accumulate = [*TINY, "--demo_sizes", "24,8,8", "--max_steps", "6", "--gradient_accumulation_steps", "2"]
    train(*accumulate, "--output_dir", tmp_path / "straight")
    resume_from = copy_checkpoint(tmp_path / "straight", 3, tmp_path / "resumed")  # one step into epoch 1
    train(*accumulate, "--output_dir", tmp_path / "resumed", "--resume_from_checkpoint", resume_from)
    assert_same_run(tmp_path / "straight", tmp_path / "resumed", 6)


def test_latest_skips_a_checkpoint_killed_while_saving(straight, tmp_path, caplog):
    copy_checkpoint(straight, 6, tmp_path)
    leftover = leave_mid_save_leftover(tmp_path)
    # and what kills while publishing the best model or writing metrics.json leave behind
    (tmp_path / ".best_model.x1y2.partial").mkdir()
    (tmp_path / ".best_model.x1y2.partial" / "model.safetensors").write_bytes(b"cut")
    (tmp_path / ".metrics.a1b2c3.partial.json").write_text("{")
    train(*ONE, "--output_dir", tmp_path, "--resume_from_checkpoint", "latest")
    assert f"skipping incomplete checkpoints in {tmp_path / 'checkpoints'}" in caplog.text and leftover in caplog.text
    assert_same_run(straight, tmp_path, ONE_STEPS)
    assert not list((tmp_path / "checkpoints").glob("*.partial"))  # saved again whole, in its place
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_checkpoint_of_another_batch_layout_is_refused(straight, tmp_path):
    resume_from = copy_checkpoint(straight, 6, tmp_path)
    layout = ["--per_device_train_batch_size", "16"]  # 2 steps per epoch instead of 4: step 6 is other batches
    with pytest.raises(
        CheckpointError, match=r"'steps_per_epoch': 4.*'steps_per_epoch': 2.*--per_device_train_batch_size"
    ):
        train(*ONE, *layout, "--output_dir", tmp_path, "--resume_from_checkpoint", resume_from)


def test_an_incomplete_checkpoint_named_explicitly_is_refused(straight, tmp_path):
    copy_checkpoint(straight, 6, tmp_path)
    leftover = tmp_path / "checkpoints" / leave_mid_save_leftover(tmp_path)
    with pytest.raises(CheckpointError, match=r"incomplete checkpoint.*--resume_from_checkpoint .*step_6\b"):
        train(*ONE, "--output_dir", tmp_path, "--resume_from_checkpoint", leftover)


@pytest.mark.parametrize("damaged", ["model.safetensors", "optimizer.bin"])
def test_a_truncated_checkpoint_file_is_named_with_an_earlier_checkpoint(straight, tmp_path, damaged):
    copy_checkpoint(straight, 5, tmp_path)
    truncate(copy_checkpoint(straight, 6, tmp_path) / damaged)
    with pytest.raises(CheckpointError) as refused:
        train(*ONE, "--output_dir", tmp_path, "--resume_from_checkpoint", "latest")
    message = str(refused.value)
    assert str(checkpoint(tmp_path, 6) / damaged) in message
    assert f"--resume_from_checkpoint {checkpoint(tmp_path, 5)}" in message


def test_unreadable_random_states_are_refused(straight, tmp_path):
    states = copy_checkpoint(straight, 6, tmp_path) / "random_states_0.pkl"
    truncate(states)
    with pytest.raises(CheckpointError, match="random states cannot be restored") as refused:
        train(*ONE, "--output_dir", tmp_path, "--resume_from_checkpoint", "latest")
    assert str(states) in str(refused.value) and "start again without --resume_from_checkpoint" in str(refused.value)


def test_latest_without_checkpoints_says_where_it_looked(tmp_path, caplog):
    train(
        *TINY,
        "--demo_sizes",
        "32,8,8",
        "--max_steps",
        "2",
        "--output_dir",
        tmp_path,
        "--resume_from_checkpoint",
        "latest",
    )
    assert f"no complete checkpoint in {tmp_path / 'checkpoints'}; training starts at step 0" in caplog.text
    assert json.loads((tmp_path / "metrics.json").read_text())["steps"] == 2


@pytest.mark.parametrize("resume_from", ["latest", "last checkpoint"])
def test_a_finished_run_resumed_changes_nothing(straight, tmp_path, caplog, resume_from):
    run = tmp_path / "run"
    shutil.copytree(straight, run)
    before = snapshot(run)
    target = "latest" if resume_from == "latest" else checkpoint(run, ONE_STEPS)
    assert train(*ONE, "--output_dir", run, "--resume_from_checkpoint", target) == ""
    assert f"{run} holds a finished run (12 steps" in caplog.text and "nothing was changed" in caplog.text
    assert snapshot(run) == before


def test_a_run_killed_while_saving_the_final_model_finishes_on_resume(straight, tmp_path, monkeypatch):
    run = tmp_path / "run"
    processor_save = MotionPatchProcessor.save_pretrained

    def killed_in_final_save(self, folder, *args, **kwargs):
        processor_save(self, folder, *args, **kwargs)
        if Path(folder).name.startswith(f".{run.name}."):  # staging the final model (not best_model)
            raise KeyboardInterrupt

    monkeypatch.setattr(MotionPatchProcessor, "save_pretrained", killed_in_final_save)
    with pytest.raises(KeyboardInterrupt):
        train(*ONE, "--output_dir", run)
    monkeypatch.undo()
    # nothing of the final model was published; the best model is whole
    published = {p.name for p in run.iterdir()}
    assert published == {"checkpoints", "best_model"}, published
    assert (run / "best_model" / "config.json").stat().st_size > 0
    train(*ONE, "--output_dir", run, "--resume_from_checkpoint", "latest")
    assert_same_run(straight, run, ONE_STEPS)
    assert not (run / "best_model").exists() and not [p for p in run.iterdir() if p.name.startswith(".")]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder beside output_dir


# ---------------------------------------------------------------------------------------------- real kills


def kill_all(proc: subprocess.Popen) -> None:
    """SIGKILL `proc` and every process under it: torchrun starts its workers in sessions of their own."""
    with contextlib.suppress(psutil.NoSuchProcess):
        family = psutil.Process(proc.pid).children(recursive=True)
        for member in [*family, psutil.Process(proc.pid)]:
            with contextlib.suppress(psutil.NoSuchProcess):
                member.send_signal(signal.SIGKILL)
    proc.wait()


def kill_after_checkpoint(command: list, run: Path, step: int, env: dict, log: Path) -> None:
    """Start `command` and SIGKILL it with all its processes as soon as it has saved a checkpoint of `step` or
    later (one it did not find on disk)."""
    before = complete_steps(run)
    with open(log, "w") as stderr:
        proc = subprocess.Popen([str(a) for a in command], env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    deadline = time.time() + 300
    while not any(s >= step and s not in before for s in complete_steps(run)):
        if proc.poll() is not None or time.time() > deadline:
            kill_all(proc)
            pytest.fail(f"the run ended or hung before saving step {step}:\n{log.read_text()[-3000:]}")
        time.sleep(0.01)  # a step takes tens of milliseconds
    kill_all(proc)


@pytest.mark.slow
def test_killed_twice_and_while_saving_resumes_bit_identical(straight, tmp_path, offline_env, caplog):
    run = tmp_path / "killed"
    python = [sys.executable, TRAIN, *ONE, "--output_dir", run]
    kill_after_checkpoint(python, run, 5, offline_env, tmp_path / "first.log")  # past the first epoch's end
    # the resumed run killed too, past the second epoch's end: its own checkpoints must be exact as well
    kill_after_checkpoint([*python, "--resume_from_checkpoint", "latest"], run, 9, offline_env, tmp_path / "second.log")
    leftover = leave_mid_save_leftover(run)
    train(*ONE, "--output_dir", run, "--resume_from_checkpoint", "latest")
    assert leftover in caplog.text
    assert_same_run(straight, run, ONE_STEPS)

    # an earlier checkpoint named on purpose redoes its steps and replaces the later checkpoints identically
    train(*ONE, "--output_dir", run, "--resume_from_checkpoint", checkpoint(run, 5))
    assert_same_run(straight, run, ONE_STEPS)


def launch_two(*args) -> list:
    return two_process_command(TRAIN, *TWO, *args)


@pytest.mark.slow
def test_two_processes_resume_bit_identical(tmp_path, offline_env):
    env = {**offline_env, "ACCELERATE_USE_CPU": "1"}  # else accelerate, finding no GPU, runs each process alone

    def launch(*args) -> str:
        proc = subprocess.run(launch_two(*args), env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-4000:]
        return proc.stderr

    # every run its own launch of the script, as a user starts them (accelerate ends the process group at the end)
    straight = tmp_path / "straight"
    launch("--output_dir", straight)
    for step in TWO_POSITIONS.values():
        resumed = tmp_path / f"at_{step}"
        launch("--output_dir", resumed, "--resume_from_checkpoint", copy_checkpoint(straight, step, resumed))
        assert_same_run(straight, resumed, TWO_STEPS)

    killed = tmp_path / "killed"
    kill_after_checkpoint(launch_two("--output_dir", killed), killed, 4, env, tmp_path / "killed.log")
    leftover = leave_mid_save_leftover(killed)
    assert leftover in launch("--output_dir", killed, "--resume_from_checkpoint", "latest")
    assert_same_run(straight, killed, TWO_STEPS)

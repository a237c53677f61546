"""CPU threads: all available cores by default, the user's choice kept, accelerate launch's default of 1 not
taken for a choice (told apart by reading the launcher process)."""

import logging
import os
import subprocess
import sys

import pytest
import torch

from motionpatches import threads

LAUNCHED = {threads.LAUNCHED_MARKER: "NO", "OMP_NUM_THREADS": "1"}
ACCELERATE_ARGV = ["/venv/bin/python", "/venv/bin/accelerate", "launch", "train.py"]


@pytest.fixture(autouse=True)
def keep_torch_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def processes(*chain):
    """A fake /proc: chain[i] is (argv, environ) of this process's i-th ancestor (0: its parent)."""
    pids = {os.getppid() + 1000 * i: process for i, process in enumerate(chain)}
    order = list(pids)

    def read(pid):
        if pid == os.getppid():
            pid = order[0]
        if pid not in pids:
            return None
        argv, environ = pids[pid]
        position = order.index(pid)
        parent = order[position + 1] if position + 1 < len(order) else 1
        return argv, {**environ, "__parent__": str(parent)}

    return read


def test_launchers_default_is_not_a_choice():
    read = processes((ACCELERATE_ARGV, {"PATH": "/usr/bin"}))
    count, reason = threads.users_thread_count(LAUNCHED, read)
    assert count is None and "default" in reason
    assert threads.configure_threads(environ=LAUNCHED, read=read) == threads.available_cores()
    assert torch.get_num_threads() == threads.available_cores()


@pytest.mark.parametrize(
    "argv, environ, source",
    [
        ([*ACCELERATE_ARGV[:3], "--num_cpu_threads_per_process", "1", "train.py"], {}, "--num_cpu_threads_per_process"),
        ([*ACCELERATE_ARGV[:3], "--num_cpu_threads_per_process=1", "train.py"], {}, "--num_cpu_threads_per_process"),
        (ACCELERATE_ARGV, {"OMP_NUM_THREADS": "1"}, "OMP_NUM_THREADS given to accelerate launch"),
        (["python", "-m", "accelerate.commands.launch", "--num_cpu_threads_per_process", "1", "t.py"], {}, "launch"),
    ],
)
def test_a_thread_count_given_to_the_launcher_is_kept(argv, environ, source):
    count, reason = threads.users_thread_count(LAUNCHED, processes((argv, environ)))
    assert count == 1 and source in reason


def test_the_launcher_is_found_above_a_wrapper():
    """torchrun-style workers and shell wrappers put a process between the script and the launcher."""
    read = processes((["/bin/sh", "-c", "python train.py"], {}), (ACCELERATE_ARGV, {"OMP_NUM_THREADS": "1"}))
    assert threads.users_thread_count(LAUNCHED, read)[0] == 1
    read = processes((["/bin/sh", "-c", "python train.py"], {}), (ACCELERATE_ARGV, {}))
    assert threads.users_thread_count(LAUNCHED, read)[0] is None


def test_without_proc_the_environment_is_kept():
    assert threads.users_thread_count(LAUNCHED, lambda pid: None) == (
        1,
        "OMP_NUM_THREADS (the launcher could not be inspected, so it is kept)",
    )


def test_outside_accelerate_omp_num_threads_is_the_users():
    assert threads.users_thread_count({"OMP_NUM_THREADS": "1"}, processes())[0] == 1
    assert threads.users_thread_count({}, processes())[0] is None
    assert threads.users_thread_count({"OMP_NUM_THREADS": "many"}, processes())[0] is None


def test_processes_share_the_cores_and_num_threads_wins(caplog):
    caplog.set_level(logging.INFO, logger="motionpatches.threads")
    shared = threads.configure_threads(environ={"LOCAL_WORLD_SIZE": "2"}, read=processes())
    assert shared == max(1, threads.available_cores() // 2)
    assert threads.configure_threads(3, environ=LAUNCHED, read=processes()) == 3 == torch.get_num_threads()
    assert "using 3 CPU threads (--num_threads)" in caplog.text
    with pytest.raises(ValueError, match="--num_threads must be at least 1"):
        threads.configure_threads(0)


SCRIPT = """
import logging, torch
from motionpatches.threads import configure_threads
logging.basicConfig(level=logging.INFO)
configure_threads()
print("threads", torch.get_num_threads())
"""


def launch(tmp_path, *launcher_args, env=None):
    script = tmp_path / "show_threads.py"
    script.write_text(SCRIPT)
    environ = {key: value for key, value in os.environ.items() if key != "OMP_NUM_THREADS"} | (env or {})
    accelerate = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "1", *launcher_args]
    done = subprocess.run(
        [*accelerate, str(script)], env=environ, capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    return [int(line.split()[1]) for line in done.stdout.splitlines() if line.startswith("threads")], done.stderr


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads the launcher from /proc (Linux)")
def test_accelerate_launch_end_to_end(tmp_path):
    """The real launcher: its default gives every core, a user's 1 (flag or environment) stays 1."""
    counts, log = launch(tmp_path)
    assert counts == [threads.available_cores()], log
    assert "accelerate launch's default" in log
    assert launch(tmp_path, "--num_cpu_threads_per_process", "1")[0] == [1]
    assert launch(tmp_path, env={"OMP_NUM_THREADS": "1"})[0] == [1]

"""How many CPU threads PyTorch uses: every core this process may run on, shared among the processes of this
machine, unless the user chose a number.

`accelerate launch` on a CPU machine exports `OMP_NUM_THREADS=1` to the script when neither
`--num_cpu_threads_per_process` nor `OMP_NUM_THREADS` was given to it, so a launched script would use one core
of many. The script alone cannot tell that 1 from a user's `OMP_NUM_THREADS=1`, so it asks the launcher: the
`accelerate launch` process is the script's parent (its own child with one process, the parent of every
worker with several), and its command line and environment, read from `/proc/<pid>/`, say whether the user
gave either. Only then is `OMP_NUM_THREADS` overridden. Where the launcher cannot be read (no `/proc`),
`OMP_NUM_THREADS` is kept, since it may be the user's.

Order: `--num_threads` (`requested`), then `OMP_NUM_THREADS` the user set (directly, or through the launcher),
then cores / local processes (`LOCAL_WORLD_SIZE`, set for each worker by the launcher; 1 otherwise).
"""

import logging
import os

import torch

logger = logging.getLogger(__name__)

LAUNCHER_FLAG = "--num_cpu_threads_per_process"
# every `accelerate launch` code path exports this to the script it starts
LAUNCHED_MARKER = "ACCELERATE_DYNAMO_BACKEND"
ANCESTORS_SEARCHED = 3

_configured: int | None = None


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, which `taskset` and container cpusets narrow)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def local_processes(environ=os.environ) -> int:
    try:
        return max(1, int(environ.get("LOCAL_WORLD_SIZE", "1")))
    except ValueError:
        return 1


def read_process(pid: int) -> tuple[list[str], dict[str, str]] | None:
    """(command line, environment at start) of process `pid`, or None where /proc does not show them."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as file:
            argv = [part.decode(errors="replace") for part in file.read().split(b"\0") if part]
        with open(f"/proc/{pid}/environ", "rb") as file:
            pairs = [part.decode(errors="replace").partition("=") for part in file.read().split(b"\0") if part]
        with open(f"/proc/{pid}/stat", "rb") as file:
            parent = int(file.read().rsplit(b")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return argv, {name: value for name, _, value in pairs} | {"__parent__": str(parent)}


def is_accelerate_launch(argv: list[str]) -> bool:
    """`accelerate launch ...` (the console script, maybe after an interpreter) or `python -m
    accelerate.commands.launch ...`."""
    head = " ".join(os.path.basename(part) for part in argv[:4])
    return "accelerate" in head and "launch" in head


def find_launcher(read=read_process) -> tuple[list[str], dict[str, str]] | None:
    """The `accelerate launch` process among this process's nearest ancestors."""
    pid = os.getppid()
    for _ in range(ANCESTORS_SEARCHED):
        process = read(pid)
        if process is None:
            return None
        argv, environ = process
        if is_accelerate_launch(argv):
            return argv, environ
        pid = int(environ["__parent__"])
        if pid <= 1:
            return None
    return None


def gave_thread_flag(argv: list[str]) -> bool:
    return any(part == LAUNCHER_FLAG or part.startswith(LAUNCHER_FLAG + "=") for part in argv)


def users_thread_count(environ=os.environ, read=read_process) -> tuple[int | None, str]:
    """(the thread count the user chose, where it came from), or (None, why not) when nobody chose one."""
    value = environ.get("OMP_NUM_THREADS")
    if not value:
        return None, "OMP_NUM_THREADS is not set"
    try:
        count = int(value)
    except ValueError:
        return None, f"OMP_NUM_THREADS={value!r} is not a number"
    if count < 1:
        return None, f"OMP_NUM_THREADS={value!r} is below 1"
    if LAUNCHED_MARKER not in environ:
        return count, "OMP_NUM_THREADS"
    launcher = find_launcher(read)
    if launcher is None:
        return count, "OMP_NUM_THREADS (the launcher could not be inspected, so it is kept)"
    argv, launcher_environ = launcher
    if gave_thread_flag(argv):
        return count, f"accelerate launch {LAUNCHER_FLAG}"
    if launcher_environ.get("OMP_NUM_THREADS"):
        return count, "OMP_NUM_THREADS given to accelerate launch"
    return None, f"OMP_NUM_THREADS={value} is accelerate launch's default, not a choice"


def configure_threads(requested: int | None = None, *, environ=os.environ, read=read_process) -> int:
    """Set PyTorch's intra-op threads (see the module's docstring for the order) and log it once; returns the
    count."""
    global _configured
    if requested is not None:
        if requested < 1:
            raise ValueError(f"--num_threads must be at least 1, got {requested}")
        count, reason = requested, "--num_threads"
    else:
        count, reason = users_thread_count(environ, read)
        if count is None:
            cores, processes = available_cores(), local_processes(environ)
            count = max(1, cores // processes)
            plural = "es" if processes > 1 else ""
            reason = f"{cores} cores available / {processes} process{plural} on this machine; {reason}"
    torch.set_num_threads(count)
    if _configured != count:
        logger.info(f"using {count} CPU thread{'s' if count > 1 else ''} ({reason})")
        _configured = count
    return count

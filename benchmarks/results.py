"""What every benchmark shares: measuring (wall time, memory, other processes' CPU load), describing the
machine, the common command-line flags, and formatting and appending results to `benchmarks/RESULTS.md`.

Every benchmark records how its numbers were produced (command, date, machine, commit) next to the
numbers themselves, so a reader can rerun it and compare like with like.
"""

import argparse
import ctypes
import datetime
import gc
import os
import platform
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_PATH = REPO_ROOT / "benchmarks" / "RESULTS.md"
_LIBC = ctypes.CDLL(None)  # the C library this process runs on, for malloc_trim
HEADER = (
    "# Benchmark results\n\n"
    "Appended by the scripts in `benchmarks/`; each section gives the command, date, machine and commit "
    "that produced it. Numbers are only comparable between sections run on the same machine.\n"
)


def machine_info() -> dict:
    """What the timings depend on: core count, torch's thread pool and library versions."""
    return {
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout.strip()


def git_commit() -> str:
    """Short HEAD hash, with "+dirty" when the work tree differs from it (the numbers may not be HEAD's)."""
    try:
        return _git("rev-parse", "--short", "HEAD") + ("+dirty" if _git("status", "--porcelain") else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _modified_tracked_files() -> list[str]:
    """Committed files changed in the work tree: the code measured may differ from the commit's there."""
    try:
        return _git("diff", "--name-only", "HEAD").splitlines()
    except (OSError, subprocess.CalledProcessError):
        return []


def _command() -> str:
    """The command line that is running, as a reader would retype it from the repository root.

    `python -m benchmarks.<name> ...` when run as a module (`__main__`'s spec names the module; `sys.argv[0]`
    is then the file's absolute path); a script inside the repository by its relative path; anything else
    (e.g. a test calling `main([...])` in process) as `sys.argv` stands.
    """
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is not None and spec.name:
        module = spec.name.removesuffix(".__main__")  # `python -m package` runs `package.__main__`
        return shlex.join(["python", "-m", module, *sys.argv[1:]])
    script = Path(sys.argv[0]).resolve() if sys.argv and sys.argv[0] else None
    if script is not None and script.is_relative_to(REPO_ROOT):
        return shlex.join(["python", str(script.relative_to(REPO_ROOT)), *sys.argv[1:]])
    return shlex.join(["python", *sys.argv])


def append_results(title: str, table: str, notes: str = "", path=None) -> str:
    """Append one section to `benchmarks/RESULTS.md` (or `path`), creating the file if missing; returns it."""
    path = Path(path) if path is not None else RESULTS_PATH
    machine = ", ".join(f"{key} {value}" for key, value in machine_info().items())
    date = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    provenance = {"command": f"`{_command()}`", "date": date, "machine": machine, "commit": git_commit()}
    section = f"\n## {title}\n\n" + "".join(f"- {key}: {value}\n" for key, value in provenance.items())
    modified = _modified_tracked_files()
    if modified:
        section += f"- uncommitted changes to: {', '.join(modified)}\n"
    section += f"\n```\n{table.rstrip()}\n```\n"
    if notes:
        section += f"\n{notes.rstrip()}\n"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(HEADER)
    with path.open("a") as handle:
        handle.write(section)
    return section


def format_table(rows: list[dict], columns: list[str]) -> str:
    """A fixed-width text table (readable both in a terminal and in a fenced markdown block)."""
    cells = [[str(row.get(column, "")) for column in columns] for row in rows]
    widths = [max([len(column)] + [len(line[i]) for line in cells]) for i, column in enumerate(columns)]

    def line(values):
        return "  ".join(value.rjust(width) for value, width in zip(values, widths)).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(columns), rule] + [line(values) for values in cells])


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (Linux reports ru_maxrss in KB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def current_rss_mb() -> float:
    """Resident memory of this process now, in MB (Linux: /proc/self/statm)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def start_memory_window() -> float:
    """Make the next `peak_rss_mb()` the peak of what runs after this call, not of the whole process; returns RSS now.

    Frees what earlier measurements left: garbage, then glibc's free heap pages (`malloc_trim`), so that a
    measurement cannot reuse memory an earlier one faulted in; then resets the kernel's peak-RSS mark (Linux).
    """
    gc.collect()
    _LIBC.malloc_trim(0)
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")
    return current_rss_mb()


def cpu_snapshot() -> dict:
    """All CPUs' busy time (from /proc/stat), this process's CPU time and the wall clock, in seconds."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:8]]
    usage = resource.getrusage(resource.RUSAGE_SELF)
    busy = sum(fields) - fields[3] - fields[4]  # all but idle and iowait
    return {
        "busy": busy / os.sysconf("SC_CLK_TCK"),
        "own": usage.ru_utime + usage.ru_stime,
        "wall": time.perf_counter(),
    }


def load_note(start: dict) -> str:
    """How much CPU other processes took since `start = cpu_snapshot()`: on 2 cores any of it slows every timing."""
    end = cpu_snapshot()
    others = max(0.0, (end["busy"] - start["busy"]) - (end["own"] - start["own"]))
    wall = end["wall"] - start["wall"]
    return (
        f"- Whole script: {wall:.0f} s wall. Other processes used {others:.0f} CPU-seconds meanwhile "
        f"({100 * others / wall:.0f}% of one core on average). Load average at the end (1, 5, 15 min): "
        + ", ".join(f"{x:.2f}" for x in os.getloadavg())
        + "."
    )


def measure(fn, repeat: int = 3, warmup: int = 1) -> float:
    """Best-of-`repeat` wall time of `fn()` in seconds: the minimum is the least disturbed by other load."""
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def benchmark_parser(doc: str, seed: bool = False) -> argparse.ArgumentParser:
    """The flags every benchmark takes: `--quick` (the seconds-long smoke configuration the tests run)
    and `--no-write` (print only), and `--seed` for those drawing random data; scripts add their own."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="seconds-long smoke configuration")
    parser.add_argument("--no-write", action="store_true", help="print only; do not append to RESULTS.md")
    if seed:
        parser.add_argument("--seed", type=int, default=0)
    return parser

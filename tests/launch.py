"""Starting two training processes with `accelerate launch` on this CPU machine, for the tests."""

import socket
import sys

# accelerate's own questions answered up front, so no config file is needed
LAUNCH_OPTIONS = ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]


def free_port() -> int:
    """A port for a launch's rendezvous: a fixed one fails when another run on the machine holds it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def two_process_command(script: str, *args) -> list[str]:
    """`accelerate launch --multi_gpu --num_processes 2 script args...` as an argument list."""
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2"]
    return [*launch, *LAUNCH_OPTIONS, "--main_process_port", str(free_port()), script, *map(str, args)]

import json
import os
import socket
import subprocess
import sys

# nothing in the tests may reach a server: the Hub libraries see offline mode, and any other
# attempt to open a non-local connection fails loudly instead of hanging on retries
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"

import numpy as np
import pytest

_connect = socket.socket.connect


def _local_only_connect(sock, address):
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and (host.startswith("127.") or host in ("localhost", "::1") or sock.family == socket.AF_UNIX):
        return _connect(sock, address)
    raise RuntimeError(f"tests must not use the network (tried to connect to {address})")


socket.socket.connect = _local_only_connect

SAMPLE_MOTION = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "humanml3d_sample", "012314.npy")
CAPTIONS = [
    "a person walks forward",
    "a person waves the left hand",
    "someone jumps up and down",
    "a man kicks with his right leg",
]


@pytest.fixture(scope="session")
def sample_motion_path():
    path = os.path.abspath(SAMPLE_MOTION)
    if not os.path.isfile(path):
        pytest.fail(f"the shared HumanML3D sample is missing: {path}")
    return path


@pytest.fixture(scope="session")
def sample_motion(sample_motion_path):
    return np.load(sample_motion_path)


@pytest.fixture(scope="session")
def tokenizer():
    from motionpatches.tiny import build_word_tokenizer

    return build_word_tokenizer(CAPTIONS)


def _run_clean_load(folder, motion_path, out_path, texts, workdir):
    """Run tests/clean_load.py isolated from this repository (and from PYTHONPATH and user site)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(workdir / "modules"), PYTHONNOUSERSITE="1")
    script = os.path.join(os.path.dirname(__file__), "clean_load.py")
    proc = subprocess.run(
        [sys.executable, "-I", script, str(folder), str(motion_path), str(out_path), json.dumps(texts)],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return np.load(out_path)


@pytest.fixture(scope="session")
def clean_load():
    return _run_clean_load

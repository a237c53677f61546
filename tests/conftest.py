import os
import socket

# nothing in the tests may reach a server: the Hub libraries see offline mode, and any other
# attempt to open a non-local connection fails loudly instead of hanging on retries
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"

import numpy as np  # noqa: E402
import pytest  # noqa: E402

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
    from modeling_motionpatches.tiny import build_word_tokenizer

    return build_word_tokenizer(CAPTIONS)

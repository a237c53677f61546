import json
import os
import socket
import subprocess
import sys

# nothing in the tests may reach a server: the Hub libraries see offline mode, and any other
# attempt to open a non-local connection fails loudly instead of hanging on retries
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"

import signal

import numpy as np
import pytest

_connect = socket.socket.connect


def _local_only_connect(sock, address):
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and (
        host.startswith("127.") or host in ("localhost", "::1") or sock.family == socket.AF_UNIX
    ):
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


@pytest.fixture
def stick_skeleton_file(tmp_path):
    """A 7-joint custom skeleton as the JSON file users write (joint names, five chains, frame rate)."""
    skeleton = {
        "name": "stick",
        "fps": 30,
        "joint_names": ["hip", "chest", "head", "l_hand", "r_hand", "l_foot", "r_foot"],
        "chains": {
            "torso": ["hip", "chest", "head"],
            "left_arm": ["chest", "l_hand"],
            "right_arm": ["chest", "r_hand"],
            "left_leg": ["hip", "l_foot"],
            "right_leg": ["hip", "r_foot"],
        },
    }
    path = tmp_path / "stick.json"
    path.write_text(json.dumps(skeleton))
    return path


@pytest.fixture(scope="session")
def tiny_model():
    """`tiny_model(texts, num_frames=224, seed=0, **config)` -> (model in eval mode, processor): a random
    2-layer model of width 32 whose tokenizer knows the words of `texts`, built offline in well under a second."""
    import torch

    from motionpatches import MotionPatchProcessor, MotionTextModel
    from motionpatches.tiny import build_word_tokenizer, tiny_config

    def build(texts, num_frames=224, seed=0, **config):
        tokenizer = build_word_tokenizer(texts)
        motion_config = {"num_frames": num_frames, **config.pop("motion_config", {})}
        torch.manual_seed(seed)
        model = MotionTextModel(tiny_config(len(tokenizer), motion_config=motion_config, **config)).eval()
        return model, MotionPatchProcessor(tokenizer=tokenizer, skeleton="humanml3d", num_frames=num_frames)

    return build


@pytest.fixture(scope="session")
def saved_tiny_model(tmp_path_factory, tiny_model):
    """A folder holding a tiny model (64 frames, SMPL-22) and its processor, saved once for the session."""
    folder = tmp_path_factory.mktemp("saved_tiny") / "model"
    model, processor = tiny_model(
        ["a person walks", "a person waves", "someone jumps", "a person dances"], num_frames=64
    )
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


@pytest.fixture
def cli(capsys):
    """The `motionpatches` command's `main`, in process: `cli(*args)` -> returncode, stdout, stderr."""
    from types import SimpleNamespace

    from motionpatches.cli import main

    def run(*args):
        code = main([str(arg) for arg in args])
        captured = capsys.readouterr()
        return SimpleNamespace(returncode=code, stdout=captured.out, stderr=captured.err)

    return run


@pytest.fixture(scope="session")
def write_bad_motions():
    """`write_bad_motions(folder, num_joints=22)` -> {name: path} of three files no reader can use, as users meet
    them: "corrupt.bvh" (cut off in its hierarchy), "nan.npy" (joint positions with a NaN) and "truncated.npz"
    (an AMASS-style parameter archive cut in half)."""
    from bvh_samples import bvh_text

    def write(folder, num_joints: int = 22) -> dict:
        os.makedirs(folder, exist_ok=True)
        paths = {name: os.path.join(folder, name) for name in ("corrupt.bvh", "nan.npy", "truncated.npz")}
        text = bvh_text(frames=30)
        with open(paths["corrupt.bvh"], "w") as f:
            f.write(text[: text.index("MOTION") // 2])
        motion = np.random.default_rng(0).normal(scale=0.3, size=(40, num_joints, 3)).astype(np.float32)
        motion[7, 3, 1] = np.nan
        np.save(paths["nan.npy"], motion)
        np.savez(paths["truncated.npz"], poses=np.zeros((60, 156)), trans=np.zeros((60, 3)), mocap_framerate=60.0)
        with open(paths["truncated.npz"], "rb") as f:
            archive = f.read()
        with open(paths["truncated.npz"], "wb") as f:
            f.write(archive[: len(archive) // 2])
        return paths

    return write


def _offline_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false", **extra)
    return env


@pytest.fixture(scope="session")
def offline_env():
    """Environment for the subprocesses tests start: the installed package, offline Hub, no PYTHONPATH."""
    return _offline_env()


@pytest.fixture(scope="session")
def run_python(offline_env):
    """`run_python(*args, cwd=None, timeout=600)`: `python *args` in a subprocess; fails the test on a non-zero exit."""

    def run(*args, cwd=None, timeout=600):
        proc = subprocess.run(
            [sys.executable, *map(str, args)], env=offline_env, cwd=cwd, capture_output=True, text=True, timeout=timeout
        )
        assert proc.returncode == 0, (
            f"python {' '.join(map(str, args))} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
        )
        return proc

    return run


def _run_clean_load(folder, motion_path, out_path, texts, workdir):
    """Run tests/clean_load.py isolated from this repository (and from PYTHONPATH and user site)."""
    env = _offline_env(HF_MODULES_CACHE=str(workdir / "modules"), PYTHONNOUSERSITE="1")
    script = os.path.join(os.path.dirname(__file__), "clean_load.py")
    proc = subprocess.run(
        [sys.executable, "-I", script, str(folder), str(motion_path), str(out_path), json.dumps(texts)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return np.load(out_path)


@pytest.fixture(scope="session")
def clean_load():
    return _run_clean_load


@pytest.fixture
def results_file_unchanged():
    """Benchmark smoke runs pass --no-write, so the real benchmarks/RESULTS.md must come out untouched."""
    from benchmarks import results  # only where a test runs a benchmark (run from the repository root)

    before = results.RESULTS_PATH.read_text() if results.RESULTS_PATH.exists() else None
    yield
    after = results.RESULTS_PATH.read_text() if results.RESULTS_PATH.exists() else None
    assert after == before


@pytest.fixture(autouse=True)
def keep_the_sigint_handler():
    """Code run in process (launchers, trainers) may leave SIGINT ignored; every later test, and every process
    a test starts (which inherits an ignored signal), must still stop on Ctrl-C."""
    handler = signal.getsignal(signal.SIGINT)
    yield
    signal.signal(signal.SIGINT, handler)

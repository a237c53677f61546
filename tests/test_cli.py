"""The `motionpatches` command. Most tests call its `main` in process (an interpreter start costs seconds);
one runs the installed console script."""

import os
import shutil
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from motionpatches import MotionPatchProcessor, MotionTextModel
from motionpatches.cli import main


@pytest.fixture
def cli(capsys):
    def run(*args):
        code = main([str(arg) for arg in args])
        captured = capsys.readouterr()
        return SimpleNamespace(returncode=code, stdout=captured.out, stderr=captured.err)

    return run


@pytest.fixture(scope="module")
def model_and_motions(tmp_path_factory, sample_motion, tiny_model):
    root = tmp_path_factory.mktemp("cli")
    model, processor = tiny_model(["a person waves with the left hand", "someone jumps"])
    model.save_pretrained(root / "model")
    processor.save_pretrained(root / "model")
    (root / "motions" / "nested").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(5):
        folder = root / "motions" / ("nested" if i % 2 else "")
        np.save(
            folder / f"m{i}.npy", sample_motion[i * 10 :] + rng.normal(scale=0.05, size=(1, 22, 3)).astype(np.float32)
        )
    return root


def test_embed_writes_the_models_embeddings(model_and_motions, cli):
    root = model_and_motions
    out = root / "embeddings.npz"
    proc = cli("embed", str(root / "motions"), "--model", str(root / "model"), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    saved = np.load(out)
    files = list(saved["files"])
    assert len(files) == 5 and files == sorted(files, key=lambda f: (os.path.dirname(f), f))
    model = MotionTextModel.from_pretrained(root / "model").eval()
    processor = MotionPatchProcessor.from_pretrained(root / "model")
    with torch.no_grad():
        expected = model.get_motion_features(**processor(motions=files, return_tensors="pt")).pooler_output
    np.testing.assert_allclose(saved["embeddings"], torch.nn.functional.normalize(expected, dim=-1).numpy(), atol=1e-5)


def test_search_ranks_by_cosine(model_and_motions, cli):
    root = model_and_motions
    proc = cli(
        "search",
        str(root / "motions"),
        "--model",
        str(root / "model"),
        "--query",
        "a person waves with the left hand",
        "--top_k",
        "3",
    )
    assert proc.returncode == 0, proc.stderr
    lines = [line.split() for line in proc.stdout.splitlines()[1:]]
    assert [line[0] for line in lines] == ["1.", "2.", "3."]
    scores = [float(line[1]) for line in lines]
    assert scores == sorted(scores, reverse=True)


def test_missing_path_is_a_clear_error(model_and_motions, cli):
    proc = cli("search", "/nowhere/motions", "--model", str(model_and_motions / "model"), "--query", "x")
    assert proc.returncode == 2 and "no such motion file or folder: /nowhere/motions" in proc.stderr


@pytest.mark.slow
def test_console_script_searches(model_and_motions, offline_env):
    """The `motionpatches` command that `pip install` puts next to the interpreter."""
    command = shutil.which("motionpatches", path=os.path.dirname(sys.executable)) or shutil.which("motionpatches")
    assert command, "pip install did not create the motionpatches console script"
    root = model_and_motions
    args = ["search", str(root / "motions"), "--model", str(root / "model"), "--query", "someone jumps", "--top_k", "2"]
    proc = subprocess.run([command, *args], env=offline_env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.splitlines()[0] == '"someone jumps"' and len(proc.stdout.splitlines()) == 3

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from motionpatches import MotionPatchProcessor, MotionTextModel
from motionpatches.tiny import build_word_tokenizer, tiny_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cli(*args):
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=REPO)
    return subprocess.run([sys.executable, "-m", "motionpatches.cli", *args], env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def model_and_motions(tmp_path_factory, sample_motion):
    root = tmp_path_factory.mktemp("cli")
    tokenizer = build_word_tokenizer(["a person waves with the left hand", "someone jumps"])
    torch.manual_seed(0)
    MotionTextModel(tiny_config(len(tokenizer))).save_pretrained(root / "model")
    MotionPatchProcessor(tokenizer=tokenizer).save_pretrained(root / "model")
    (root / "motions" / "nested").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(5):
        folder = root / "motions" / ("nested" if i % 2 else "")
        np.save(folder / f"m{i}.npy", sample_motion[i * 10 :] + rng.normal(scale=0.05, size=(1, 22, 3)).astype(np.float32))
    return root


def test_embed_writes_the_models_embeddings(model_and_motions):
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


def test_search_ranks_by_cosine(model_and_motions):
    root = model_and_motions
    proc = cli("search", str(root / "motions"), "--model", str(root / "model"), "--query", "a person waves with the left hand", "--top_k", "3")
    assert proc.returncode == 0, proc.stderr
    lines = [line.split() for line in proc.stdout.splitlines()[1:]]
    assert [line[0] for line in lines] == ["1.", "2.", "3."]
    scores = [float(line[1]) for line in lines]
    assert scores == sorted(scores, reverse=True)


def test_missing_path_is_a_clear_error(model_and_motions):
    proc = cli("search", "/nowhere/motions", "--model", str(model_and_motions / "model"), "--query", "x")
    assert proc.returncode == 2 and "no such motion file or folder: /nowhere/motions" in proc.stderr

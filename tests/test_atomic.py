"""Outputs are replaced whole or not at all."""

import os

import numpy as np
import pytest

from motionpatches import atomic


def test_atomic_path_replaces_on_success_and_keeps_the_old_file_on_error(tmp_path):
    target = tmp_path / "embeddings.npz"
    with atomic.atomic_path(target) as temporary:
        assert temporary.endswith(".npz") and os.path.dirname(temporary) == str(tmp_path)
        np.savez(temporary, x=np.arange(3))
    assert np.load(target)["x"].tolist() == [0, 1, 2]
    with pytest.raises(RuntimeError, match="killed"), atomic.atomic_path(target) as temporary:
        np.savez(temporary, x=np.arange(5))
        raise RuntimeError("killed half-way")
    assert np.load(target)["x"].tolist() == [0, 1, 2]
    assert sorted(os.listdir(tmp_path)) == ["embeddings.npz"]  # no temporary left behind


def test_staged_folder_publishes_every_file_with_the_weights_last(tmp_path, monkeypatch):
    target = tmp_path / "best_model"
    target.mkdir()
    (target / "config.json").write_text("old")
    moved = []
    replace = os.replace
    monkeypatch.setattr(atomic.os, "replace", lambda a, b: (moved.append(os.path.basename(b)), replace(a, b)))
    with atomic.staged_folder(target) as staging:
        for name in ("model.safetensors", "config.json", "processor_config.json"):
            (tmp_path / staging / name).write_text("new")
        assert (target / "config.json").read_text() == "old"  # nothing visible before the block ends
    assert moved == ["config.json", "processor_config.json", "model.safetensors"]
    assert sorted(os.listdir(target)) == ["config.json", "model.safetensors", "processor_config.json"]
    assert (target / "config.json").read_text() == "new"
    assert sorted(os.listdir(tmp_path)) == ["best_model"]


def test_staged_folder_leaves_the_target_alone_on_error(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "config.json").write_text("old")
    with pytest.raises(KeyboardInterrupt), atomic.staged_folder(target) as staging:
        (tmp_path / staging / "config.json").write_text("")
        raise KeyboardInterrupt
    assert (target / "config.json").read_text() == "old" and sorted(os.listdir(tmp_path)) == ["model"]

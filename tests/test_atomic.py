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


def test_files_get_the_mode_open_gives_them(tmp_path):
    """A model card or metrics file must stay readable by whoever could read the file it replaces."""
    umask = os.umask(0o022)
    try:
        atomic.write_text_atomically(tmp_path / "metrics.json", "{}")
    finally:
        os.umask(umask)
    assert (tmp_path / "metrics.json").stat().st_mode & 0o777 == 0o644


def test_staging_can_live_inside_the_target(tmp_path):
    """For an output folder whose parent the user may not write to: staged inside, published into it."""
    target = tmp_path / "run"
    target.mkdir()
    with atomic.staged_folder(target, staging_parent=target) as staging:
        assert os.path.dirname(staging) == str(target)
        (tmp_path / staging / "config.json").write_text("new")
    assert sorted(os.listdir(target)) == ["config.json"] and sorted(os.listdir(tmp_path)) == ["run"]

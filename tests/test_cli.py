"""The `motionpatches` command. Most tests call its `main` in process (an interpreter start costs seconds);
one runs the installed console script."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from bvh_samples import bvh_text

from motionpatches import MotionPatchProcessor, MotionTextModel, load_bvh, skeleton_from_bvh


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


def search_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines()[1:] if line.strip()]


def test_top_k_as_large_as_the_folder_lists_every_motion(model_and_motions, cli):
    root = model_and_motions
    proc = cli("search", root / "motions", "--model", root / "model", "--query", "someone jumps", "--top_k", "5")
    assert proc.returncode == 0, proc.stderr
    listed = [line.split()[-1] for line in search_lines(proc.stdout)]
    assert sorted(listed) == sorted(str(p) for p in (root / "motions").rglob("*.npy"))


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("--top_k", "-1", "positive integer"),
        ("--top_k", "0", "positive integer"),
        ("--batch_size", "0", "positive integer"),
        ("--batch_size", "two", "positive integer"),
        ("--fps", "nan", "finite positive frame rate"),
        ("--fps", "inf", "finite positive frame rate"),
        ("--fps", "0", "finite positive frame rate"),
        ("--fps", "-20", "finite positive frame rate"),
    ],
)
def test_numbers_out_of_range_are_refused_with_their_option(model_and_motions, cli, capsys, option, value, message):
    root = model_and_motions
    with pytest.raises(SystemExit) as exit_:
        cli("search", root / "motions", "--model", root / "model", "--query", "x", f"{option}={value}")
    assert exit_.value.code == 2
    stderr = capsys.readouterr().err
    assert option in stderr and message in stderr and value in stderr, stderr


# ----------------------------------------------------------------------------- --out
def test_out_without_a_suffix_is_written_and_reported_with_npz(model_and_motions, cli, tmp_path):
    root = model_and_motions
    proc = cli("embed", root / "motions", "--model", root / "model", "--out", tmp_path / "embeddings")
    assert proc.returncode == 0, proc.stderr
    assert sorted(os.listdir(tmp_path)) == ["embeddings.npz", "embeddings.skipped.json"]
    assert f"written to {tmp_path / 'embeddings.npz'}\n" in proc.stdout
    assert np.load(tmp_path / "embeddings.npz")["embeddings"].shape[0] == 5


@pytest.mark.parametrize(
    "out, message",
    [
        ("missing/e.npz", "the folder {tmp}/missing does not exist; create it first"),
        (".", "is a folder; give a file name"),
        ("e.npy", "must end in .npz"),
    ],
)
def test_a_bad_out_is_refused_before_any_work(out, message, model_and_motions, cli, tmp_path, monkeypatch):
    """The model given does not exist: an --out error means --out was checked first."""
    monkeypatch.chdir(tmp_path)
    root = model_and_motions
    proc = cli("embed", root / "motions", "--model", tmp_path / "no_model", "--out", out)
    assert proc.returncode == 2 and message.format(tmp=tmp_path) in proc.stderr, proc.stderr
    assert "--out" in proc.stderr and os.listdir(tmp_path) == []


def test_a_crash_while_writing_leaves_the_previous_embeddings(model_and_motions, cli, tmp_path, monkeypatch):
    root = model_and_motions
    out = tmp_path / "e.npz"
    assert cli("embed", root / "motions", "--model", root / "model", "--out", out).returncode == 0
    before, report = out.read_bytes(), (tmp_path / "e.skipped.json").read_bytes()

    def dies_half_way(file, **arrays):
        file.write(b"PK\x03\x04 half an archive")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        cli("embed", root / "motions", "--model", root / "model", "--out", out)
    assert out.read_bytes() == before and (tmp_path / "e.skipped.json").read_bytes() == report
    assert sorted(os.listdir(tmp_path)) == ["e.npz", "e.skipped.json"]


# ----------------------------------------------------------------------------- the model
def test_a_missing_model_folder_is_named_with_the_fix(model_and_motions, cli, tmp_path):
    root = model_and_motions
    proc = cli("search", root / "motions", "--model", tmp_path / "runs" / "model", "--query", "x")
    assert proc.returncode == 2
    assert f"model folder not found: {tmp_path / 'runs' / 'model'}" in proc.stderr
    assert "save_pretrained" in proc.stderr and "Repo id" not in proc.stderr


def test_a_hub_id_that_cannot_be_loaded_offline_says_so(model_and_motions, cli, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # "runs/model" is no folder here, so it reads as a Hub id
    proc = cli("search", model_and_motions / "motions", "--model", "runs/model", "--query", "x")
    assert proc.returncode == 2
    assert "runs/model: no such model folder here, and no Hub model of that id could be loaded" in proc.stderr


def test_truncated_weights_are_named_with_the_fix(model_and_motions, cli, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(model_and_motions / "model", folder)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    proc = cli("search", model_and_motions / "motions", "--model", folder, "--query", "x")
    assert proc.returncode == 2
    assert f"cannot read the weights in {weights}" in proc.stderr and "truncated or corrupt" in proc.stderr


# ----------------------------------------------------------------------------- skeletons
def bvh_file(path, seed, rename=None):
    path.write_text(bvh_text(frames=40 + 10 * seed, fps=20.0, seed=seed, rename=rename))  # the model's rate
    return str(path)


def normalised_motion_features(model, motion_values) -> np.ndarray:
    with torch.no_grad():
        features = model.get_motion_features(motion_values=motion_values).pooler_output
    return torch.nn.functional.normalize(features, dim=-1).numpy()


def rig_processor(processor, paths):
    """The model's preprocessing for the paths' shared rig, with statistics of those files alone."""
    extractor = processor.feature_extractor.for_skeleton(skeleton_from_bvh(load_bvh(paths[0])))
    extractor.fit_statistics([load_bvh(path).positions for path in paths])
    return extractor


def test_each_skeleton_gets_its_own_preprocessing_and_the_order_is_kept(model_and_motions, cli, tmp_path):
    """The README's `embed motions/ extra.bvh`: .npy files in the model's skeleton, BVH files in their rigs."""
    root = model_and_motions
    motions = tmp_path / "mixed"
    motions.mkdir()
    npy = [str(motions / name) for name in ("a.npy", "c.npy")]
    for index, path in enumerate(npy):
        shutil.copy(sorted((root / "motions").rglob("*.npy"))[index], path)
    mixamo = [bvh_file(motions / "b.bvh", 0), bvh_file(motions / "d.bvh", 1)]
    renamed = [bvh_file(tmp_path / "extra.bvh", 2, rename={"Hips": "Pelvis", "Neck": "neck_01"})]
    proc = cli("embed", motions, renamed[0], "--model", root / "model", "--out", tmp_path / "e.npz")
    assert proc.returncode == 0, proc.stderr

    saved = np.load(tmp_path / "e.npz")
    assert list(saved["files"]) == [npy[0], mixamo[0], npy[1], mixamo[1], renamed[0]]
    model = MotionTextModel.from_pretrained(root / "model").eval()
    processor = MotionPatchProcessor.from_pretrained(root / "model")
    expected = {
        "npy": normalised_motion_features(model, processor(motions=npy, return_tensors="pt")["motion_values"]),
        "mixamo": normalised_motion_features(model, rig_processor(processor, mixamo)(mixamo, return_tensors="pt")["motion_values"]),
        "renamed": normalised_motion_features(model, rig_processor(processor, renamed)(renamed, return_tensors="pt")["motion_values"]),
    }  # fmt: skip
    rows = {"npy": [0, 2], "mixamo": [1, 3], "renamed": [4]}
    for group, vectors in expected.items():
        np.testing.assert_allclose(saved["embeddings"][rows[group]], vectors, atol=1e-5, err_msg=group)


def test_a_rig_with_unknown_joint_names_takes_a_skeleton_file(model_and_motions, cli, tmp_path):
    root = model_and_motions
    odd = {
        "Hips": "root_jnt",
        "LeftUpLeg": "jnt_a1",
        "LeftLeg": "jnt_a2",
        "LeftFoot": "jnt_a3",
        "LeftToeBase": "jnt_a4",
    }
    path = bvh_file(tmp_path / "odd.bvh", 0, rename=odd)
    proc = cli("embed", path, "--model", root / "model", "--out", tmp_path / "e.npz")
    assert proc.returncode == 2 and path in proc.stderr and "pass --skeleton with a JSON skeleton" in proc.stderr

    bvh = load_bvh(path)
    chains = skeleton_from_bvh(bvh, mapping={"left_leg": ["root_jnt", "jnt_a1", "jnt_a2", "jnt_a3", "jnt_a4"]}).chains
    skeleton = {"name": "odd", "joint_names": list(bvh.joint_names), "chains": {k: list(v) for k, v in chains.items()}}
    (tmp_path / "odd.json").write_text(json.dumps(skeleton))
    proc = cli(
        "embed", path, "--model", root / "model", "--skeleton", tmp_path / "odd.json", "--out", tmp_path / "e.npz"
    )
    assert proc.returncode == 0, proc.stderr
    assert np.load(tmp_path / "e.npz")["embeddings"].shape[0] == 1

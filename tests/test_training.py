"""End-to-end runs of the trainer (motionpatches.training.train) and training/eval_retrieval.py on tiny models
and tiny data.

Runs whose outputs are all a test needs call `main` in this process (no interpreter start, no torch import);
subprocesses remain where the process itself matters: a killed run, two processes, the command lines.
"""

import contextlib
import io
import json
import os
import shutil
import stat
import subprocess
import sys

import numpy as np
import pytest
import safetensors.torch
import torch
from accelerate import Accelerator
from distributed_contrastive_check import make_model_and_batch, step
from launch import LAUNCH_OPTIONS, two_process_command

from motionpatches.training.train import main as train_main

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EVALUATE = os.path.join(REPO, "training", "eval_retrieval.py")
TINY = [
    "--text_model", "tiny",
    "--text_config_overrides", json.dumps({"hidden_size": 32, "num_attention_heads": 2, "intermediate_size": 64}),
    "--motion_backbone", "vit_tiny_patch16_224",
    "--motion_backbone_kwargs", json.dumps({"embed_dim": 32, "depth": 2, "num_heads": 2}),
    "--projection_dim", "16",
    "--num_frames", "64",
    "--per_device_train_batch_size", "8",
    "--per_device_eval_batch_size", "16",
]  # fmt: skip
DEMO_TINY = ["--dataset_name", "demo", "--demo_sizes", "64,16,16", *TINY]


# the accelerate launch settings a config file would otherwise give, on CPU
def train(*args) -> str:
    """The trainer's `main(args)` in this process; returns what it printed."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        train_main([str(arg) for arg in args])
    return printed.getvalue()


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "short"
    stdout = train(*DEMO_TINY, "--max_steps", "4", "--output_dir", out, "--query", "a person waves")
    return out, stdout


def test_short_run_writes_a_loadable_model(short_run):
    out, stdout = short_run
    files = set(os.listdir(out))
    assert {
        "model.safetensors",
        "config.json",
        "processor_config.json",
        "tokenizer.json",
        "README.md",
        "metrics.json",
    } <= files
    assert {
        "modeling_motionpatches.py",
        "configuration_motionpatches.py",
        "processing_motionpatches.py",
        "feature_extraction_motionpatches.py",
        "skeletons.py",
    } <= files
    assert not [f for f in files if f.endswith((".bin", ".pt", ".pth", ".pkl"))]
    assert "R@1" in stdout and 'top-3 test motions for "a person waves"' in stdout
    card = (out / "README.md").read_text()
    assert "demo" in card and "R@1" in card and "learning_rate_motion" in card
    processor_config = json.loads((out / "processor_config.json").read_text())["feature_extractor"]
    assert processor_config["mean"] is not None and len(processor_config["std"]) == 22  # statistics of the train split
    # written atomically, yet readable as plainly written files are (a temporary file starts private)
    umask = os.umask(0o022)
    os.umask(umask)
    for name in ("README.md", "metrics.json"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o666 & ~umask, name
    assert not [name for name in files if name.startswith(".")]  # no staging left behind


@pytest.mark.slow
def test_short_run_loads_in_a_clean_interpreter(short_run, sample_motion_path, tmp_path, clean_load):
    out, _ = short_run
    # the synthetic motion files the demo uses are not on disk: any (T, 22, 3) motion will do here
    clean = clean_load(out, sample_motion_path, tmp_path / "clean.npz", ["a person waves"], tmp_path)
    assert clean["classes"][1].startswith("transformers_modules.")
    from transformers import AutoModel, AutoProcessor

    model = AutoModel.from_pretrained(out, trust_remote_code=True).eval()
    processor = AutoProcessor.from_pretrained(out, trust_remote_code=True)
    motion = np.load(sample_motion_path)
    with torch.no_grad():
        ours = model(**processor(text=["a person waves"], motions=[motion, motion[::-1].copy()], return_tensors="pt"))
    np.testing.assert_allclose(clean["motion"], ours.motion_embeds.numpy(), atol=1e-6)


def reference_all_protocol(text, motion, captions):
    """Independent slow computation of the paper's protocol from saved embeddings."""
    sims = text @ motion.T
    n = len(captions)
    out = {}
    for direction, matrix in (("t2m", sims), ("m2t", sims.T)):
        ranks = []
        for i in range(n):
            order = list(np.argsort(-matrix[i], kind="stable"))
            correct = [j for j in range(n) if captions[j] == captions[i]]
            ranks.append(1 + min(sum(matrix[i, k] > matrix[i, j] for k in order) for j in correct))
        ranks = np.array(ranks)
        for k in (1, 2, 3, 5, 10):
            out[f"{direction}/R@{k}"] = 100.0 * np.mean(ranks <= k)
        out[f"{direction}/MedR"] = float(np.median(ranks))
    return out


@pytest.mark.slow
def test_evaluate_all_protocol_matches_saved_embeddings(short_run, tmp_path, run_python):
    out, _ = short_run
    metrics_file, embeddings_file = tmp_path / "metrics.json", tmp_path / "embeddings.npz"
    demo = ["--model_name_or_path", out, "--dataset_name", "demo", "--demo_sizes", "64,16,16", "--protocol", "all"]
    stdout = run_python(EVALUATE, *demo, "--output_file", metrics_file, "--save_embeddings", embeddings_file).stdout
    assert "R@1" in stdout
    metrics = json.loads(metrics_file.read_text())
    saved = np.load(embeddings_file)
    assert set(saved.files) == {"text_embeds", "motion_embeds", "captions", "ids"}
    assert saved["text_embeds"].shape == (16, 16) and len(saved["ids"]) == 16
    expected = reference_all_protocol(saved["text_embeds"], saved["motion_embeds"], list(saved["captions"]))
    assert metrics.keys() == expected.keys()
    for key, value in expected.items():
        assert metrics[key] == pytest.approx(value), key


@pytest.mark.slow
def test_evaluate_guo_protocol_is_repeatable(short_run, tmp_path, run_python):
    out, _ = short_run
    results = []
    for attempt in range(2):
        metrics_file = tmp_path / f"guo{attempt}.json"
        demo = ["--model_name_or_path", out, "--dataset_name", "demo", "--demo_sizes", "64,16,64", "--protocol", "guo"]
        run_python(EVALUATE, *demo, "--output_file", metrics_file)
        results.append(json.loads(metrics_file.read_text()))
    assert results[0] == results[1]
    assert 0 < results[0]["t2m/R@10"] <= 100


@pytest.mark.slow
def test_two_processes_match_one_process_with_double_batch(tmp_path, offline_env):
    result = tmp_path / "rank0.safetensors"
    proc = subprocess.run(
        two_process_command(os.path.join(os.path.dirname(__file__), "distributed_contrastive_check.py"), result),
        env=offline_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "world size 2" in proc.stdout
    distributed = safetensors.torch.load_file(str(result))
    model, batch, pair_keys = make_model_and_batch()
    model.train()
    accelerator = Accelerator(cpu=True)
    for prefix, keys in (("", None), ("masked/", pair_keys)):
        loss, grads = step(accelerator, model, batch, keys)
        torch.testing.assert_close(distributed[f"{prefix}loss"], loss.reshape(1), rtol=1e-6, atol=1e-6)
        for name, grad in grads.items():
            torch.testing.assert_close(distributed[f"{prefix}{name}"], grad, rtol=1e-4, atol=1e-5, msg=name)
    # the masked loss really masked something: with fewer negatives it is lower
    assert distributed["masked/loss"] < distributed["loss"]


@pytest.mark.slow
def test_module_prints_its_options(tmp_path, offline_env):
    proc = subprocess.run(
        [sys.executable, "-m", "motionpatches.training.train", "--help"],
        cwd=tmp_path,
        env=offline_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "--resume_from_checkpoint" in proc.stdout and "accelerate launch training/train.py" in proc.stdout


@pytest.mark.slow
def test_accelerate_launch_runs_the_module(tmp_path, offline_env):
    """`accelerate launch -m`, from outside the checkout: the trainer imports the installed package."""
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "1", *LAUNCH_OPTIONS,
         "-m", "motionpatches.training.train", *DEMO_TINY, "--max_steps", "2", "--output_dir", str(out), "--query", ""],
        cwd=tmp_path, env=offline_env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert json.loads((out / "metrics.json").read_text())["steps"] == 2
    assert {"model.safetensors", "config.json", "processor_config.json", "README.md"} <= set(os.listdir(out))


def write_motion_folder(root, num_joints, names_per_split, fps_frames=(60, 90)):
    rng = np.random.default_rng(0)
    (root / "new_joints").mkdir(parents=True)
    (root / "texts").mkdir()
    actions = ["walks forward", "jumps", "waves the left hand", "sits down"]
    for split, names in names_per_split.items():
        (root / f"{split}.txt").write_text("\n".join(names) + "\n")
        for i, name in enumerate(names):
            frames = int(rng.integers(*fps_frames))
            base = rng.normal(size=(1, num_joints, 3))
            motion = base + 0.1 * np.cumsum(rng.normal(size=(frames, num_joints, 3)), axis=0)
            np.save(root / "new_joints" / f"{name}.npy", motion.astype(np.float32))
            action = actions[i % len(actions)]
            (root / "texts" / f"{name}.txt").write_text(
                f"a person {action}#a/DET#0.0#0.0\nsomeone {action}#x#0.0#0.0\n"
            )


SPLITS = {
    "train": [f"{i:06d}" for i in range(24)],
    "val": [f"{i:06d}" for i in range(24, 32)],
    "test": [f"{i:06d}" for i in range(32, 40)],
}


@pytest.fixture(scope="module")
def humanml3d_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("h3d")
    write_motion_folder(root / "HumanML3D", 22, SPLITS)
    data_args = ["--dataset_name", "humanml3d", "--dataset_dir", str(root / "HumanML3D")]
    train(*data_args, *TINY, "--max_steps", "3", "--output_dir", root / "model", "--query", "a person jumps")
    return root / "model", data_args


def evaluate_tmr_all(run_python, model_dir, data_args, tmp_path):
    metrics_file = tmp_path / "metrics.json"
    run_python(
        EVALUATE, "--model_name_or_path", model_dir, *data_args, "--protocol", "tmr-all", "--output_file", metrics_file
    )
    metrics = json.loads(metrics_file.read_text())
    assert 0 <= metrics["t2m/R@1"] <= 100 and metrics["t2m/MedR"] >= 1
    return metrics


def saved_skeleton(model_dir):
    return json.loads((model_dir / "processor_config.json").read_text())["feature_extractor"]["skeleton"]


@pytest.mark.slow
def test_humanml3d_folder_trains_and_evaluates(humanml3d_model, tmp_path, run_python):
    model_dir, data_args = humanml3d_model
    evaluate_tmr_all(run_python, model_dir, data_args, tmp_path)
    assert saved_skeleton(model_dir)["name"] == "humanml3d"


@pytest.mark.slow
def test_custom_skeleton_folder_trains_and_evaluates(tmp_path, run_python, stick_skeleton_file):
    write_motion_folder(tmp_path / "mocap", 7, SPLITS)
    data_args = ["--dataset_name", str(tmp_path / "mocap"), "--skeleton", str(stick_skeleton_file)]
    train(*data_args, *TINY, "--max_steps", "3", "--output_dir", tmp_path / "model", "--query", "a person jumps")
    evaluate_tmr_all(run_python, tmp_path / "model", data_args, tmp_path)
    assert saved_skeleton(tmp_path / "model")["name"] == "stick"


@pytest.mark.slow
def test_humanml3d_model_evaluates_and_fine_tunes_on_kit_skeleton(humanml3d_model, tmp_path, run_python):
    model_dir, _ = humanml3d_model
    write_motion_folder(tmp_path / "KIT-ML", 21, SPLITS)
    kit_args = ["--dataset_name", "kit", "--dataset_dir", str(tmp_path / "KIT-ML")]
    evaluate_tmr_all(run_python, model_dir, kit_args, tmp_path)
    tuned = tmp_path / "tuned"
    fine_tune = ["--model_name_or_path", model_dir, "--max_steps", "2", "--per_device_train_batch_size", "8"]
    train(*kit_args, *fine_tune, "--output_dir", tuned, "--query", "")
    kit = saved_skeleton(tuned)
    assert kit["name"] == "kit" and len(kit["joint_names"]) == 21
    features = json.loads((tuned / "processor_config.json").read_text())["feature_extractor"]
    assert (
        features["part_names"] == ["torso", "left_arm", "right_arm", "left_leg", "right_leg"]
        and len(features["mean"]) == 21
    )
    evaluate_tmr_all(run_python, tuned, kit_args, tmp_path)


def write_interhuman_folder(root, splits):
    rng = np.random.default_rng(3)
    for person in ("person1", "person2"):
        (root / "motions_processed" / person).mkdir(parents=True)
    (root / "annots").mkdir()
    (root / "split").mkdir()
    actions = ["shake hands", "hug each other", "one pushes the other", "they dance together"]
    for split, names in splits.items():
        (root / "split" / f"{split}.txt").write_text("\n".join(names) + "\n")
        for i, name in enumerate(names):
            frames = int(rng.integers(60, 120))
            for person in ("person1", "person2"):
                motion = rng.normal(size=(1, 22, 3)) + 0.1 * np.cumsum(rng.normal(size=(frames, 22, 3)), axis=0)
                # InterGen's feature rows: positions first, then other features
                features = np.concatenate([motion.reshape(frames, 66), rng.normal(size=(frames, 196))], axis=1)
                np.save(root / "motions_processed" / person / f"{name}.npy", features.astype(np.float32))
            (root / "annots" / f"{name}.txt").write_text(f"two people {actions[i % 4]}\nthe pair {actions[i % 4]}\n")


@pytest.mark.slow
def test_two_person_interaction_trains_and_evaluates(tmp_path, run_python):
    write_interhuman_folder(tmp_path / "InterHuman", SPLITS)
    data_args = ["--dataset_name", "interhuman", "--dataset_dir", str(tmp_path / "InterHuman")]
    out = tmp_path / "model"
    train(*data_args, *TINY, "--max_steps", "3", "--output_dir", out, "--query", "two people hug each other")
    config = json.loads((out / "config.json").read_text())
    assert config["num_persons"] == 2
    assert json.loads((out / "processor_config.json").read_text())["feature_extractor"]["num_persons"] == 2
    metrics = evaluate_tmr_all(run_python, out, data_args, tmp_path)
    assert metrics["m2t/MedR"] <= 8


@pytest.mark.slow
@pytest.mark.parametrize(
    "encoder, sizes",
    [
        ("joint_transformer", {"hidden_size": 32, "depth": 2, "num_heads": 2}),
        ("dstformer", {"dim": 32, "depth": 1, "num_heads": 2}),
    ],
)
def test_raw_joint_encoders_train_and_round_trip(encoder, sizes, tmp_path, sample_motion_path, clean_load):
    out = tmp_path / encoder
    tiny = [a for a in DEMO_TINY]
    tiny[tiny.index("--motion_backbone_kwargs") + 1] = json.dumps(sizes)
    train(*tiny, "--motion_encoder", encoder, "--max_steps", "2", "--output_dir", out, "--query", "")
    config = json.loads((out / "config.json").read_text())["motion_config"]
    assert config["encoder"] == encoder and config["num_joints"] == 22
    assert "motion_encoders.py" in os.listdir(out)
    clean = clean_load(out, sample_motion_path, tmp_path / "clean.npz", ["a person waves"], tmp_path)
    assert clean["motion_values"].shape == (2, 64, 22, 3)
    from transformers import AutoModel, AutoProcessor

    model = AutoModel.from_pretrained(out, trust_remote_code=True).eval()
    processor = AutoProcessor.from_pretrained(out, trust_remote_code=True)
    motion = np.load(sample_motion_path)
    inputs = processor(text=["a person waves"], motions=[motion, motion[::-1].copy()], return_tensors="pt")
    assert inputs["motion_lengths"].tolist() == [64, 64]
    with torch.no_grad():
        ours = model(**inputs).motion_embeds
    np.testing.assert_allclose(clean["motion"], ours.numpy(), atol=1e-6)


def test_a_run_lists_the_motion_files_it_skipped_in_output_dir(short_run, tmp_path, capsys):
    write_motion_folder(tmp_path / "mocap", 22, SPLITS)
    bad = tmp_path / "mocap" / "new_joints" / f"{SPLITS['train'][3]}.npy"
    motion = np.load(bad)
    broken = motion.copy()
    broken[5, 2, 1] = np.nan
    np.save(bad, broken)
    out, report = tmp_path / "run", tmp_path / "run" / "skipped.json"
    stdout = train("--dataset_name", tmp_path / "mocap", *TINY, "--max_steps", "1", "--output_dir", out)
    listed = json.loads(report.read_text())
    assert (listed["read"], listed["skipped"], listed["reasons"]) == (39, 1, {"NaN or inf": 1})
    assert [(e["path"], e["where"]) for e in listed["files"]] == [(str(bad), str(tmp_path / "mocap" / "train.txt"))]
    assert stdout.index(f"wrote {report}") < stdout.index("test split")  # when training starts, not at the end
    assert "read 39 motion files, skipped 1 (1 NaN or inf)" in capsys.readouterr().err
    assert not [name for name in os.listdir(out) if name.startswith(".")]  # written whole, nothing staged left

    np.save(bad, motion)  # mended: the next run into the same folder skips nothing and leaves no stale report
    train("--dataset_name", tmp_path / "mocap", *TINY, "--max_steps", "1", "--output_dir", out)
    assert not report.exists() and "read 40 motion files, skipped 0" in capsys.readouterr().err
    assert "skipped.json" not in os.listdir(short_run[0])  # the demo reads no file: nothing to report


@pytest.mark.parametrize("dataset", ["demo", "motion folder"])
def test_a_dataset_without_validation_split_is_refused_before_training(dataset, tmp_path):
    if dataset == "demo":
        data_args, where = ["--dataset_name", "demo", "--demo_sizes", "32,0,8"], "--demo_sizes"
    else:
        write_motion_folder(tmp_path / "mocap", 22, {"train": SPLITS["train"], "test": SPLITS["test"]})
        data_args, where = ["--dataset_name", str(tmp_path / "mocap")], "val.txt"
    out = tmp_path / "out"
    with pytest.raises(SystemExit, match=r"has (no|an empty) validation split") as refused:
        train(*data_args, *TINY, "--max_steps", "2", "--checkpointing_steps", "1", "--output_dir", out)
    message = str(refused.value)
    assert where in message and repr(data_args[1]) in message and "Nothing was trained" in message
    assert not (out / "checkpoints").exists() and not (out / "model.safetensors").exists()


def write_foreign_model(short_run_dir, folder, marker):
    """A saved model whose config names a type this package does not know and code of its own (auto_map) that
    leaves `marker` behind when it runs."""
    shutil.copytree(short_run_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(model_type="foreign_model", auto_map={"AutoConfig": "foreign.Config", "AutoModel": "foreign.Model"})
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "foreign.py").write_text(f"open({str(marker)!r}, 'w').close()\n")


def test_model_name_or_path_runs_no_saved_code_without_trust_remote_code(short_run, tmp_path, monkeypatch):
    foreign, marker = tmp_path / "foreign", tmp_path / "code_ran"
    write_foreign_model(short_run[0], foreign, marker)
    common = [*DEMO_TINY, "--max_steps", "1", "--output_dir", tmp_path / "out", "--model_name_or_path", foreign]
    with pytest.raises(SystemExit, match="--trust_remote_code"):
        train(*common)
    assert not marker.exists()

    # the flag reaches the loader, off unless given
    asked = []

    def loader(name_or_path, *, trust_remote_code):
        asked.append(trust_remote_code)
        raise KeyboardInterrupt

    monkeypatch.setattr("motionpatches.training.train.load_or_exit", loader)
    for flags in ([], ["--trust_remote_code"]):
        with pytest.raises(KeyboardInterrupt):
            train(*common, *flags)
    assert asked == [False, True]


def test_processes_that_would_each_train_alone_are_refused(tmp_path, monkeypatch):
    # what torchrun sets for two processes that accelerate, finding no GPU and not told to use the CPU, runs alone
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(SystemExit, match="ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2"):
        train(*DEMO_TINY, "--max_steps", "1", "--output_dir", tmp_path)
    assert not os.listdir(tmp_path)

"""Converting the authors' checkpoints: a small `best_model.pt` with their exact key names is built here,
converted, and checked against a forward pass and a preprocessing written independently from their code."""

import json
import os
import shutil
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import safetensors.torch
import timm
import torch
import torch.nn.functional as F
from test_hub import fake_hub
from transformers import AutoModel, AutoProcessor, DistilBertConfig, DistilBertModel

from motionpatches.training.convert_authors_checkpoint import convert_checkpoint
from motionpatches.training.convert_authors_checkpoint import main as convert_main

VIT_SIZE = {"embed_dim": 32, "depth": 2, "num_heads": 2}
PROJECTION_DIM = 16
TEXTS = ["a person walks forward", "someone jumps up and down"]
# the kinematic chains, in order, of the authors' datasets/dataset.py
HUMANML3D_CHAINS = [[0, 2, 5, 8, 11], [0, 1, 4, 7, 10], [0, 3, 6, 9, 12, 15], [9, 14, 17, 19, 21], [9, 13, 16, 18, 20]]
KIT_CHAINS = [[0, 11, 12, 13, 14, 15], [0, 16, 17, 18, 19, 20], [0, 1, 2, 3, 4], [3, 5, 6, 7], [3, 8, 9, 10]]


class NotATensor:
    """A pickled object that weights_only loading must refuse."""


def authors_vit() -> torch.nn.Module:
    """The authors' MotionEncoder.model at a small width."""
    return timm.create_model(
        "vit_tiny_patch16_224", pretrained=False, img_size=(224, 80), num_classes=0, global_pool="avg", **VIT_SIZE
    )


def randomise(module: torch.nn.Module) -> None:
    """Move every weight away from its initial value, so an unloaded one cannot pass for loaded."""
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn_like(p) * 0.1)


def projection_head_tensors(prefix: str, input_dim: int) -> dict[str, torch.Tensor]:
    return {
        f"{prefix}.projection.weight": torch.randn(PROJECTION_DIM, input_dim) * 0.2,
        f"{prefix}.projection.bias": torch.randn(PROJECTION_DIM) * 0.1,
        f"{prefix}.fc.weight": torch.randn(PROJECTION_DIM, PROJECTION_DIM) * 0.2,
        f"{prefix}.fc.bias": torch.randn(PROJECTION_DIM) * 0.1,
        f"{prefix}.layer_norm.weight": 1 + torch.randn(PROJECTION_DIM) * 0.1,
        f"{prefix}.layer_norm.bias": torch.randn(PROJECTION_DIM) * 0.1,
    }


def prefixed(prefix: str, state_dict: dict) -> dict:
    return {prefix + key: tensor.clone() for key, tensor in state_dict.items()}


def stripped(prefix: str, state_dict: dict) -> dict:
    return {key[len(prefix) :]: tensor for key, tensor in state_dict.items() if key.startswith(prefix)}


@pytest.fixture(scope="module")
def authors(tmp_path_factory, tokenizer):
    """`best_model.pt` as the authors' ClipModel.state_dict() would hold it, plus statistics files and
    the text tower's config and tokenizer in one folder."""
    folder = tmp_path_factory.mktemp("authors")
    torch.manual_seed(0)
    vit = authors_vit()
    bert = DistilBertModel(DistilBertConfig(vocab_size=len(tokenizer), dim=32, n_layers=2, n_heads=2, hidden_dim=64))
    randomise(vit)
    randomise(bert)
    text_source = folder / "text"
    bert.config.save_pretrained(text_source)
    tokenizer.save_pretrained(text_source)
    state = {
        **prefixed("motion_encoder.model.", vit.state_dict()),
        **prefixed("text_encoder.text_model.", bert.state_dict()),
        **projection_head_tensors("motion_projection", 32),
        **projection_head_tensors("text_projection", 32),
        "logit_scale": torch.tensor(2.5),
    }
    checkpoint = folder / "best_model.pt"
    torch.save(state, checkpoint)
    rng = np.random.default_rng(0)
    stats = {}
    for dataset, joints in (("humanml3d", 22), ("kit", 21)):
        mean, std = rng.normal(0, 0.5, (joints, 3)), rng.uniform(0.2, 1.5, (joints, 3))
        np.save(folder / f"{dataset}_Mean_raw.npy", mean)
        np.save(folder / f"{dataset}_Std_raw.npy", std.reshape(-1))  # the flat (J*3,) form is accepted too
        stats[dataset] = (mean, std, str(folder / f"{dataset}_Mean_raw.npy"), str(folder / f"{dataset}_Std_raw.npy"))
    return SimpleNamespace(
        folder=folder,
        checkpoint=checkpoint,
        state=state,
        text_source=str(text_source),
        stats=stats,
        bert_config=bert.config,
    )


def convert_kwargs(authors, dataset="humanml3d"):
    _, _, mean_file, std_file = authors.stats[dataset]
    return dict(
        mean=mean_file,
        std=std_file,
        tokenizer=authors.text_source,
        motion_backbone="vit_tiny_patch16_224",
        motion_backbone_kwargs=VIT_SIZE,
    )


def convert_flags(authors, dataset="humanml3d"):
    """`convert_kwargs` as command-line flags."""
    kwargs = convert_kwargs(authors, dataset)
    return ["--mean", kwargs["mean"], "--std", kwargs["std"], "--tokenizer", kwargs["tokenizer"],
            "--motion_backbone", kwargs["motion_backbone"], "--motion_backbone_kwargs", json.dumps(VIT_SIZE)]  # fmt: skip


@pytest.fixture(scope="module")
def converted(authors, tmp_path_factory):
    """The checkpoint converted by the function and by the command line."""
    root = tmp_path_factory.mktemp("converted")
    model, processor = convert_checkpoint(authors.checkpoint, "humanml3d", root / "python", **convert_kwargs(authors))
    kwargs = convert_kwargs(authors)
    convert_main(
        [
            "--checkpoint",
            str(authors.checkpoint),
            "--dataset",
            "humanml3d",
            "--mean",
            kwargs["mean"],
            "--std",
            kwargs["std"],
            "--output_dir",
            str(root / "cli"),
            "--tokenizer",
            authors.text_source,
            "--motion_backbone",
            "vit_tiny_patch16_224",
            "--motion_backbone_kwargs",
            json.dumps(VIT_SIZE),
        ]
    )
    return SimpleNamespace(folder=root / "python", model=model, processor=processor, cli_folder=root / "cli")


# ----------------------------------------------------------------------------- an independent forward pass
def reference_projection(state, prefix, hidden):
    """The authors' ProjectionHead written out: x = W1 h + b1; y = LayerNorm(W2 gelu(x) + b2 + x)."""
    x = hidden @ state[f"{prefix}.projection.weight"].T + state[f"{prefix}.projection.bias"]
    y = F.gelu(x) @ state[f"{prefix}.fc.weight"].T + state[f"{prefix}.fc.bias"] + x
    return F.layer_norm(
        y, (y.shape[-1],), state[f"{prefix}.layer_norm.weight"], state[f"{prefix}.layer_norm.bias"], eps=1e-5
    )


def reference_motion_embeddings(authors, motion_values):
    vit = authors_vit().eval()
    vit.load_state_dict(stripped("motion_encoder.model.", authors.state), strict=True)
    return reference_projection(authors.state, "motion_projection", vit(motion_values))


def reference_text_embeddings(authors, input_ids, attention_mask):
    bert = DistilBertModel(authors.bert_config).eval()
    bert.load_state_dict(stripped("text_encoder.text_model.", authors.state), strict=True)
    first_token = bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state[:, 0]
    return reference_projection(authors.state, "text_projection", first_token)


def reference_motion_values(motion, mean, std, chains, num_frames=224):
    """The authors' TextMotionPatchDataset: z-score, every chain through cv2.resize to 16 points, first
    window, zero padding; returned channels-first like their `t j c -> c t j`."""
    motion = ((motion - mean) / std)[:num_frames]
    out = np.zeros((num_frames, 16 * len(chains), 3))
    for t in range(len(motion)):
        for i, chain in enumerate(chains):
            row = motion[t, chain].reshape(1, -1, 3)
            out[t, 16 * i : 16 * (i + 1)] = cv2.resize(row, (16, 1), interpolation=cv2.INTER_LINEAR)[0]
    return out.transpose(2, 0, 1)


def sample_motions(sample_motion):
    """The real sample (170 frames: padded) and a 340-frame motion (cropped to its first window)."""
    return [sample_motion, np.concatenate([sample_motion, sample_motion[::-1]])]


@pytest.mark.parametrize("route", ["python", "cli"])
def test_embeddings_match_an_independent_forward_pass(route, authors, converted, sample_motion):
    if route == "python":
        model, processor = converted.model, converted.processor
    else:
        model = AutoModel.from_pretrained(converted.cli_folder).eval()
        processor = AutoProcessor.from_pretrained(converted.cli_folder)
    inputs = processor(text=TEXTS, motions=sample_motions(sample_motion), return_tensors="pt")
    with torch.no_grad():
        motion = model.get_motion_features(motion_values=inputs["motion_values"]).pooler_output
        text = model.get_text_features(
            input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]
        ).pooler_output
        expected_motion = reference_motion_embeddings(authors, inputs["motion_values"])
        expected_text = reference_text_embeddings(authors, inputs["input_ids"], inputs["attention_mask"])
    torch.testing.assert_close(motion, expected_motion, rtol=0, atol=1e-5)
    torch.testing.assert_close(text, expected_text, rtol=0, atol=1e-5)
    assert model.logit_scale.item() == pytest.approx(2.5)
    assert model.config.logit_scale_init_value == pytest.approx(2.5)
    assert model.config.projection_dim == PROJECTION_DIM


def test_cli_and_function_write_the_same_weights_and_preprocessing(converted):
    python_weights = safetensors.torch.load_file(converted.folder / "model.safetensors")
    cli_weights = safetensors.torch.load_file(converted.cli_folder / "model.safetensors")
    assert python_weights.keys() == cli_weights.keys()
    for key, tensor in python_weights.items():
        torch.testing.assert_close(cli_weights[key], tensor, rtol=0, atol=0, msg=key)
    for name in ("processor_config.json", "config.json"):
        assert json.loads((converted.cli_folder / name).read_text()) == json.loads(
            (converted.folder / name).read_text()
        )


def test_processor_reproduces_the_authors_humanml3d_preprocessing(authors, converted, sample_motion):
    mean, std, *_ = authors.stats["humanml3d"]
    motions = sample_motions(sample_motion)
    values = converted.processor(motions=motions, return_tensors="np")["motion_values"]
    expected = np.stack([reference_motion_values(m, mean, std, HUMANML3D_CHAINS) for m in motions])
    np.testing.assert_allclose(values, expected, rtol=0, atol=1e-5)
    extractor = converted.processor.feature_extractor
    assert (extractor.crop, extractor.num_frames, extractor.frame_rate_mode) == ("first", 224, "linear")


@pytest.fixture(scope="module")
def converted_kit(authors, tmp_path_factory):
    folder = tmp_path_factory.mktemp("kit") / "out"
    return convert_checkpoint(authors.checkpoint, "kit", folder, **convert_kwargs(authors, "kit"))


def test_kit_processor_uses_the_authors_chain_order_and_frame_repeating(authors, converted_kit):
    model, processor = converted_kit
    mean, std, *_ = authors.stats["kit"]
    motion = np.random.default_rng(1).normal(size=(60, 21, 3)).astype(np.float32)
    values = processor(motions=[motion], return_tensors="np")["motion_values"][0]
    np.testing.assert_allclose(values, reference_motion_values(motion, mean, std, KIT_CHAINS), rtol=0, atol=1e-5)
    assert processor.feature_extractor.frame_rate_mode == "repeat"
    assert model.config.projection_dropout == 0.0  # the authors trained KIT-ML without head dropout


def authors_kit_frame_indices(num_frames: int, orig_fps: float = 12.5, out_fps: float = 20.0) -> np.ndarray:
    """The frames the authors' `_subsample_to_20fps` picks for KIT-ML: blocks of int(12.5) = 12 source
    frames, each expanded to 20 by the pattern floor(0.625 * k)."""
    block = int(orig_fps)
    pattern = np.floor(orig_fps / out_fps * np.arange(int(out_fps))).astype(int)
    full = [i * block + pattern for i in range(num_frames // block)]
    tail = [x + (num_frames // block) * block for x in pattern if x + (num_frames // block) * block < num_frames]
    return np.concatenate([*full, np.asarray(tail, dtype=int)])


def test_kit_frame_repeating_matches_the_authors_frame_choice(authors, converted_kit):
    _, processor = converted_kit
    mean, std, *_ = authors.stats["kit"]
    motion = np.random.default_rng(2).normal(size=(100, 21, 3)).astype(np.float32)
    values = processor(motions=[motion], motion_fps=12.5, return_tensors="np")["motion_values"][0]
    expected = reference_motion_values(motion[authors_kit_frame_indices(len(motion))], mean, std, KIT_CHAINS)
    np.testing.assert_allclose(values, expected, rtol=0, atol=1e-5)


# ----------------------------------------------------------------------------- the saved folder
def test_converted_folder_loads_in_a_clean_interpreter(
    converted, sample_motion, sample_motion_path, tmp_path, clean_load
):
    files = set(os.listdir(converted.folder))
    assert "model.safetensors" in files and "README.md" in files
    assert not [f for f in files if f.endswith((".bin", ".pt", ".pth", ".pkl"))]
    card = (converted.folder / "README.md").read_text()
    assert "best_model.pt" in card and "humanml3d" in card and "Mean_raw.npy" in card
    clean = clean_load(converted.folder, sample_motion_path, tmp_path / "clean.npz", TEXTS, tmp_path)
    assert clean["classes"][1].startswith("transformers_modules.")
    inputs = converted.processor(text=TEXTS, motions=[sample_motion, sample_motion[::-1].copy()], return_tensors="pt")
    with torch.no_grad():
        out = converted.model(**inputs)
    np.testing.assert_allclose(clean["motion"], out.motion_embeds.numpy(), rtol=0, atol=1e-6)
    np.testing.assert_allclose(clean["text"], out.text_embeds.numpy(), rtol=0, atol=1e-6)


# ----------------------------------------------------------------------------- refusals
def renamed(state):
    state = dict(state)
    state["motion_encoder.backbone.cls_token"] = state.pop("motion_encoder.model.cls_token")
    state["text_projection.fc2.weight"] = state.pop("text_projection.fc.weight")
    return state


def missing(state):
    return {k: v for k, v in state.items() if k != "text_encoder.text_model.transformer.layer.1.ffn.lin2.bias"}


def reshaped(state):
    return dict(state, **{"motion_encoder.model.pos_embed": torch.zeros(1, 1 + 14 * 14, 32)})


@pytest.mark.parametrize(
    "mutate, listed",
    [
        (
            renamed,
            [
                "no known prefix: motion_encoder.backbone.cls_token",
                "unexpected (not in the model): text_projection.fc2.weight",
                "missing from the checkpoint: motion_encoder.model.cls_token",
                "missing from the checkpoint: text_projection.fc.weight",
            ],
        ),
        (missing, ["missing from the checkpoint: text_encoder.text_model.transformer.layer.1.ffn.lin2.bias"]),
        (reshaped, ["shape mismatch: motion_encoder.model.pos_embed is (1, 197, 32) in the checkpoint, (1, 71, 32)"]),
    ],
)
def test_keys_that_do_not_fit_are_all_listed_and_nothing_is_written(mutate, listed, authors, tmp_path):
    checkpoint = tmp_path / "best_model.pt"
    torch.save(mutate(authors.state), checkpoint)
    out = tmp_path / "out"
    with pytest.raises(ValueError) as err:
        convert_checkpoint(checkpoint, "humanml3d", out, **convert_kwargs(authors))
    for line in listed:
        assert line in str(err.value)
    assert str(err.value).count("\n  ") == len(listed), str(err.value)
    assert not out.exists()


def test_pickled_objects_are_refused(authors, tmp_path):
    checkpoint = tmp_path / "best_model.pt"
    torch.save({**authors.state, "extra": NotATensor()}, checkpoint)
    with pytest.raises(ValueError, match="weights_only") as err:
        convert_checkpoint(checkpoint, "humanml3d", tmp_path / "out", **convert_kwargs(authors))
    assert str(checkpoint) in str(err.value)
    assert not (tmp_path / "out").exists()


def test_a_wrapped_state_dict_is_not_guessed_at(authors, tmp_path):
    checkpoint = tmp_path / "wrapped.pt"
    torch.save({"state_dict": authors.state, "epoch": 3}, checkpoint)
    with pytest.raises(ValueError, match="not a flat dict of tensors") as err:
        convert_checkpoint(checkpoint, "humanml3d", tmp_path / "out", **convert_kwargs(authors))
    assert str(checkpoint) in str(err.value)


def test_statistics_of_the_wrong_size_or_none_are_refused(authors, tmp_path):
    kwargs = convert_kwargs(authors)
    np.save(tmp_path / "Mean.npy", np.zeros(263))
    with pytest.raises(ValueError, match=r"263 values .*22 joints x 3 = 66"):
        convert_checkpoint(
            authors.checkpoint, "humanml3d", tmp_path / "out", **dict(kwargs, mean=str(tmp_path / "Mean.npy"))
        )
    with pytest.raises(ValueError, match="z-scored"):
        convert_checkpoint(authors.checkpoint, "humanml3d", tmp_path / "out", **dict(kwargs, mean=None, std=None))
    assert not (tmp_path / "out").exists()


def write_motion_folder(root, motions: dict, splits: dict):
    (root / "new_joints").mkdir(parents=True)
    (root / "texts").mkdir()
    for name, motion in motions.items():
        np.save(root / "new_joints" / f"{name}.npy", motion.astype(np.float32))
        (root / "texts" / f"{name}.txt").write_text("a person walks forward#a/DET#0.0#0.0\n")
    for filename, names in splits.items():
        (root / filename).write_text("\n".join(names) + "\n")


def test_statistics_come_from_the_train_split_of_a_dataset_folder(authors, sample_motion, tmp_path):
    second = sample_motion[::-1] * 1.5 + 0.3
    write_motion_folder(
        tmp_path / "HumanML3D",
        {"a": sample_motion, "b": second, "c": sample_motion * 10.0},
        {"train.txt": ["a", "b"], "test.txt": ["c"]},
    )
    kwargs = dict(convert_kwargs(authors), mean=None, std=None, dataset_dir=str(tmp_path / "HumanML3D"))
    _, processor = convert_checkpoint(authors.checkpoint, "humanml3d", tmp_path / "out", **kwargs)
    frames = np.concatenate([sample_motion, second]).astype(np.float64)
    np.testing.assert_allclose(processor.feature_extractor.mean, frames.mean(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(processor.feature_extractor.std, frames.std(axis=0), rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- the Hub
def test_push_to_hub_sends_weights_code_processor_and_card(authors, monkeypatch, tmp_path):
    fake = fake_hub(monkeypatch)
    out = tmp_path / "motionpatches-humanml3d"
    convert_checkpoint(
        authors.checkpoint,
        "humanml3d",
        out,
        push_to_hub=True,
        hub_model_id="someone/converted",
        **convert_kwargs(authors),
    )
    uploaded = {}
    for repo_id, files in fake.commits:
        assert repo_id == "someone/converted"
        uploaded.update(files)
    code = {
        "configuration_motionpatches.py",
        "modeling_motionpatches.py",
        "motion_encoders.py",
        "processing_motionpatches.py",
        "feature_extraction_motionpatches.py",
        "skeletons.py",
    }
    assert {"model.safetensors", "config.json", "processor_config.json", "tokenizer_config.json"} | code <= set(
        uploaded
    )
    assert set(uploaded) == set(os.listdir(out))
    for name in ("model.safetensors", "processor_config.json", "README.md"):
        assert uploaded[name] == (out / name).read_bytes(), name


def test_integer_tensors_are_refused_by_key_and_nothing_is_written(authors, tmp_path):
    state = dict(authors.state)
    for key in ("logit_scale", "text_projection.fc.bias"):
        state[key] = state[key].round().to(torch.int32)
    checkpoint = tmp_path / "best_model.safetensors"
    safetensors.torch.save_file(state, checkpoint)
    with pytest.raises(ValueError) as err:
        convert_checkpoint(checkpoint, "humanml3d", tmp_path / "out", **convert_kwargs(authors))
    message = str(err.value)
    assert str(checkpoint) in message and "nothing was written" in message
    assert "not floating point (int32): logit_scale" in message
    assert "not floating point (int32): text_projection.fc.bias" in message
    assert message.count("\n  ") == 2 and sorted(os.listdir(tmp_path)) == ["best_model.safetensors"]


def test_nan_and_inf_weights_are_refused_by_key_and_nothing_is_written(authors, tmp_path):
    state = {key: tensor.clone() for key, tensor in authors.state.items()}
    state["motion_encoder.model.cls_token"].view(-1)[:3] = float("nan")
    state["text_projection.layer_norm.weight"][0] = float("inf")
    checkpoint = tmp_path / "best_model.pt"
    torch.save(state, checkpoint)
    with pytest.raises(ValueError) as err:
        convert_main(["--checkpoint", str(checkpoint), "--dataset", "humanml3d", "--output_dir", str(tmp_path / "out"),
                      *convert_flags(authors)])  # fmt: skip
    message = str(err.value)
    assert "3 of 32 values NaN or inf: motion_encoder.model.cls_token" in message
    assert f"1 of {PROJECTION_DIM} values NaN or inf: text_projection.layer_norm.weight" in message
    assert message.count("\n  ") == 2 and sorted(os.listdir(tmp_path)) == ["best_model.pt"]


@pytest.mark.parametrize("name", ["best_model.pt", "best_model.safetensors", "legacy.pt"])
def test_a_truncated_checkpoint_is_named_with_the_fix(name, authors, tmp_path):
    whole = tmp_path / f"whole_{name}"
    if name.endswith(".safetensors"):
        safetensors.torch.save_file(authors.state, whole)
    else:
        torch.save(authors.state, whole, _use_new_zipfile_serialization=not name.startswith("legacy"))
    checkpoint = tmp_path / name
    checkpoint.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(ValueError) as err:
        convert_checkpoint(checkpoint, "humanml3d", tmp_path / "out", **convert_kwargs(authors))
    assert f"cannot read the checkpoint {checkpoint}" in str(err.value)
    assert "truncated or corrupt; download or copy it again" in str(err.value)
    assert not (tmp_path / "out").exists()


def test_a_failure_while_saving_leaves_the_previous_conversion(authors, converted, tmp_path, monkeypatch):
    from motionpatches.training import convert_authors_checkpoint

    out = tmp_path / "motionpatches-humanml3d"
    shutil.copytree(converted.folder, out)
    before = {name: (out / name).read_bytes() for name in os.listdir(out)}

    def card_fails(output_dir, **card):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(convert_authors_checkpoint, "write_model_card", card_fails)
    kwargs = dict(convert_kwargs(authors), mean=authors.stats["humanml3d"][0] + 1.0)  # new statistics
    with pytest.raises(OSError, match="No space left"):
        convert_checkpoint(authors.checkpoint, "humanml3d", out, **kwargs)
    assert {name: (out / name).read_bytes() for name in os.listdir(out)} == before
    assert sorted(os.listdir(tmp_path)) == ["motionpatches-humanml3d"]  # no staging folder left


def test_the_card_is_titled_after_the_output_folder(converted):
    assert "\n# python\n" in (converted.folder / "README.md").read_text()

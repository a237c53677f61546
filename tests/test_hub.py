"""Save / load / push round trips, including remote code in an interpreter that cannot see this repository."""

import json
import os

import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoModel, AutoProcessor

from motionpatches import MotionPatchesConfig, MotionPatchProcessor, MotionTextModel
from motionpatches.tiny import tiny_config

TEXTS = ["a person walks forward", "someone jumps up and down"]


@pytest.fixture(scope="module")
def saved(tmp_path_factory, tokenizer, sample_motion):
    folder = tmp_path_factory.mktemp("hub") / "tiny-motionpatches"
    torch.manual_seed(0)
    model = MotionTextModel(tiny_config(len(tokenizer))).eval()
    rng = np.random.default_rng(0)
    processor = MotionPatchProcessor(
        tokenizer=tokenizer, mean=rng.normal(size=(22, 3)), std=rng.uniform(0.5, 2, (22, 3))
    )
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    inputs = processor(text=TEXTS, motions=[sample_motion, sample_motion[::-1].copy()], return_tensors="pt")
    with torch.no_grad():
        out = model(**inputs)
    return folder, model, processor, inputs, out


def test_saved_folder_contents(saved):
    folder, *_ = saved
    files = set(os.listdir(folder))
    assert "model.safetensors" in files
    assert not [f for f in files if f.endswith((".bin", ".pt", ".pth", ".pkl"))]
    code = {
        "configuration_motionpatches.py",
        "modeling_motionpatches.py",
        "processing_motionpatches.py",
        "feature_extraction_motionpatches.py",
        "skeletons.py",
        "bvh.py",
        "motion_encoders.py",
    }
    assert code <= files
    config = json.loads((folder / "config.json").read_text())
    assert config["auto_map"] == {
        "AutoConfig": "configuration_motionpatches.MotionPatchesConfig",
        "AutoModel": "modeling_motionpatches.MotionTextModel",
    }
    processor_config = json.loads((folder / "processor_config.json").read_text())
    assert processor_config["auto_map"]["AutoProcessor"] == "processing_motionpatches.MotionPatchProcessor"
    assert {"tokenizer.json", "tokenizer_config.json"} <= files


def test_remote_code_loads_in_clean_interpreter(saved, sample_motion_path, tmp_path, clean_load):
    folder, _, _, inputs, out = saved
    clean = clean_load(folder, sample_motion_path, tmp_path / "clean.npz", TEXTS, tmp_path)
    assert clean["classes"][0] == "MotionPatchesConfig"
    assert clean["classes"][1].startswith("transformers_modules."), "the model class must come from the saved folder"
    np.testing.assert_array_equal(clean["motion_values"], inputs["motion_values"].numpy())
    np.testing.assert_allclose(clean["motion"], out.motion_embeds.numpy(), atol=1e-6, rtol=0)
    np.testing.assert_allclose(clean["text"], out.text_embeds.numpy(), atol=1e-6, rtol=0)


def test_auto_classes_without_remote_code_once_package_is_imported(saved):
    folder, model, processor, inputs, out = saved
    config = AutoConfig.from_pretrained(folder)
    loaded = AutoModel.from_pretrained(folder).eval()
    loaded_processor = AutoProcessor.from_pretrained(folder)
    assert isinstance(config, MotionPatchesConfig)
    assert type(loaded) is MotionTextModel and type(loaded_processor) is MotionPatchProcessor
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[name], tensor, rtol=0, atol=0)
    with torch.no_grad():
        again = loaded(**inputs)
    torch.testing.assert_close(again.motion_embeds, out.motion_embeds, rtol=0, atol=1e-6)


class FakeHub:
    """Stands in for the Hub API: records what would be uploaded, contacts nothing."""

    def __init__(self):
        self.commits = []

    def create_repo(self, repo_id, **kwargs):
        return type("RepoUrl", (), {"repo_id": repo_id})()

    def create_commit(self, repo_id, operations, **kwargs):
        files = {}
        for op in operations:
            with open(op.path_or_fileobj, "rb") as f:
                files[op.path_in_repo] = f.read()
        self.commits.append((repo_id, files))

    def create_branch(self, **kwargs):
        pass


def fake_hub(monkeypatch) -> FakeHub:
    import transformers.utils.hub as hub
    from huggingface_hub import ModelCard, ModelCardData

    fake = FakeHub()
    monkeypatch.setattr(hub, "hf_api", lambda: fake)
    # the real one reads the existing card from the Hub first
    monkeypatch.setattr(hub, "create_and_tag_model_card", lambda *a, **k: ModelCard.from_template(ModelCardData()))
    return fake


def test_push_to_hub_sends_the_saved_files(saved, monkeypatch):
    folder, model, processor, *_ = saved
    fake = fake_hub(monkeypatch)
    model.push_to_hub("someone/tiny-motionpatches")
    processor.push_to_hub("someone/tiny-motionpatches")
    uploaded = {}
    for repo_id, files in fake.commits:
        assert repo_id == "someone/tiny-motionpatches"
        uploaded.update(files)
    assert set(uploaded) - {"README.md"} == set(os.listdir(folder))
    for name in (
        "model.safetensors",
        "modeling_motionpatches.py",
        "configuration_motionpatches.py",
        "processor_config.json",
    ):
        assert uploaded[name] == (folder / name).read_bytes(), name


def test_save_pretrained_push_to_hub_flag(saved, monkeypatch, tmp_path):
    _, model, *_ = saved
    fake = fake_hub(monkeypatch)
    model.save_pretrained(tmp_path / "out", push_to_hub=True, repo_id="someone/flagged")
    assert fake.commits and fake.commits[-1][0] == "someone/flagged"
    assert {"model.safetensors", "config.json", "modeling_motionpatches.py"} <= set(fake.commits[-1][1])

"""A model folder saved by motionpatches 0.1.0, before the package moved under the one import name
`motionpatches`, still loads and still gives the embeddings it gave then.

The fixture (a tiny random model, its processor with statistics, and the embeddings 0.1.0 computed for
TEXTS and the shared HumanML3D sample, forwards and backwards) was written by 0.1.0 and is kept as it was.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoProcessor

from motionpatches import MotionPatchProcessor, MotionTextModel

FIXTURE = Path(__file__).parent / "fixtures" / "saved_by_0_1_0"
TEXTS = ["a person walks forward", "a person waves the left hand"]


def expected(kind: str) -> np.ndarray:
    return np.load(FIXTURE / f"expected_{kind}_embeds.npy")


def test_folder_saved_by_0_1_0_loads_with_this_package_and_gives_the_same_embeddings(sample_motion):
    # no trust_remote_code: importing motionpatches registers the classes its config names
    model = AutoModel.from_pretrained(FIXTURE / "model").eval()
    processor = AutoProcessor.from_pretrained(FIXTURE / "model")
    assert type(model) is MotionTextModel and type(processor) is MotionPatchProcessor
    inputs = processor(text=TEXTS, motions=[sample_motion, sample_motion[::-1].copy()], return_tensors="pt")
    with torch.no_grad():
        out = model(**inputs)
    np.testing.assert_allclose(out.motion_embeds.numpy(), expected("motion"), atol=1e-6)
    np.testing.assert_allclose(out.text_embeds.numpy(), expected("text"), atol=1e-6)


@pytest.mark.slow
def test_folder_saved_by_0_1_0_still_loads_as_remote_code(sample_motion_path, tmp_path, clean_load):
    clean = clean_load(FIXTURE / "model", sample_motion_path, tmp_path / "clean.npz", TEXTS, tmp_path)
    np.testing.assert_allclose(clean["motion"], expected("motion"), atol=1e-6)
    np.testing.assert_allclose(clean["text"], expected("text"), atol=1e-6)


def test_folder_saved_now_keeps_the_auto_map_targets_of_0_1_0(tmp_path, tokenizer):
    from motionpatches.tiny import tiny_config

    MotionTextModel(tiny_config(len(tokenizer))).save_pretrained(tmp_path)
    MotionPatchProcessor(tokenizer=tokenizer).save_pretrained(tmp_path)
    old, new = (json_of(folder / "config.json")["auto_map"] for folder in (FIXTURE / "model", tmp_path))
    assert new == old
    old, new = (json_of(folder / "processor_config.json") for folder in (FIXTURE / "model", tmp_path))
    assert new["auto_map"] == old["auto_map"]
    assert new["feature_extractor"]["auto_map"] == old["feature_extractor"]["auto_map"]


def json_of(path: Path) -> dict:
    return json.loads(path.read_text())

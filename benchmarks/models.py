"""The models the model benchmarks run, their inputs, and our training objective as a user of the library runs it.

`SIZES` names the configurations (the paper's ViT-B/16 + DistilBERT, ViT-Tiny + a small DistilBERT, and a
seconds-long "quick" one); `build_model` builds one with random weights; `motion_inputs`, `text_inputs` and
`make_batch` make its inputs; `our_loss`, `our_optimizer` and `our_step` are the training step of
`training/train.py` without accelerate's wrapping. The plain PyTorch counterparts are in `plain_networks`.
"""

from types import SimpleNamespace

import torch

from motionpatches import MotionPatchesConfig, MotionTextModel
from motionpatches.tiny import build_word_tokenizer
from motionpatches.training.loss import global_contrastive_loss
from motionpatches.training.params import PAPER_LEARNING_RATES
from motionpatches.training.train import param_groups

# sentences of 8-12 words: 10-14 WordPiece tokens with [CLS] and [SEP], ~12 on average
CAPTIONS = [
    "a person walks forward slowly and then turns around",
    "someone waves the left hand above the head",
    "a man jumps up and down three times",
    "the person kicks with the right leg",
    "a woman sits down on a chair and stands up again",
    "a person runs in a circle counter clockwise",
    "someone claps hands in front of the chest",
    "the person raises both arms and lowers them",
]
# ViT-B/16 + DistilBERT is the paper's model (`MotionPatchesConfig()`'s defaults); "tiny" is timm's ViT-Tiny
# with a 4-layer DistilBERT; "quick" only exercises the code
SIZES = {
    "paper": {"label": "ViT-B/16 + DistilBERT", "motion": {}, "text": {}},
    "tiny": {
        "label": "ViT-Ti/16 + DistilBERT-4x256",
        "motion": {"backbone": "vit_tiny_patch16_224"},
        "text": {"model_type": "distilbert", "dim": 256, "n_layers": 4, "n_heads": 4, "hidden_dim": 1024},
    },
    "quick": {
        "label": "ViT 2x32 + DistilBERT 2x32",
        "motion": {
            "backbone": "vit_tiny_patch16_224",
            "backbone_kwargs": {"embed_dim": 32, "depth": 2, "num_heads": 2},
        },
        "text": {"model_type": "distilbert", "dim": 32, "n_layers": 2, "n_heads": 2, "hidden_dim": 64},
    },
}


# ----------------------------------------------------------------------------------------------- models and inputs
def build_model(size: str, seed: int = 0) -> MotionTextModel:
    """Random weights, nothing downloaded; eval mode, as a user embedding a dataset would run it."""
    torch.manual_seed(seed)
    spec = SIZES[size]
    config = MotionPatchesConfig(motion_config=spec["motion"] or None, text_config=spec["text"] or None)
    return MotionTextModel(config).eval()


def caption_tokenizer():
    """A word-level tokenizer over CAPTIONS: nothing downloaded."""
    return build_word_tokenizer(CAPTIONS)


def text_inputs(tokenizer, batch: int) -> dict:
    """`batch` captions cycled from CAPTIONS, padded to the longest: padding is masked, as in real batches."""
    texts = [CAPTIONS[i % len(CAPTIONS)] for i in range(batch)]
    encoded = tokenizer(texts, padding=True, return_tensors="pt")
    return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}


def motion_inputs(model: MotionTextModel, batch: int, seed: int = 0) -> torch.Tensor:
    """Random normal motion images of the model's input shape."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, *model.config.motion_config.input_shape, generator=generator)


def make_batch(model: MotionTextModel, batch_size: int, seed: int = 0) -> dict:
    """A training batch: random motion images and cycled captions."""
    return {"motion_values": motion_inputs(model, batch_size, seed), **text_inputs(caption_tokenizer(), batch_size)}


# ----------------------------------------------------------------------------------------------- our training step
def our_optimizer(model: MotionTextModel) -> torch.optim.Adam:
    """Adam over train.py's three parameter groups, at the paper's learning rates."""
    rates = SimpleNamespace(**{f"learning_rate_{part}": rate for part, rate in PAPER_LEARNING_RATES.items()})
    return torch.optim.Adam(param_groups(model, rates))


def our_loss(model: MotionTextModel, batch: dict) -> torch.Tensor:
    """`model(**batch)` and the global-batch contrastive loss, as train.py computes it."""
    out = model(**batch)
    return global_contrastive_loss(out.motion_embeds, out.text_embeds, model.logit_scale)


def our_step(model: MotionTextModel, optimizer: torch.optim.Optimizer, batch: dict) -> float:
    """Loss, backward, optimiser step, zero_grad; returns the loss before the step."""
    loss = our_loss(model, batch)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    return loss.item()

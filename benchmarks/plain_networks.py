"""The plain PyTorch reference the model benchmarks compare against: `MotionTextModel`'s network written out.

The same network as ours -- patch-embedding convolution, class token and position embedding, ViT blocks with
explicitly computed softmax(QK^T / sqrt(d))V, LayerNorms, MLPs, average pooling, fc_norm, projection head;
DistilBERT likewise -- with plain tensor ops over a name -> tensor dict of the model's own weights
(`plain_weights`), no fused attention kernel and no `nn.Module`. For training, a symmetric cross-entropy
written out (`plain_loss`) and `torch.optim.Adam` over the same three parameter groups (`plain_optimizer`).
`plain_spec` reads the hyperparameters off a model and refuses the ones this does not re-implement.
"""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from motionpatches import MotionTextModel
from motionpatches.training.params import PAPER_LEARNING_RATES


# ----------------------------------------------------------------------------------------------- forward
@dataclass(frozen=True)
class PlainSpec:
    """The hyperparameters the plain forward needs, read off our model (the weights come separately)."""

    patch_size: int
    vit_depth: int
    vit_heads: int
    text_layers: int
    text_heads: int
    text_dropout: float
    attention_dropout: float
    projection_dropout: float


# LayerNorm epsilons of the three parts: timm's ViT, DistilBERT, and torch's default in the projection heads
VIT_EPS, TEXT_EPS, HEAD_EPS = 1e-6, 1e-12, 1e-5


def plain_spec(model: MotionTextModel) -> PlainSpec:
    """Refuses models the plain forward does not re-implement, rather than comparing different networks."""
    motion, text = model.config.motion_config, model.config.text_config
    supported = motion.encoder == "vit" and motion.pooling == "avg" and motion.drop_path_rate == 0.0
    if not supported or text.model_type != "distilbert" or model.config.num_persons != 1:
        raise ValueError("the plain forward re-implements one-person ViT (avg pooling, no drop path) + DistilBERT only")
    return PlainSpec(
        patch_size=motion.patch_size,
        vit_depth=len(model.motion_model.blocks),
        vit_heads=model.motion_model.blocks[0].attn.num_heads,
        text_layers=text.n_layers,
        text_heads=text.n_heads,
        text_dropout=text.dropout,
        attention_dropout=text.attention_dropout,
        projection_dropout=model.config.projection_dropout,
    )


def plain_weights(model: MotionTextModel, copy: bool = False) -> dict:
    """The model's parameters as a name -> leaf tensor dict (requiring grad, like parameters do).

    `copy=False` shares storage with the model -- the same weights, no extra memory -- for inference;
    training needs `copy=True`, so that the two optimisers update separate tensors.
    """
    return {
        name: (param.detach().clone() if copy else param.detach()).requires_grad_(True)
        for name, param in model.named_parameters()
    }


def _linear(w: dict, name: str, x: torch.Tensor) -> torch.Tensor:
    return F.linear(x, w[f"{name}.weight"], w[f"{name}.bias"])


def _layer_norm(w: dict, name: str, x: torch.Tensor, eps: float) -> torch.Tensor:
    return F.layer_norm(x, x.shape[-1:], w[f"{name}.weight"], w[f"{name}.bias"], eps)


def _attention(q, k, v, heads: int, bias=None, dropout: float = 0.0, train: bool = False) -> torch.Tensor:
    """softmax(Q K^T / sqrt(d) + bias) V per head, computed explicitly (no fused kernel)."""
    batch, tokens, width = q.shape
    q, k, v = (t.reshape(batch, tokens, heads, width // heads).transpose(1, 2) for t in (q, k, v))
    scores = q @ k.transpose(-2, -1) / math.sqrt(width // heads)
    if bias is not None:
        scores = scores + bias
    weights = F.dropout(scores.softmax(dim=-1), dropout, train)
    return (weights @ v).transpose(1, 2).reshape(batch, tokens, width)


def _projection_head(w: dict, name: str, x: torch.Tensor, dropout: float, train: bool) -> torch.Tensor:
    projected = _linear(w, f"{name}.projection", x)
    hidden = F.dropout(_linear(w, f"{name}.fc", F.gelu(projected)), dropout, train)
    return _layer_norm(w, f"{name}.layer_norm", hidden + projected, HEAD_EPS)


def plain_motion_features(w: dict, spec: PlainSpec, motion_values: torch.Tensor, train: bool = False) -> torch.Tensor:
    """The motion tower and its projection head: equals `get_motion_features(...).pooler_output`."""
    p = "motion_model."
    x = F.conv2d(
        motion_values, w[p + "patch_embed.proj.weight"], w[p + "patch_embed.proj.bias"], stride=spec.patch_size
    )
    x = x.flatten(2).transpose(1, 2)
    x = torch.cat([w[p + "cls_token"].expand(x.shape[0], -1, -1), x], dim=1) + w[p + "pos_embed"]
    for i in range(spec.vit_depth):
        block = f"{p}blocks.{i}"
        h = _layer_norm(w, f"{block}.norm1", x, VIT_EPS)
        q, k, v = _linear(w, f"{block}.attn.qkv", h).chunk(3, dim=-1)
        x = x + _linear(w, f"{block}.attn.proj", _attention(q, k, v, spec.vit_heads))
        h = _layer_norm(w, f"{block}.norm2", x, VIT_EPS)
        x = x + _linear(w, f"{block}.mlp.fc2", F.gelu(_linear(w, f"{block}.mlp.fc1", h)))
    pooled = _layer_norm(w, p + "fc_norm", x[:, 1:].mean(dim=1), VIT_EPS)  # average of the patch tokens
    return _projection_head(w, "motion_projection", pooled, spec.projection_dropout, train)


def plain_text_features(
    w: dict, spec: PlainSpec, input_ids: torch.Tensor, attention_mask: torch.Tensor, train: bool = False
) -> torch.Tensor:
    """DistilBERT's first-token state and the text projection head: equals `get_text_features(...).pooler_output`."""
    p = "text_model."
    positions = torch.arange(input_ids.shape[1], device=input_ids.device)
    x = (
        w[p + "embeddings.word_embeddings.weight"][input_ids]
        + w[p + "embeddings.position_embeddings.weight"][positions]
    )
    x = F.dropout(_layer_norm(w, p + "embeddings.LayerNorm", x, TEXT_EPS), spec.text_dropout, train)
    padding_bias = torch.zeros(attention_mask.shape, dtype=torch.float32, device=attention_mask.device)
    padding_bias = padding_bias.masked_fill(attention_mask == 0, torch.finfo(torch.float32).min)[:, None, None, :]
    for i in range(spec.text_layers):
        layer = f"{p}transformer.layer.{i}"
        q, k, v = (_linear(w, f"{layer}.attention.{name}", x) for name in ("q_lin", "k_lin", "v_lin"))
        attended = _attention(q, k, v, spec.text_heads, padding_bias, spec.attention_dropout, train)
        x = _layer_norm(w, f"{layer}.sa_layer_norm", _linear(w, f"{layer}.attention.out_lin", attended) + x, TEXT_EPS)
        hidden = _linear(w, f"{layer}.ffn.lin2", F.gelu(_linear(w, f"{layer}.ffn.lin1", x)))
        x = _layer_norm(w, f"{layer}.output_layer_norm", F.dropout(hidden, spec.text_dropout, train) + x, TEXT_EPS)
    return _projection_head(w, "text_projection", x[:, 0], spec.projection_dropout, train)


# ----------------------------------------------------------------------------------------------- training step
def plain_optimizer(weights: dict) -> torch.optim.Adam:
    """torch.optim.Adam over the same three groups, formed from the parameter names."""
    groups = {"text": [], "motion": [], "heads": []}
    for name, tensor in weights.items():
        part = "text" if name.startswith("text_model.") else "motion" if name.startswith("motion_model.") else "heads"
        groups[part].append(tensor)
    return torch.optim.Adam([{"params": groups[part], "lr": PAPER_LEARNING_RATES[part]} for part in groups])


def plain_loss(weights: dict, spec: PlainSpec, batch: dict, train: bool) -> torch.Tensor:
    """Symmetric cross-entropy over cosine similarities scaled by exp(logit_scale), written out plainly."""
    motion = F.normalize(plain_motion_features(weights, spec, batch["motion_values"], train), dim=-1)
    text = F.normalize(plain_text_features(weights, spec, batch["input_ids"], batch["attention_mask"], train), dim=-1)
    logits = weights["logit_scale"].exp() * text @ motion.t()
    targets = torch.arange(logits.shape[0])
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.t(), targets)) / 2


def plain_step(weights: dict, spec: PlainSpec, optimizer, batch: dict, train: bool = True) -> float:
    """Loss, backward, optimiser step, zero_grad; returns the loss before the step."""
    loss = plain_loss(weights, spec, batch, train)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    return loss.item()

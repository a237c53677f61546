"""The contrastive loss over the global batch: every process sees every other process's features.

As in open_clip's `gather_with_grad`: features are all-gathered with autograd, so each process's
loss is the loss of the whole global batch and the gradient flowing back to its own features
includes the terms from every other process. With DDP averaging the parameter gradients, N
processes x B samples then give exactly the loss and gradients of 1 process x N*B samples.
"""

import torch
import torch.distributed as dist

from motionpatches import motion_text_contrastive_loss
from motionpatches.training.false_negatives import false_negative_mask

# CLIP's cap on the inverse temperature: beyond 100 the softmax saturates and training destabilises
MAX_LOGIT_SCALE = 100.0


def _all_gather(values: torch.Tensor) -> torch.Tensor:
    gathered = [torch.empty_like(values) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, values.contiguous())
    return torch.cat(gathered, dim=0)


class _AllGatherWithGrad(torch.autograd.Function):
    """all_gather whose backward returns this process's slice of the gradient summed over all processes,
    since every process's loss depends on every process's features. Needs equal batch sizes per process."""

    @staticmethod
    def forward(ctx, features):
        ctx.rank, ctx.world_size = dist.get_rank(), dist.get_world_size()
        return _all_gather(features)

    @staticmethod
    def backward(ctx, grad):
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        return grad.chunk(ctx.world_size, dim=0)[ctx.rank]


def gather_with_grad(features: torch.Tensor) -> torch.Tensor:
    """Concatenate `features` from all processes in rank order, keeping gradients (identity on one process)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return features
    return _AllGatherWithGrad.apply(features)


def gather_constant(values: torch.Tensor) -> torch.Tensor:
    """Concatenate `values` (no gradient needed) from all processes in rank order."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return values
    return _all_gather(values)


def global_contrastive_loss(
    motion_embeds: torch.Tensor,
    text_embeds: torch.Tensor,
    logit_scale: torch.Tensor,
    pair_keys: dict[str, torch.Tensor] | None = None,
    similarity_threshold: float | None = None,
) -> torch.Tensor:
    """Symmetric InfoNCE over the global batch; embeddings are this process's L2-normalised features.

    With `pair_keys` (this process's `caption_keys`, `side_keys` and optionally `caption_embeds`, see
    false_negatives.py), pairs whose captions are the same -- or more similar than `similarity_threshold` --
    are masked out of the negatives (logit -inf). Without any such pair the loss is the plain one, exactly.
    """
    all_motion = gather_with_grad(motion_embeds)
    all_text = gather_with_grad(text_embeds)
    logits_per_text = logit_scale.exp() * all_text @ all_motion.t()
    if pair_keys:
        mask = false_negative_mask(
            gather_constant(pair_keys["caption_keys"]),
            gather_constant(pair_keys["side_keys"]),
            gather_constant(pair_keys["caption_embeds"]) if "caption_embeds" in pair_keys else None,
            similarity_threshold,
        )
        logits_per_text = logits_per_text.masked_fill(mask, float("-inf"))
    return motion_text_contrastive_loss(logits_per_text)


def clamp_logit_scale(logit_scale: torch.nn.Parameter) -> None:
    with torch.no_grad():
        logit_scale.clamp_(0, torch.log(torch.tensor(MAX_LOGIT_SCALE)).item())

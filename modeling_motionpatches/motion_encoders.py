"""Motion encoders over raw joint sequences, with the timm ViT interface the motion tower uses.

Motion Patches turns a motion into an image of patches for a ViT. To measure what the patches
buy (the paper's "no motion patches" ablation) and to compare with MotionBERT, these encoders
read normalised joint positions `(B, T, J, 3)` directly instead. They mirror the calls
`MotionTextModel` makes on its tower -- `num_features`, `forward_features`, `forward_head`
(masked mean pooling then `fc_norm`, as timm's average pooling) -- and add an optional
`frame_mask`, because a padded clip has no patch image to hide its padding in.

Shipped as Hugging Face remote code next to the model, so it imports nothing but torch.
"""

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DSTformer", "JointSequenceTransformer", "frame_mask_from_lengths", "sinusoidal_position_encoding"]

_INIT_STD = 0.02


def frame_mask_from_lengths(lengths: torch.Tensor | Sequence[int], num_frames: int) -> torch.Tensor:
    """`(B, num_frames)` bool mask, True for the first `lengths[b]` frames (the real ones) of each row."""
    lengths = torch.as_tensor(lengths, dtype=torch.long)
    if lengths.ndim != 1 or (lengths < 1).any() or (lengths > num_frames).any():
        raise ValueError(f"lengths must be a 1-d sequence of values in [1, {num_frames}], got {lengths.tolist()}")
    return torch.arange(num_frames, device=lengths.device) < lengths[:, None]


def _init_weights(module: nn.Module) -> None:
    """ViT-style init: truncated normal (std 0.02, cut at 2 std) for weights, zeros for biases."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=_INIT_STD, a=-2 * _INIT_STD, b=2 * _INIT_STD)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.MultiheadAttention):  # its packed q/k/v projection is a bare Parameter
        nn.init.trunc_normal_(module.in_proj_weight, std=_INIT_STD, a=-2 * _INIT_STD, b=2 * _INIT_STD)
        nn.init.zeros_(module.in_proj_bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def _prepare_inputs(
    joints: torch.Tensor, frame_mask: torch.Tensor | None, num_joints: int, num_frames: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Check shapes, default the mask to all-real, and zero the padded frames.

    Zeroing (with `masked_fill`, so even NaN padding goes) makes padded tokens independent of the
    padding's content too, not only the real ones, which attention masking alone already ensures.
    """
    if joints.ndim != 4 or joints.shape[2] != num_joints or joints.shape[3] != 3:
        raise ValueError(f"joints must have shape (batch, frames, {num_joints}, 3), got {tuple(joints.shape)}")
    batch, frames = joints.shape[:2]
    if frames > num_frames:
        raise ValueError(f"got {frames} frames; this encoder was built for at most {num_frames}")
    if frame_mask is None:
        return joints, torch.ones(batch, frames, dtype=torch.bool, device=joints.device)
    if frame_mask.shape != (batch, frames) or frame_mask.dtype != torch.bool:
        raise ValueError(
            f"frame_mask must be a bool tensor of shape {(batch, frames)}, got {frame_mask.dtype} {tuple(frame_mask.shape)}"
        )
    if not frame_mask.any(dim=1).all():
        raise ValueError("every row of frame_mask needs at least one real frame (attention over no keys is undefined)")
    return joints.masked_fill(~frame_mask[:, :, None, None], 0.0), frame_mask


def _masked_time_mean(tokens: torch.Tensor, frame_mask: torch.Tensor | None) -> torch.Tensor:
    """Mean of `(B, T, D)` tokens over the real frames of each row."""
    if frame_mask is None:
        return tokens.mean(dim=1)
    weights = frame_mask.to(tokens.dtype).unsqueeze(-1)
    return (tokens * weights).sum(dim=1) / weights.sum(dim=1)


def sinusoidal_position_encoding(num_positions: int, dim: int) -> torch.Tensor:
    """`(num_positions, dim)` fixed encoding of Vaswani et al.: sin on even channels, cos on odd ones."""
    position = torch.arange(num_positions, dtype=torch.float32).unsqueeze(1)
    frequency = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    encoding = torch.zeros(num_positions, dim)
    encoding[:, 0::2] = torch.sin(position * frequency)
    encoding[:, 1::2] = torch.cos(position * frequency[: dim // 2])
    return encoding


class JointSequenceTransformer(nn.Module):
    """A Transformer over frames: the paper's "no motion patches" ablation.

    Each frame's `J * 3` coordinates become one token (Linear), a fixed sinusoidal encoding marks
    its time, and pre-norm Transformer encoder layers mix frames, ignoring padded ones as keys.
    As with timm's average-pooled ViT, tokens are the un-normalised residual stream and the
    LayerNorm is applied after pooling (`fc_norm`).

    Tokens: `(B, T, hidden_size)`; pooled: `(B, hidden_size)`.
    """

    def __init__(
        self,
        num_joints: int,
        num_frames: int,
        hidden_size: int = 256,
        depth: int = 4,
        num_heads: int = 4,
        mlp_ratio: float = 4.0,
        dropout: float = 0.1,
    ):
        super().__init__()
        self.num_joints = num_joints
        self.num_frames = num_frames
        self.num_features = hidden_size
        self.frame_embed = nn.Linear(num_joints * 3, hidden_size)
        # fixed, so it is rebuilt rather than saved: checkpoints hold only learned weights
        self.register_buffer("pos_encoding", sinusoidal_position_encoding(num_frames, hidden_size), persistent=False)
        self.pos_drop = nn.Dropout(dropout)
        # a plain list rather than nn.TransformerEncoder, whose nested-tensor fast path would
        # rewrite padded positions and warns that it cannot be used with norm_first anyway
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(
                hidden_size,
                num_heads,
                dim_feedforward=int(hidden_size * mlp_ratio),
                dropout=dropout,
                activation="gelu",
                batch_first=True,
                norm_first=True,
            )
            for _ in range(depth)
        )
        self.fc_norm = nn.LayerNorm(hidden_size)
        self.apply(_init_weights)

    def forward_features(self, joints: torch.Tensor, frame_mask: torch.Tensor | None = None) -> torch.Tensor:
        """`(B, T, J, 3)` joints (T <= num_frames) -> `(B, T, hidden_size)` frame tokens."""
        joints, frame_mask = _prepare_inputs(joints, frame_mask, self.num_joints, self.num_frames)
        tokens = self.frame_embed(joints.flatten(2))
        tokens = self.pos_drop(tokens + self.pos_encoding[: tokens.shape[1]].to(tokens.dtype))
        padding = ~frame_mask
        for layer in self.layers:
            tokens = layer(tokens, src_key_padding_mask=padding)
        return tokens

    def forward_head(
        self, tokens: torch.Tensor, pre_logits: bool = True, frame_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Mean over real frames, then `fc_norm`: `(B, num_features)`.

        `pre_logits` is accepted for timm's signature; there is no classifier, so both values
        return the pooled features.
        """
        return self.fc_norm(_masked_time_mean(tokens, frame_mask))

    def forward(self, joints: torch.Tensor, frame_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_head(self.forward_features(joints, frame_mask), frame_mask=frame_mask)


class _Attention(nn.Module):
    """Multi-head self-attention whose keys can be masked (True = may be attended to)."""

    def __init__(self, dim: int, num_heads: int, dropout: float):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        self.attn_dropout = dropout
        self.proj_drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        n, length, dim = x.shape
        q, k, v = self.qkv(x).reshape(n, length, 3, self.num_heads, dim // self.num_heads).permute(2, 0, 3, 1, 4)
        attn_mask = None if key_mask is None else key_mask[:, None, None, :]
        dropout_p = self.attn_dropout if self.training else 0.0
        x = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p)
        return self.proj_drop(self.proj(x.transpose(1, 2).reshape(n, length, dim)))


class _Block(nn.Module):
    """Pre-norm residual block: x + MHSA(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, dropout: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = _Attention(dim, num_heads, dropout)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), key_mask)
        return x + self.mlp(self.norm2(x))


def _spatial(block: _Block, x: torch.Tensor) -> torch.Tensor:
    """Attention across the J joints of each frame; no mask, since a frame's joints are all real or all padding."""
    b, t, j, d = x.shape
    return block(x.reshape(b * t, j, d)).reshape(b, t, j, d)


def _temporal(block: _Block, x: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
    """Attention across the T frames of each joint, padded frames masked out as keys."""
    b, t, j, d = x.shape
    per_joint = x.transpose(1, 2).reshape(b * j, t, d)
    key_mask = frame_mask[:, None, :].expand(b, j, t).reshape(b * j, t)
    return block(per_joint, key_mask).reshape(b, j, t, d).transpose(1, 2)


class _DualStreamBlock(nn.Module):
    """Spatial-then-temporal and temporal-then-spatial streams, fused per token with learned weights."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, dropout: float):
        super().__init__()
        self.spatial_a = _Block(dim, num_heads, mlp_ratio, dropout)
        self.temporal_a = _Block(dim, num_heads, mlp_ratio, dropout)
        self.temporal_b = _Block(dim, num_heads, mlp_ratio, dropout)
        self.spatial_b = _Block(dim, num_heads, mlp_ratio, dropout)
        self.fusion = nn.Linear(2 * dim, 2)

    def forward(self, x: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        a = _temporal(self.temporal_a, _spatial(self.spatial_a, x), frame_mask)
        b = _spatial(self.spatial_b, _temporal(self.temporal_b, x, frame_mask))
        alpha = self.fusion(torch.cat([a, b], dim=-1)).softmax(dim=-1)
        return alpha[..., :1] * a + alpha[..., 1:] * b


class DSTformer(nn.Module):
    """A dual-stream spatio-temporal Transformer after MotionBERT's DSTformer (Zhu et al., ICCV 2023).

    Every joint of every frame is a token: Linear(3 -> dim) plus a learned per-joint (spatial) and
    per-frame (temporal) position embedding. Each of the `depth` blocks runs two streams --
    spatial then temporal attention, and temporal then spatial -- so joint and time dependencies
    are modelled in both orders, and mixes them per token with softmax weights predicted from both.
    The fusion starts as an even average (zero weights), as MotionBERT's does.

    Tokens: `(B, T, J, dim)`; pooled: `(B, dim)`, the mean over all joints of the real frames.
    """

    def __init__(
        self,
        num_joints: int,
        num_frames: int,
        dim: int = 256,
        depth: int = 4,
        num_heads: int = 8,
        mlp_ratio: float = 2.0,
        dropout: float = 0.1,
    ):
        super().__init__()
        self.num_joints = num_joints
        self.num_frames = num_frames
        self.num_features = dim
        self.joint_embed = nn.Linear(3, dim)
        self.spatial_pos_embed = nn.Parameter(torch.zeros(num_joints, dim))
        self.temporal_pos_embed = nn.Parameter(torch.zeros(num_frames, 1, dim))
        self.pos_drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(_DualStreamBlock(dim, num_heads, mlp_ratio, dropout) for _ in range(depth))
        self.fc_norm = nn.LayerNorm(dim)
        for embed in (self.spatial_pos_embed, self.temporal_pos_embed):
            nn.init.trunc_normal_(embed, std=_INIT_STD, a=-2 * _INIT_STD, b=2 * _INIT_STD)
        self.apply(_init_weights)
        for block in self.blocks:
            nn.init.zeros_(block.fusion.weight)

    def forward_features(self, joints: torch.Tensor, frame_mask: torch.Tensor | None = None) -> torch.Tensor:
        """`(B, T, J, 3)` joints (T <= num_frames) -> `(B, T, J, dim)` joint tokens."""
        joints, frame_mask = _prepare_inputs(joints, frame_mask, self.num_joints, self.num_frames)
        x = self.joint_embed(joints) + self.spatial_pos_embed + self.temporal_pos_embed[: joints.shape[1]]
        x = self.pos_drop(x)
        for block in self.blocks:
            x = block(x, frame_mask)
        return x

    def forward_head(
        self, tokens: torch.Tensor, pre_logits: bool = True, frame_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Mean over all joints and the real frames, then `fc_norm`: `(B, num_features)`.

        `pre_logits` is accepted for timm's signature; there is no classifier, so both values
        return the pooled features.
        """
        return self.fc_norm(_masked_time_mean(tokens.mean(dim=2), frame_mask))

    def forward(self, joints: torch.Tensor, frame_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_head(self.forward_features(joints, frame_mask), frame_mask=frame_mask)

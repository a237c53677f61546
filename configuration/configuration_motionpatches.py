"""Configuration of the Motion Patches motion-language model (Yu et al., CVPR 2024).

This file is shipped with every saved checkpoint as remote code, so it imports nothing
from this repository: it must load on its own in a folder next to the modeling file.
"""

import math

from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

# timm families whose constructor accepts `img_size`, `patch_size`, `global_pool` and
# `class_token` and whose position embeddings timm knows how to resample.
SUPPORTED_BACKBONE_MODULES = ("vision_transformer", "deit")
POOLING_MODES = ("avg", "cls")
# "vit": motion patches (the paper); the others read raw joint sequences, for the paper's ablation
# ("no motion patches") and for comparison with MotionBERT's DSTformer
MOTION_ENCODERS = ("vit", "joint_transformer", "dstformer")


def check_timm_backbone(backbone: str) -> None:
    """Raise a ValueError unless `backbone` names a timm ViT (a `.tag` suffix is allowed)."""
    import timm
    from timm.models import get_pretrained_cfg, model_entrypoint, split_model_name_tag

    if not isinstance(backbone, str) or not backbone:
        raise ValueError(f"motion_config.backbone must be a timm model name, got {backbone!r}")
    architecture, _tag = split_model_name_tag(backbone)
    if not timm.is_model(architecture):
        raise ValueError(
            f"motion_config.backbone={backbone!r} is not a timm model (architecture {architecture!r} unknown "
            f"to timm {timm.__version__}); use a ViT such as 'vit_base_patch16_224'"
        )
    module = model_entrypoint(architecture).__module__.rsplit(".", 1)[-1]
    if module not in SUPPORTED_BACKBONE_MODULES:
        raise ValueError(
            f"motion_config.backbone={backbone!r} is a timm '{module}' model; motion patches need a plain "
            f"Vision Transformer from timm modules {SUPPORTED_BACKBONE_MODULES}"
        )
    if _tag and get_pretrained_cfg(backbone) is None:
        raise ValueError(
            f"motion_config.backbone={backbone!r}: timm has no pretrained tag {_tag!r} for {architecture!r}"
        )


class MotionPatchesMotionConfig(PreTrainedConfig):
    r"""
    The motion tower: a timm Vision Transformer looking at a motion-patch "image".

    A motion becomes an image of height `num_frames` (time) and width `num_parts * patch_size`
    (each body part resampled to `patch_size` points), with xyz as the 3 colour channels, so the
    ViT sees a `(num_frames / patch_size) x num_parts` grid of patches.

    backbone (`str`, defaults to `"vit_base_patch16_224"`):
        timm model name (optionally with a pretrained tag). Weights are never downloaded when a
        model is built from this config.
    patch_size (`int`, defaults to 16):
        ViT patch size, which is also N, the number of points each body part is resampled to.
    num_frames (`int`, defaults to 224):
        Frames per motion window; a multiple of `patch_size`.
    num_parts (`int`, defaults to 5):
        Number of body parts (kinematic chains).
    pooling (`str`, defaults to `"avg"`):
        `"avg"` averages the patch tokens (the reference implementation), `"cls"` takes the class token.
    backbone_kwargs (`dict`, *optional*):
        Extra keyword arguments for `timm.create_model`, e.g. `{"embed_dim": 64, "depth": 2, "num_heads": 2}`
        for a tiny test model.
    drop_path_rate (`float`, defaults to 0.0):
        Stochastic depth rate of the ViT.
    encoder (`str`, defaults to `"vit"`):
        `"vit"` (motion patches), `"joint_transformer"` (a Transformer over frames of raw joints) or
        `"dstformer"` (a dual-stream spatio-temporal Transformer after MotionBERT). The last two take
        `(frames, joints, 3)` inputs, need `num_joints`, and take their sizes from `backbone_kwargs`
        (`hidden_size`/`dim`, `depth`, `num_heads`, `mlp_ratio`, `dropout`).
    num_joints (`int`, *optional*):
        Joints per frame, for the raw-joint encoders.
    """

    model_type = "motionpatches_motion"
    base_config_key = "motion_config"

    backbone: str = "vit_base_patch16_224"
    patch_size: int = 16
    num_frames: int = 224
    num_parts: int = 5
    pooling: str = "avg"
    backbone_kwargs: dict | None = None
    drop_path_rate: float = 0.0
    encoder: str = "vit"
    num_joints: int | None = None

    def __post_init__(self, **kwargs):
        self.backbone_kwargs = dict(self.backbone_kwargs or {})
        if self.encoder not in MOTION_ENCODERS:
            raise ValueError(f"motion_config.encoder={self.encoder!r}; expected one of {MOTION_ENCODERS}")
        if self.encoder == "vit":
            check_timm_backbone(self.backbone)
        elif not self.num_joints or self.num_joints < 1:
            raise ValueError(
                f"motion_config.encoder={self.encoder!r} reads raw joints and needs motion_config.num_joints "
                f"(got {self.num_joints})"
            )
        for name in ("patch_size", "num_frames", "num_parts"):
            if getattr(self, name) < 1:
                raise ValueError(f"motion_config.{name} must be a positive integer, got {getattr(self, name)}")
        if self.num_frames % self.patch_size:
            raise ValueError(
                f"motion_config.num_frames={self.num_frames} is not a multiple of "
                f"motion_config.patch_size={self.patch_size}"
            )
        if self.pooling not in POOLING_MODES:
            raise ValueError(f"motion_config.pooling={self.pooling!r}; expected one of {POOLING_MODES}")
        reserved = {
            "img_size",
            "patch_size",
            "num_classes",
            "global_pool",
            "pretrained",
            "in_chans",
            "num_joints",
            "num_frames",
        }
        clashing = sorted(reserved & set(self.backbone_kwargs))
        if clashing:
            raise ValueError(
                f"motion_config.backbone_kwargs sets {clashing}, which the motion config derives itself "
                f"(num_frames={self.num_frames}, num_parts={self.num_parts}, patch_size={self.patch_size}, "
                f"pooling={self.pooling!r}); set those fields instead"
            )
        super().__post_init__(**kwargs)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one person's `motion_values`: the patch image, or the joint sequence for raw encoders."""
        if self.encoder == "vit":
            return (3, *self.image_size)
        return (self.num_frames, self.num_joints, 3)

    @property
    def image_size(self) -> tuple[int, int]:
        """(height, width) of the motion-patch image: frames x (parts * points per part)."""
        return (self.num_frames, self.num_parts * self.patch_size)

    @property
    def grid_size(self) -> tuple[int, int]:
        """(rows, columns) of ViT patches: time windows x body parts."""
        return (self.num_frames // self.patch_size, self.num_parts)

    def timm_kwargs(self) -> dict:
        """Keyword arguments for `timm.create_model` that give the motion-patch geometry."""
        return dict(
            self.backbone_kwargs,
            img_size=self.image_size,
            patch_size=self.patch_size,
            in_chans=3,
            num_classes=0,
            global_pool="avg" if self.pooling == "avg" else "token",
            drop_path_rate=self.drop_path_rate,
        )


class MotionPatchesConfig(PreTrainedConfig):
    r"""
    Configuration of [`MotionTextModel`]: a motion tower, a text tower and two projection heads
    into a shared embedding space. The defaults reproduce the paper: ViT-B/16 over 224 frames x
    5 parts x 16 points, DistilBERT, 256-d embeddings, temperature 0.07.

    motion_config (`dict` or `MotionPatchesMotionConfig`, *optional*):
        The motion tower.
    text_config (`dict` or `PreTrainedConfig`, *optional*):
        Any transformers text-encoder config; a dict needs a `model_type`. Defaults to DistilBERT.
    projection_dim (`int`, defaults to 256):
        Size of the shared embedding space.
    projection_dropout (`float`, defaults to 0.1):
        Dropout inside each projection head.
    logit_scale_init_value (`float`, defaults to log(1/0.07)):
        Initial value of the learnable log inverse temperature.
    num_persons (`int`, defaults to 1):
        Persons per motion sample. With 2 (two-person interaction) the shared motion tower embeds each
        person and their features are concatenated before the motion projection head.

    Example:

    ```python
    >>> from motionpatches import MotionPatchesConfig, MotionTextModel
    >>> config = MotionPatchesConfig(
    ...     motion_config={"backbone": "vit_tiny_patch16_224", "backbone_kwargs": {"depth": 2}},
    ...     text_config={"model_type": "bert", "hidden_size": 32, "num_hidden_layers": 2,
    ...                  "num_attention_heads": 2, "intermediate_size": 64},
    ... )
    >>> model = MotionTextModel(config)
    ```
    """

    model_type = "motionpatches"
    sub_configs_defaults = {
        "motion_config": MotionPatchesMotionConfig,
        "text_config": SubConfigSpec(config_class=AutoConfig, model_type="distilbert"),
    }

    motion_config: dict | MotionPatchesMotionConfig | None = None
    text_config: dict | PreTrainedConfig | None = None
    projection_dim: int = 256
    projection_dropout: float = 0.1
    logit_scale_init_value: float = math.log(1 / 0.07)
    num_persons: int = 1

    def __post_init__(self, **kwargs):
        if isinstance(self.text_config, dict) and "model_type" not in self.text_config:
            raise ValueError(
                f"text_config given as a dict needs a 'model_type' (e.g. 'distilbert', 'bert'); got keys "
                f"{sorted(self.text_config)}"
            )
        super().__post_init__(**kwargs)
        if self.projection_dim < 1:
            raise ValueError(f"projection_dim must be a positive integer, got {self.projection_dim}")
        if self.num_persons < 1:
            raise ValueError(f"num_persons must be a positive integer, got {self.num_persons}")
        if not 0.0 <= self.projection_dropout < 1.0:
            raise ValueError(f"projection_dropout must be in [0, 1), got {self.projection_dropout}")
        if getattr(self.text_config, "hidden_size", None) is None:
            raise ValueError(
                f"text_config of model_type {self.text_config.model_type!r} has no hidden_size; "
                "use a transformers text encoder config (BERT, DistilBERT, RoBERTa, ...)"
            )


# saved folders carry this file and name it in config.json's auto_map (transformers' own mechanism)
MotionPatchesConfig.register_for_auto_class()

"""MotionTextModel: a timm ViT over motion patches and a transformers text encoder in one space.

Follows the installed transformers' CLIPModel API: `get_motion_features` / `get_text_features`
return `BaseModelOutputWithPooling` with the projected embedding in `pooler_output`, and
`forward` returns logits both ways, the normalised embeddings, the towers' outputs and,
with `return_loss=True`, the symmetric InfoNCE loss.

Shipped with saved checkpoints as remote code (see `write_model_code`).
"""

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import timm
import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoModel, PreTrainedModel
from transformers import initialization as init
from transformers.dynamic_module_utils import get_relative_imports
from transformers.modeling_outputs import BaseModelOutputWithPooling
from transformers.utils import ModelOutput

from .motion_encoders import DSTformer, JointSequenceTransformer, frame_mask_from_lengths, sinusoidal_position_encoding

try:  # a saved folder: every code file sits flat beside the weights
    from .configuration_motionpatches import MotionPatchesConfig, MotionPatchesMotionConfig
except ImportError:  # the installed package: the configuration is its own subpackage
    from motionpatches.configuration.configuration_motionpatches import MotionPatchesConfig, MotionPatchesMotionConfig


def motion_text_contrastive_loss(logits_per_text: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE: text i matches motion i; mean of the text->motion and motion->text cross-entropies."""
    targets = torch.arange(logits_per_text.shape[0], device=logits_per_text.device)
    text_loss = F.cross_entropy(logits_per_text, targets)
    motion_loss = F.cross_entropy(logits_per_text.t(), targets)
    return (text_loss + motion_loss) / 2.0


@dataclass
class MotionTextOutput(ModelOutput):
    r"""
    loss (`torch.FloatTensor` of shape `(1,)`, returned when `return_loss` is `True`):
        Symmetric contrastive loss.
    logits_per_motion (`torch.FloatTensor` of shape `(motion_batch_size, text_batch_size)`):
        Scaled cosine similarities between each motion and each text.
    logits_per_text (`torch.FloatTensor` of shape `(text_batch_size, motion_batch_size)`):
        The transpose of `logits_per_motion`.
    text_embeds (`torch.FloatTensor` of shape `(batch_size, projection_dim)`):
        L2-normalised projected text embeddings.
    motion_embeds (`torch.FloatTensor` of shape `(batch_size, projection_dim)`):
        L2-normalised projected motion embeddings.
    text_model_output (`BaseModelOutputWithPooling`):
        The text tower's output (`pooler_output` holds the projected, unnormalised embedding).
    motion_model_output (`BaseModelOutputWithPooling`):
        The motion tower's output (`pooler_output` holds the projected, unnormalised embedding).
    """

    loss: torch.FloatTensor | None = None
    logits_per_motion: torch.FloatTensor | None = None
    logits_per_text: torch.FloatTensor | None = None
    text_embeds: torch.FloatTensor | None = None
    motion_embeds: torch.FloatTensor | None = None
    text_model_output: BaseModelOutputWithPooling | None = None
    motion_model_output: BaseModelOutputWithPooling | None = None

    def to_tuple(self) -> tuple[Any]:
        return tuple(
            self[k] if k not in ("text_model_output", "motion_model_output") else getattr(self, k).to_tuple()
            for k in self.keys()
        )


def pair_tower_outputs(text_outputs, motion_outputs, logit_scale: torch.Tensor, return_loss) -> MotionTextOutput:
    """The two towers' outputs as the model's: normalised embeddings, logits both ways, the loss when asked. Shared
    with the ONNX Runtime model (motionpatches.onnx_inference), so both answer a forward call alike."""
    motion_embeds = F.normalize(motion_outputs.pooler_output, dim=-1)
    text_embeds = F.normalize(text_outputs.pooler_output, dim=-1)
    logits_per_text = (text_embeds @ motion_embeds.t()) * logit_scale.exp()
    return MotionTextOutput(
        loss=motion_text_contrastive_loss(logits_per_text) if return_loss else None,
        logits_per_motion=logits_per_text.t(),
        logits_per_text=logits_per_text,
        text_embeds=text_embeds,
        motion_embeds=motion_embeds,
        text_model_output=text_outputs,
        motion_model_output=motion_outputs,
    )


class MotionPatchesProjectionHead(nn.Module):
    """Linear -> GELU -> Linear -> Dropout, added to the first Linear's output, then LayerNorm.

    Parameter names match the paper's code (`projection`, `fc`, `layer_norm`) so its weights load 1:1.
    """

    def __init__(self, input_dim: int, projection_dim: int, dropout: float):
        super().__init__()
        self.projection = nn.Linear(input_dim, projection_dim)
        self.gelu = nn.GELU()
        self.fc = nn.Linear(projection_dim, projection_dim)
        self.dropout = nn.Dropout(dropout)
        self.layer_norm = nn.LayerNorm(projection_dim)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        projected = self.projection(hidden_states)
        hidden_states = self.dropout(self.fc(self.gelu(projected)))
        return self.layer_norm(hidden_states + projected)


RAW_JOINT_ENCODERS = {"joint_transformer": JointSequenceTransformer, "dstformer": DSTformer}


def create_motion_backbone(
    motion_config: MotionPatchesMotionConfig, pretrained: bool = False, weights_file: str | None = None
) -> nn.Module:
    """The motion tower of `motion_config`: usually the timm ViT, its patch grid set to (frames / N) x parts.

    With `pretrained=True` timm loads the backbone's weights -- from the Hub, or from `weights_file`
    (a local `.safetensors`/`.pth`) through `pretrained_cfg_overlay` -- and its checkpoint filter
    resamples the image position embeddings to the motion grid, exactly as the reference did.
    """
    if motion_config.encoder in RAW_JOINT_ENCODERS:
        if pretrained or weights_file is not None:
            raise ValueError(f"motion_config.encoder={motion_config.encoder!r} has no pretrained weights to load")
        encoder = RAW_JOINT_ENCODERS[motion_config.encoder]
        return encoder(motion_config.num_joints, motion_config.num_frames, **motion_config.backbone_kwargs)
    kwargs = motion_config.timm_kwargs()
    if weights_file is not None:
        if not os.path.isfile(weights_file):
            raise FileNotFoundError(f"motion backbone weights file not found: {weights_file}")
        pretrained = True
        kwargs["pretrained_cfg_overlay"] = dict(file=os.fspath(weights_file))
    return timm.create_model(motion_config.backbone, pretrained=pretrained, **kwargs)


class MotionTextPreTrainedModel(PreTrainedModel):
    config_class = MotionPatchesConfig
    base_model_prefix = "motion_text"
    main_input_name = "motion_values"
    supports_gradient_checkpointing = False
    _supports_sdpa = True

    def _init_weights(self, module):
        # The towers initialise themselves (timm in its constructor, transformers through the text
        # model's own `_init_weights`); only what this file adds is set here, with PyTorch's defaults.
        if isinstance(module, MotionPatchesProjectionHead):
            for linear in (module.projection, module.fc):
                init.kaiming_uniform_(linear.weight, a=5**0.5)
                bound = 1 / linear.in_features**0.5
                init.uniform_(linear.bias, -bound, bound)
            init.ones_(module.layer_norm.weight)
            init.zeros_(module.layer_norm.bias)
        elif isinstance(module, MotionTextModel):
            init.constant_(module.logit_scale, self.config.logit_scale_init_value)
        elif isinstance(module, JointSequenceTransformer):
            # a fixed buffer, not saved: rebuilt here because from_pretrained creates modules without data
            init.copy_(module.pos_encoding, sinusoidal_position_encoding(module.num_frames, module.num_features))


class MotionTextModel(MotionTextPreTrainedModel):
    r"""
    Motion Patches (Yu et al., CVPR 2024): motions and sentences embedded in one space.

    motion_model (`nn.Module`, *optional*):
        A ready motion backbone (e.g. a pretrained timm ViT); built from `config.motion_config` otherwise.
    text_model (`PreTrainedModel`, *optional*):
        A ready text encoder; built from `config.text_config` otherwise.
    """

    def __init__(
        self,
        config: MotionPatchesConfig,
        motion_model: nn.Module | None = None,
        text_model: PreTrainedModel | None = None,
    ):
        super().__init__(config)
        self.motion_model = motion_model if motion_model is not None else create_motion_backbone(config.motion_config)
        if text_model is None:
            text_model = AutoModel.from_config(config.text_config)
        else:
            # one text config for both: the pretrained model's object carries the attention backend it was loaded with
            config.text_config._attn_implementation = text_model.config._attn_implementation
            text_model.config = config.text_config
        # the first token's state is the text feature; a pooler (BERT's tanh layer) would only hold
        # weights that get no gradient, which multi-process training refuses
        if getattr(text_model, "pooler", None) is not None:
            text_model.pooler = None
        self.text_model = text_model
        self.motion_embed_dim = self.motion_model.num_features
        self.text_embed_dim = config.text_config.hidden_size
        self.motion_projection = MotionPatchesProjectionHead(
            config.num_persons * self.motion_embed_dim, config.projection_dim, config.projection_dropout
        )
        self.text_projection = MotionPatchesProjectionHead(
            self.text_embed_dim, config.projection_dim, config.projection_dropout
        )
        self.logit_scale = nn.Parameter(torch.tensor(config.logit_scale_init_value))
        self.post_init()

    # ----------------------------------------------------------------------------- construction
    @classmethod
    def from_motion_text_pretrained(
        cls,
        motion_backbone: str = "vit_base_patch16_224.augreg_in21k",
        text_model_name_or_path: str = "distilbert-base-uncased",
        *,
        motion_pretrained: bool = True,
        motion_weights_file: str | None = None,
        motion_config: dict | None = None,
        text_model_kwargs: dict | None = None,
        **config_kwargs,
    ) -> "MotionTextModel":
        """Start from pretrained towers, like `VisionTextDualEncoderModel.from_vision_text_pretrained`.

        motion_backbone: a timm ViT name with a pretrained tag (weights from the Hub), or any timm ViT
            name together with `motion_weights_file`, a local `.safetensors`/`.pth` state dict of that
            architecture. The image position embeddings are resampled to the motion-patch grid.
        text_model_name_or_path: a transformers model on the Hub or a local folder.
        motion_pretrained: `False` keeps the motion tower random (training it from scratch), unless
            `motion_weights_file` is given.
        motion_config: other `MotionPatchesMotionConfig` fields (`num_frames`, `pooling`, `backbone_kwargs`, ...).
        config_kwargs: other `MotionPatchesConfig` fields (`projection_dim`, ...).
        """
        if motion_weights_file is not None and not os.path.isfile(motion_weights_file):
            raise FileNotFoundError(f"motion backbone weights file not found: {motion_weights_file}")
        motion_cfg = MotionPatchesMotionConfig(backbone=motion_backbone, **(motion_config or {}))
        text_model = AutoModel.from_pretrained(text_model_name_or_path, **(text_model_kwargs or {}))
        config = MotionPatchesConfig(motion_config=motion_cfg, text_config=text_model.config.to_dict(), **config_kwargs)
        motion_model = create_motion_backbone(
            motion_cfg, pretrained=motion_pretrained, weights_file=motion_weights_file
        )
        return cls(config, motion_model=motion_model, text_model=text_model)

    # ----------------------------------------------------------------------------- features
    def _check_motion_values(self, motion_values: torch.Tensor) -> None:
        persons = () if self.config.num_persons == 1 else (self.config.num_persons,)
        expected = (*persons, *self.config.motion_config.input_shape)
        if tuple(motion_values.shape[1:]) != expected:
            raise ValueError(
                f"motion_values has shape {tuple(motion_values.shape)}; this model expects (batch, {', '.join(map(str, expected))}) "
                "-- prepare motions with the model's MotionPatchProcessor"
            )

    def get_motion_features(
        self, motion_values: torch.Tensor, motion_lengths: torch.Tensor | None = None, **kwargs
    ) -> BaseModelOutputWithPooling:
        """The motion tower: patch tokens in `last_hidden_state`, projected embedding in `pooler_output`.

        With several persons per sample, `motion_values` has a person axis after the batch: every person
        goes through the same tower, the pooled features are concatenated (person order matters) and the
        tokens are concatenated along the sequence. `motion_lengths` (real frames per sample) masks the
        padding for the raw-joint encoders; the ViT sees padding as part of the image, as in the paper.
        """
        self._check_motion_values(motion_values)
        batch = motion_values.shape[0]
        per_person = len(self.config.motion_config.input_shape)
        inputs = motion_values.reshape(-1, *motion_values.shape[-per_person:]).to(self.logit_scale.dtype)
        if self.config.motion_config.encoder == "vit":
            tokens = self.motion_model.forward_features(inputs)
            pooled = self.motion_model.forward_head(tokens, pre_logits=True)
        else:
            frame_mask = None
            if motion_lengths is not None:
                lengths = motion_lengths.repeat_interleave(self.config.num_persons)
                frame_mask = frame_mask_from_lengths(lengths, inputs.shape[1]).to(inputs.device)
            tokens = self.motion_model.forward_features(inputs, frame_mask=frame_mask)
            pooled = self.motion_model.forward_head(tokens, pre_logits=True, frame_mask=frame_mask)
        pooled = pooled.reshape(batch, -1)
        tokens = tokens.reshape(batch, -1, tokens.shape[-1])
        return BaseModelOutputWithPooling(last_hidden_state=tokens, pooler_output=self.motion_projection(pooled))

    def get_text_features(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPooling:
        """The text tower: token states in `last_hidden_state`, projected first-token embedding in `pooler_output`."""
        # DistilBERT-like encoders take no token_type_ids/position_ids: pass only what was given
        optional = {"token_type_ids": token_type_ids, "position_ids": position_ids}
        optional = {name: value for name, value in optional.items() if value is not None}
        text_outputs = self.text_model(
            input_ids=input_ids, attention_mask=attention_mask, return_dict=True, **optional, **kwargs
        )
        first_token = text_outputs.last_hidden_state[:, 0]
        return BaseModelOutputWithPooling(
            last_hidden_state=text_outputs.last_hidden_state,
            pooler_output=self.text_projection(first_token),
            hidden_states=text_outputs.hidden_states,
            attentions=text_outputs.attentions,
        )

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        motion_values: torch.FloatTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        motion_lengths: torch.Tensor | None = None,
        return_loss: bool | None = None,
        **kwargs,
    ) -> MotionTextOutput:
        if input_ids is None or motion_values is None:
            raise ValueError(
                "forward needs both input_ids and motion_values; use get_text_features/get_motion_features for one tower"
            )
        motion_outputs = self.get_motion_features(motion_values=motion_values, motion_lengths=motion_lengths)
        text_outputs = self.get_text_features(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            position_ids=position_ids,
            **kwargs,
        )
        return pair_tower_outputs(text_outputs, motion_outputs, self.logit_scale, return_loss)

    # ----------------------------------------------------------------------------- saving
    def save_pretrained(self, save_directory, *args, push_to_hub: bool = False, **kwargs):
        """`PreTrainedModel.save_pretrained`, plus this file's code for `trust_remote_code` (see `write_model_code`)."""
        self.config.auto_map = {
            **(getattr(self.config, "auto_map", None) or {}),
            "AutoModel": f"{Path(__file__).stem}.{type(self).__name__}",
        }
        hub_kwargs = {}
        if push_to_hub:
            hub_kwargs = {k: kwargs.pop(k) for k in ("repo_id", "commit_message", "private", "token") if k in kwargs}
        result = super().save_pretrained(save_directory, *args, **kwargs)
        write_model_code(save_directory)
        if push_to_hub:
            repo_id = hub_kwargs.pop("repo_id", os.path.basename(os.path.normpath(save_directory)))
            self.push_to_hub(repo_id, **hub_kwargs)
        return result


def write_model_code(save_directory) -> list[str]:
    """Copy this file and its same-folder imports into `save_directory`; return the names written.

    transformers writes the code of a class registered with `register_for_auto_class` and of the
    files it imports relatively. That covers the configuration and the processor (each registers
    itself in its own module), but not this model: in the installed package its configuration sits
    in a sibling subpackage, so the `.configuration_motionpatches` import above only resolves in a
    saved folder, and transformers would fail copying it from here. This copies what transformers
    would, minus that file, which the configuration's own registration writes.
    """
    folder, written = Path(__file__).parent, []
    pending = [Path(__file__).stem]
    while pending:
        path = folder / f"{pending.pop()}.py"
        if path.name in written or not path.is_file():
            continue
        shutil.copyfile(path, Path(save_directory) / path.name)
        written.append(path.name)
        pending += get_relative_imports(path)
    return written

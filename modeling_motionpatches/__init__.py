"""motionpatches: Motion Patches motion-language models, Hugging Face style.

    from modeling_motionpatches import MotionPatchesConfig, MotionPatchProcessor, MotionTextModel

Importing this package registers the classes with transformers' Auto classes, so saved folders
load with `AutoModel.from_pretrained(path)` without `trust_remote_code`; the same folders also
carry their code and load with `trust_remote_code=True` where this package is not installed.
"""

from transformers import AutoConfig, AutoFeatureExtractor, AutoModel, AutoProcessor

from configuration import MotionPatchesConfig, MotionPatchesMotionConfig
from processors import (
    CANONICAL_PART_ORDER,
    SKELETON_PRESETS,
    MotionPatchFeatureExtractor,
    MotionPatchProcessor,
    Skeleton,
)

from .modeling_motionpatches import (
    MotionPatchesProjectionHead,
    MotionTextModel,
    MotionTextOutput,
    motion_text_contrastive_loss,
)

AutoConfig.register(MotionPatchesConfig.model_type, MotionPatchesConfig, exist_ok=True)
AutoConfig.register(MotionPatchesMotionConfig.model_type, MotionPatchesMotionConfig, exist_ok=True)
AutoModel.register(MotionPatchesConfig, MotionTextModel, exist_ok=True)
AutoFeatureExtractor.register(MotionPatchesConfig, MotionPatchFeatureExtractor, exist_ok=True)
AutoProcessor.register(MotionPatchesConfig, MotionPatchProcessor, exist_ok=True)
# processors are saved by transformers' own mechanism (their files share one folder)
MotionPatchFeatureExtractor.register_for_auto_class("AutoFeatureExtractor")
MotionPatchProcessor.register_for_auto_class("AutoProcessor")

__all__ = [
    "CANONICAL_PART_ORDER",
    "SKELETON_PRESETS",
    "MotionPatchFeatureExtractor",
    "MotionPatchProcessor",
    "MotionPatchesConfig",
    "MotionPatchesMotionConfig",
    "MotionPatchesProjectionHead",
    "MotionTextModel",
    "MotionTextOutput",
    "Skeleton",
    "motion_text_contrastive_loss",
]

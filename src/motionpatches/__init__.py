"""motionpatches: Motion Patches motion-language models (Yu et al., CVPR 2024), Hugging Face style.

    from motionpatches import MotionPatchesConfig, MotionPatchProcessor, MotionTextModel

Importing the package registers its classes with transformers' Auto classes, so a saved folder loads
with `AutoModel.from_pretrained(path)` and `AutoProcessor.from_pretrained(path)`, no remote code needed.
The same folder also carries the model's code and loads with `trust_remote_code=True` where this
package is not installed.

Subpackages: `configuration`, `processors` and `modeling_motionpatches` are the model as it is shipped
with a checkpoint; `training` trains and evaluates it; the modules here use a model (`cli`,
`retrieval`, `zero_shot`, `generation_metrics`, `moments`, `visualization`) or build a tiny one offline (`tiny`).
"""

from transformers import AutoConfig, AutoFeatureExtractor, AutoModel, AutoProcessor

from .configuration import MotionPatchesConfig, MotionPatchesMotionConfig
from .modeling_motionpatches import (
    MotionPatchesProjectionHead,
    MotionTextModel,
    MotionTextOutput,
    motion_text_contrastive_loss,
)
from .processors import (
    CANONICAL_PART_ORDER,
    SKELETON_PRESETS,
    MotionFileError,
    MotionFileOptions,
    MotionPatchFeatureExtractor,
    MotionPatchProcessor,
    Skeleton,
    load_bvh,
    read_motion_file,
    resolve_skeleton,
    skeleton_from_bvh,
)

__version__ = "0.2.0"

AutoConfig.register(MotionPatchesConfig.model_type, MotionPatchesConfig, exist_ok=True)
AutoConfig.register(MotionPatchesMotionConfig.model_type, MotionPatchesMotionConfig, exist_ok=True)
AutoModel.register(MotionPatchesConfig, MotionTextModel, exist_ok=True)
AutoFeatureExtractor.register(MotionPatchesConfig, MotionPatchFeatureExtractor, exist_ok=True)
AutoProcessor.register(MotionPatchesConfig, MotionPatchProcessor, exist_ok=True)

__all__ = [
    "CANONICAL_PART_ORDER",
    "SKELETON_PRESETS",
    "MotionFileError",
    "MotionFileOptions",
    "MotionPatchFeatureExtractor",
    "MotionPatchProcessor",
    "MotionPatchesConfig",
    "MotionPatchesMotionConfig",
    "MotionPatchesProjectionHead",
    "MotionTextModel",
    "MotionTextOutput",
    "Skeleton",
    "load_bvh",
    "motion_text_contrastive_loss",
    "read_motion_file",
    "resolve_skeleton",
    "skeleton_from_bvh",
]

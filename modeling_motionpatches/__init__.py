from .modeling_motionpatches import (
    MotionPatchesProjectionHead,
    MotionTextModel,
    MotionTextOutput,
    create_motion_backbone,
    motion_text_contrastive_loss,
    pair_tower_outputs,
)

__all__ = [
    "MotionPatchesProjectionHead",
    "MotionTextModel",
    "MotionTextOutput",
    "create_motion_backbone",
    "motion_text_contrastive_loss",
    "pair_tower_outputs",
]

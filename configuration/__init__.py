from .configuration_motionpatches import MotionPatchesConfig, MotionPatchesMotionConfig

__all__ = ["MotionPatchesConfig", "MotionPatchesMotionConfig"]

from .feature_extraction_motionpatches import MotionPatchFeatureExtractor
from .processing_motionpatches import MotionPatchProcessor
from .skeletons import CANONICAL_PART_ORDER, SKELETON_PRESETS, Skeleton, resolve_skeleton

__all__ = [
    "CANONICAL_PART_ORDER",
    "SKELETON_PRESETS",
    "MotionPatchFeatureExtractor",
    "MotionPatchProcessor",
    "Skeleton",
    "resolve_skeleton",
]

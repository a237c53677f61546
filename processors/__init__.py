from .bvh import BvhMotion, load_bvh
from .feature_extraction_motionpatches import MotionPatchFeatureExtractor
from .processing_motionpatches import MotionPatchProcessor
from .rig_chains import chains_from_joint_names, skeleton_from_bvh
from .skeletons import CANONICAL_PART_ORDER, SKELETON_PRESETS, Skeleton, resolve_skeleton

__all__ = [
    "CANONICAL_PART_ORDER",
    "SKELETON_PRESETS",
    "BvhMotion",
    "MotionPatchFeatureExtractor",
    "MotionPatchProcessor",
    "Skeleton",
    "chains_from_joint_names",
    "load_bvh",
    "resolve_skeleton",
    "skeleton_from_bvh",
]

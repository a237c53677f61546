from .bvh import BvhMotion, load_bvh
from .feature_extraction_motionpatches import MotionPatchFeatureExtractor
from .motion_files import MotionFileError
from .motion_readers import MotionFileOptions, read_motion_file
from .processing_motionpatches import MotionPatchProcessor
from .rig_chains import chains_from_joint_names, skeleton_from_bvh
from .skeletons import CANONICAL_PART_ORDER, SKELETON_PRESETS, Skeleton, resolve_skeleton

__all__ = [
    "CANONICAL_PART_ORDER",
    "SKELETON_PRESETS",
    "BvhMotion",
    "MotionFileError",
    "MotionFileOptions",
    "MotionPatchFeatureExtractor",
    "MotionPatchProcessor",
    "Skeleton",
    "chains_from_joint_names",
    "load_bvh",
    "read_motion_file",
    "resolve_skeleton",
    "skeleton_from_bvh",
]

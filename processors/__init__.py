from .bvh import BvhMotion, load_bvh
from .feature_extraction_motionpatches import MotionPatchFeatureExtractor
from .mirroring import mirror_caption, mirror_motion, mirror_permutation, side_words
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
    "mirror_caption",
    "mirror_motion",
    "mirror_permutation",
    "read_motion_file",
    "resolve_skeleton",
    "side_words",
    "skeleton_from_bvh",
]

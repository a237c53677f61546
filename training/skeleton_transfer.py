"""Using a saved model on motions of another skeleton (cross-skeleton evaluation and fine-tuning)."""

import logging

from motionpatches.processors.skeletons import resolve_skeleton

logger = logging.getLogger(__name__)


def processor_for_dataset(processor, skeleton, data, stats_split: str = "train"):
    """`processor` itself when the dataset has its skeleton; otherwise a copy whose feature extractor uses the
    dataset's skeleton (same part columns, frames and fps) with per-joint statistics fitted on `stats_split`
    (or on the first split available)."""
    skeleton = resolve_skeleton(skeleton)
    current = processor.feature_extractor
    if skeleton.joint_names == current.skeleton.joint_names and skeleton.chains == current.skeleton.chains:
        return processor
    split = stats_split if stats_split in data else next(iter(data))
    feature_extractor = current.for_skeleton(skeleton)
    feature_extractor.fit_statistics(data[split].with_format("numpy")["motion"])
    logger.warning(
        f"the model's processor uses skeleton {current.skeleton.name!r}; the data use {skeleton.name!r}: "
        f"motion patches are built with the data's chains in columns {feature_extractor.part_names} and "
        f"statistics of its {split} split"
    )
    return type(processor)(feature_extractor=feature_extractor, tokenizer=processor.tokenizer)

"""`MotionPatchProcessor`: motion feature extractor + tokenizer behind one call, like CLIPProcessor.

Shipped with saved checkpoints as remote code: imports only siblings from this folder.
"""

from transformers.feature_extraction_utils import BatchFeature
from transformers.processing_utils import ProcessorMixin

from .feature_extraction_motionpatches import MotionPatchFeatureExtractor


class MotionPatchProcessor(ProcessorMixin):
    r"""
    Prepares sentences and motions for [`MotionTextModel`].

    feature_extractor (`MotionPatchFeatureExtractor`, *optional*):
        Built from `preprocessing` keyword arguments (e.g. `skeleton="kit"`, `mean=..., std=...`) when omitted.
    tokenizer (`PreTrainedTokenizerBase`):
        The text tower's tokenizer.

    Example:

    ```python
    >>> processor = MotionPatchProcessor(tokenizer=tokenizer, skeleton="humanml3d")
    >>> inputs = processor(text=["a person waves"], motions=[motion], return_tensors="pt")
    >>> sorted(inputs)  # motion_values: (1, 3, 224, 80)
    ['attention_mask', 'input_ids', 'motion_values']
    ```
    """

    def __init__(self, feature_extractor=None, tokenizer=None, **preprocessing):
        if feature_extractor is None:
            feature_extractor = MotionPatchFeatureExtractor(**preprocessing)
        elif preprocessing:
            raise TypeError(
                f"preprocessing options {sorted(preprocessing)} are only used when no feature_extractor is given"
            )
        if tokenizer is None:
            raise ValueError(
                "MotionPatchProcessor needs the text tower's tokenizer: MotionPatchProcessor(tokenizer=...)"
            )
        super().__init__(feature_extractor, tokenizer)

    def __call__(
        self,
        text=None,
        motions=None,
        return_tensors=None,
        motion_fps=None,
        crop=None,
        rng=None,
        return_motion_lengths: bool = False,
        file_options=None,
        **text_kwargs,
    ) -> BatchFeature:
        """Tokenize `text` (padded and truncated by default) and/or turn `motions` into `motion_values`.

        Motion options (`motion_fps`, `crop`, `rng`, `return_motion_lengths`, `file_options`, a
        `MotionFileOptions` for motion files) are those of [`MotionPatchFeatureExtractor.__call__`]; other
        keyword arguments go to the tokenizer. File options are per call and never saved with the processor:
        they describe the user's files and machine (e.g. where the body models are).
        """
        if text is None and motions is None:
            raise ValueError("MotionPatchProcessor needs `text`, `motions` or both")
        data = {}
        if text is not None:
            text_kwargs.setdefault("padding", True)
            text_kwargs.setdefault("truncation", True)
            data.update(self.tokenizer(text, return_tensors=return_tensors, **text_kwargs))
        if motions is not None:
            features = self.feature_extractor(
                motions,
                motion_fps=motion_fps,
                crop=crop,
                rng=rng,
                return_motion_lengths=return_motion_lengths,
                return_tensors=return_tensors,
                file_options=file_options,
            )
            data.update(features)
        return BatchFeature(data=data, tensor_type=return_tensors)

    def batch_decode(self, *args, **kwargs):
        return self.tokenizer.batch_decode(*args, **kwargs)

    def decode(self, *args, **kwargs):
        return self.tokenizer.decode(*args, **kwargs)

    @property
    def model_input_names(self):
        return list(dict.fromkeys(self.tokenizer.model_input_names + self.feature_extractor.model_input_names))


# saved folders carry this file and its same-folder imports (transformers' own mechanism)
MotionPatchProcessor.register_for_auto_class("AutoProcessor")

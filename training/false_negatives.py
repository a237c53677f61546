"""False negatives in a contrastive batch: pairs whose captions say the same thing.

Symmetric InfoNCE treats every off-diagonal pair of a batch as a negative. On motion-text data many
captions in a batch mean the same ("a person walks forward" several times in HumanML3D, every take of
one action in studio mocap), and pushing those motions apart from each other's text teaches the model
to separate what it should not. As TMR does (Petrovich et al., "TMR: Text-to-Motion Retrieval Using
Contrastive 3D Human Motion Synthesis", ICCV 2023, section 3.3: negatives whose sentence embeddings are
too similar are filtered out), such pairs are *masked out of the negatives*: their logits become -inf in
both directions, so they get neither a negative gradient nor a share of the softmax.

Masking rather than soft targets: a soft target spreads the positive mass over the pairs the text model
finds similar, which imports that text model's notion of similarity into the motion space. Sentence
encoders rate "waves the left hand" and "waves the right hand" as near-identical, exactly the distinction
a motion model has to learn, so a soft target would teach left/right confusion. For the same reason two
captions that name different sides (`side_words`) are never false negatives of each other, however
similar their embeddings.

Modes: `identical` (the same caption after case, space and end-punctuation normalisation) and `similar`
(identical, or MiniLM sentence embeddings with cosine above a threshold; the embeddings are computed once
per set of captions and cached on disk).
"""

import hashlib
import logging
import os
import re
from collections.abc import Iterable, Sequence

import numpy as np
import torch
from safetensors.numpy import load_file, save_file

from motionpatches.atomic import atomic_path
from motionpatches.processors.mirroring import side_words

logger = logging.getLogger(__name__)

FALSE_NEGATIVE_MODES = ("none", "identical", "similar")
# what the collator adds to a training batch for the loss; the model's forward never sees these
PAIR_KEYS = ("caption_keys", "side_keys", "caption_embeds")
_SPACES = re.compile(r"\s+")


def normalise_caption(caption: str) -> str:
    """Lower case, single spaces, no surrounding space or final full stop: how two captions count as identical."""
    return _SPACES.sub(" ", caption.lower()).strip().rstrip(".").strip()


def _key(text: str) -> int:
    # a stable 63-bit id (Python's hash() changes with PYTHONHASHSEED, so processes would disagree)
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little") >> 1


def caption_key(caption: str) -> int:
    return _key(normalise_caption(caption))


def side_key(caption: str) -> int:
    """Equal for captions naming the same sides in the same order (or none)."""
    return _key(" ".join(side_words(caption)))


def false_negative_mask(
    caption_keys: torch.Tensor,
    side_keys: torch.Tensor,
    caption_embeds: torch.Tensor | None = None,
    threshold: float | None = None,
) -> torch.Tensor:
    """`(N, N)` bool: True where pair (i, j), i != j, is a false negative -- the same caption, or (with embeddings
    and a threshold) captions whose cosine exceeds `threshold` -- and both name the same sides."""
    same = caption_keys[:, None] == caption_keys[None, :]
    if caption_embeds is not None and threshold is not None:
        same = same | (caption_embeds @ caption_embeds.t() > threshold)
    same = same & (side_keys[:, None] == side_keys[None, :])
    same.fill_diagonal_(False)
    return same


class CaptionEmbeddings:
    """Normalised sentence embeddings of a fixed set of captions, looked up by caption text."""

    def __init__(self, captions: Sequence[str], embeddings: np.ndarray):
        if len(captions) != len(embeddings):
            raise ValueError(f"{len(captions)} captions but {len(embeddings)} embeddings")
        self.row = {caption: i for i, caption in enumerate(captions)}
        self.embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)

    def __call__(self, captions: Iterable[str]) -> np.ndarray:
        rows = []
        for caption in captions:
            if caption not in self.row:
                raise KeyError(f"caption {caption!r} has no precomputed sentence embedding")
            rows.append(self.row[caption])
        return self.embeddings[rows]


def default_cache_dir() -> str:
    hf_home = os.environ.get("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "huggingface")
    return os.path.join(hf_home, "motionpatches", "caption_embeddings")


def caption_embeddings(
    captions: Iterable[str], encoder: str, cache_dir: str | None = None, batch_size: int = 256
) -> CaptionEmbeddings:
    """Embeddings of the distinct `captions` with the sentence encoder `encoder` (a local folder), read from the
    cache when this encoder has embedded exactly these captions before, else computed and cached."""
    from motionpatches.retrieval import sentence_embeddings

    distinct = sorted(set(captions))
    fingerprint = hashlib.sha256()
    fingerprint.update(os.path.abspath(encoder).encode("utf-8"))
    for caption in distinct:
        fingerprint.update(caption.encode("utf-8") + b"\0")
    path = os.path.join(cache_dir or default_cache_dir(), f"{fingerprint.hexdigest()[:32]}.safetensors")
    if os.path.isfile(path):
        try:
            return CaptionEmbeddings(distinct, load_file(path)["embeddings"])
        except (OSError, ValueError, KeyError) as err:
            logger.warning(f"ignoring the unreadable caption-embedding cache {path} ({err}); computing again")
    logger.info(f"embedding {len(distinct)} distinct captions with {encoder} (cached in {path})")
    embeddings = sentence_embeddings(distinct, encoder, batch_size=batch_size)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with atomic_path(path) as staging:
        save_file({"embeddings": np.ascontiguousarray(embeddings, dtype=np.float32)}, staging)
    return CaptionEmbeddings(distinct, embeddings)

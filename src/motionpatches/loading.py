"""Loading a saved model and its processor for the command line and the scripts, with errors that say what to do.

Our own folders need no remote code: importing `motionpatches` registers their classes with the Auto
classes. Code saved in a folder (`auto_map`) runs only when the caller asks with `trust_remote_code=True`,
as in transformers' own example scripts; without it, a folder that needs its own code is refused.
"""

import os

from safetensors import SafetensorError, safe_open
from transformers import AutoModel, AutoProcessor

# the flag lives with the other shared arguments; importable from here as before
from motionpatches.arguments import TRUST_REMOTE_CODE_HELP, add_trust_remote_code_argument  # noqa: F401

SAVED_BY = "a folder written by save_pretrained (training/train.py --output_dir, the converter's --output_dir)"


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


def check_local_folder(folder: str) -> None:
    """Refuse a folder that cannot hold a saved model before transformers gives a message naming neither file nor fix.

    The safetensors headers are read here (cheap: no tensor data) because a truncated file fails with
    only "incomplete metadata" once transformers opens it.
    """
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"model folder not found: {folder}; give {SAVED_BY}, or a Hub id")
    if not os.path.isfile(os.path.join(folder, "config.json")):
        raise FileNotFoundError(f"{folder} has no config.json, so it is not a saved model; give {SAVED_BY}")
    for name in sorted(os.listdir(folder)):
        if name.endswith(".safetensors"):
            check_safetensors_file(os.path.join(folder, name))


def check_safetensors_file(path: str) -> None:
    try:
        with safe_open(path, framework="pt"):
            pass
    except (SafetensorError, OSError) as err:
        raise ValueError(
            f"cannot read the weights in {path} ({err}): the file is truncated or corrupt; copy or download it "
            "again, or save the model again"
        ) from None


def load_model_and_processor(name_or_path, *, trust_remote_code: bool = False, model_only: bool = False):
    """`(model in eval mode, processor)` from a saved folder or a Hub id (`processor` is None with `model_only`)."""
    name_or_path = os.fspath(name_or_path)
    is_folder = os.path.isdir(name_or_path)
    if is_folder or looks_like_a_path(name_or_path):
        check_local_folder(name_or_path)
    try:
        model = AutoModel.from_pretrained(name_or_path, trust_remote_code=trust_remote_code).eval()
        processor = (
            None if model_only else AutoProcessor.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
        )
    except ValueError as err:
        if "trust_remote_code" not in str(err):
            raise ValueError(f"cannot load the model in {name_or_path}: {err}") from err
        raise ValueError(
            f"{name_or_path} asks to run code saved with it (an auto_map in its config files) and is not a model this "
            "package knows; nothing was run. Pass --trust_remote_code (trust_remote_code=True) if you have read "
            "that code and trust it."
        ) from None
    except (OSError, SafetensorError) as err:
        if not is_folder:
            raise FileNotFoundError(
                f"{name_or_path}: no such model folder here, and no Hub model of that id could be loaded "
                f"({first_line(err)}); give {SAVED_BY}, or a Hub id while online"
            ) from err
        raise ValueError(f"cannot load the model in {name_or_path}: {err}") from err
    return model, processor


def load_or_exit(name_or_path, *, trust_remote_code: bool = False, model_only: bool = False):
    """`load_model_and_processor` for scripts: a refusal ends the script with its message, not a traceback."""
    try:
        return load_model_and_processor(name_or_path, trust_remote_code=trust_remote_code, model_only=model_only)
    except (OSError, ValueError) as err:
        raise SystemExit(f"error: {err}") from None


def first_line(err: BaseException) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__

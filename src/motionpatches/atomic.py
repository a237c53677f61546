"""Writing outputs so that a crash or a kill leaves the previous version, never a half-written file.

A file is written under a temporary name in its own folder and renamed over the target (`os.replace` is
atomic on one file system). A saved model is a folder of files: `publish_folder` moves a complete staging
folder's files into place one rename at a time, the weights last, so every file present is whole.
"""

import contextlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator

# renamed into place last: a reader that finds the weights finds the configuration they belong to
LAST_FILES = ("model.safetensors", "model.safetensors.index.json")


@contextlib.contextmanager
def atomic_path(path) -> Iterator[str]:
    """Yield a temporary path beside `path` (same suffix, so numpy and friends add none) to write to; it
    replaces `path` when the block ends without an error and is removed otherwise."""
    path = os.fspath(path)
    folder, name = os.path.split(os.path.abspath(path))
    stem, suffix = os.path.splitext(name)
    temporary = os.path.join(folder, f".{stem}.{secrets.token_hex(6)}.partial{suffix}")
    # created as open() creates files (mode 0666 less the umask): mkstemp's 0600 would make a saved card or
    # metrics file unreadable to the other users who could read the file it replaces
    os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        yield temporary
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)
        raise


def write_text_atomically(path, text: str) -> None:
    with atomic_path(path) as temporary, open(temporary, "w", encoding="utf-8") as f:
        f.write(text)


@contextlib.contextmanager
def staged_folder(target, staging_parent=None) -> Iterator[str]:
    """Yield an empty staging folder beside `target` (or in `staging_parent`, which must be on the same file
    system, e.g. `target` itself when its parent may not be writable); when the block succeeds its files are
    published into `target` (created if needed) with `publish_folder`. On an error the staging folder is removed."""
    target = os.path.abspath(os.fspath(target))
    parent = os.path.abspath(os.fspath(staging_parent)) if staging_parent is not None else os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(target)}.", suffix=".partial", dir=parent)
    try:
        yield staging
        publish_folder(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def publish_folder(staging: str, target: str) -> None:
    """Move every file of `staging` into `target`, each by an atomic rename, the weights last."""
    os.makedirs(target, exist_ok=True)
    names = sorted(os.listdir(staging), key=lambda name: (name in LAST_FILES, name))
    for name in names:
        source = os.path.join(staging, name)
        if os.path.isdir(source):
            raise ValueError(f"{staging}: subfolder {name!r}; a saved model folder is flat")
        os.replace(source, os.path.join(target, name))

"""Loads a saved folder with trust_remote_code in an interpreter that cannot import this repository,
embeds the given texts and a motion, and writes the results: run by the tests in a fresh process.

    python -I tests/clean_load.py FOLDER MOTION.npy OUT.npz '["text", ...]'
"""

import importlib.abc
import json
import sys

import numpy as np
import torch


class RefuseRepo(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in {"motionpatches", "modeling_motionpatches", "configuration", "processors", "training"}:
            raise ModuleNotFoundError(name)


sys.meta_path.insert(0, RefuseRepo())
try:
    import motionpatches  # noqa: F401
except ImportError:
    pass
else:
    raise SystemExit("the repository is importable: the test would prove nothing")

from transformers import AutoConfig, AutoModel, AutoProcessor  # noqa: E402  (after the guard above)

folder, motion_path, out_path, texts = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
config = AutoConfig.from_pretrained(folder, trust_remote_code=True)
model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
motion = np.load(motion_path)
inputs = processor(text=texts, motions=[motion, motion[::-1].copy()], return_tensors="pt")
with torch.no_grad():
    out = model(**inputs)
np.savez(
    out_path,
    motion=out.motion_embeds.numpy(),
    text=out.text_embeds.numpy(),
    motion_values=inputs["motion_values"].numpy(),
    classes=np.array([type(config).__name__, type(model).__module__]),
)

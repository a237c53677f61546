"""`MotionTextModel`'s inference API over the ONNX files of `motionpatches export onnx`, run by ONNX Runtime on CPU.

    from motionpatches.onnx_inference import OnnxMotionTextModel, load_onnx_model_and_processor
    model, processor = load_onnx_model_and_processor("outputs/motionpatches-demo-onnx")   # int8=True: the int8 towers
    inputs = processor(text=["a person waves"], motions=[motion], return_tensors="pt")
    model.get_motion_features(motion_values=inputs["motion_values"]).pooler_output      # as MotionTextModel's
    index = MotionIndex.load("outputs/demo-index", model=model, processor=processor)   # the index searches with it

`get_motion_features` / `get_text_features` return a `BaseModelOutputWithPooling` whose `pooler_output` is the
projected, unnormalised embedding as a float32 CPU tensor, like `MotionTextModel`'s (the towers' token states are
not exported: `last_hidden_state` is None); calling the model returns a `MotionTextOutput` with the normalised
embeddings and the logits. Inputs may be torch tensors or numpy arrays. ONNX Runtime uses as many intra-op
threads as PyTorch does (`torch.get_num_threads()`, which `motionpatches.threads.configure_threads` sets), unless
`num_threads` says otherwise.

**Identity.** `source_weights_sha256` is the sha256 of the PyTorch weights the towers were exported from (what
`MotionIndex` records of a model): the fp32 towers equal them to 1e-4, so an index built with either model is
searched with the other. The int8 towers compute other numbers: their identity is a hash of their files, so
an index is built and searched with the same one of the two.

**Checks.** A missing folder or file, a folder that is not an export, and an ONNX file that differs from what the
export recorded (size and sha256: truncated, corrupt or replaced) are refused with an error naming the file.
`onnxruntime` is the optional extra `onnx`; importing this module does not need it, loading a model does.
"""

import hashlib
import json
import logging
import os

import numpy as np
import torch
from transformers.modeling_outputs import BaseModelOutputWithPooling

from motionpatches.configuration import MotionPatchesConfig
from motionpatches.modeling_motionpatches import MotionTextOutput, pair_tower_outputs

logger = logging.getLogger(__name__)

MANIFEST_FILE = "onnx_export.json"
EXPORT_FORMAT = "motionpatches-onnx/1"
INSTALL_ONNX = 'pip install "motionpatches[onnx]" (onnx, onnxruntime, onnxscript)'
TOWERS = ("motion", "text")
VARIANTS = ("fp32", "int8")


def import_onnxruntime():
    try:
        import onnxruntime
    except ImportError as err:
        raise ImportError(f"ONNX Runtime inference needs onnxruntime ({err}): {INSTALL_ONNX}") from None
    return onnxruntime


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_onnx_export(path) -> bool:
    """Whether `path` is a folder written by `export_onnx` (it holds the export's manifest)."""
    return path is not None and os.path.isfile(os.path.join(os.fspath(path), MANIFEST_FILE))


def read_manifest(folder) -> dict:
    """The export's record of what `folder` holds, refused with a message saying what to do when it is not one."""
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise FileNotFoundError(
            f"no ONNX export at {folder}: make one with `motionpatches export onnx --model MODEL --out {folder}`"
        )
    path = os.path.join(folder, MANIFEST_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{folder} has no {MANIFEST_FILE}, so it is not an ONNX export (or its export did not finish); "
            f"make one with `motionpatches export onnx --model MODEL --out {folder}`"
        )
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot read {path} ({err}); export the model again") from None
    if not isinstance(manifest, dict) or manifest.get("format") != EXPORT_FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise ValueError(f"{path}: format {found!r}, expected {EXPORT_FORMAT!r}; export the model again")
    return manifest


def variant_identity(manifest: dict, variant: str) -> str:
    """What an index records as the weights of this variant's embeddings (see the module's documentation)."""
    if variant == "fp32":
        return manifest["source"]["weights_sha256"]
    files = manifest["files"]
    digest = hashlib.sha256(b"motionpatches-onnx-int8")
    for tower in TOWERS:
        digest.update(files[f"{tower}_int8"]["sha256"].encode())
    return digest.hexdigest()


def checked_file(folder: str, manifest: dict, key: str) -> str:
    """The path of one ONNX file of the export, once its size and sha256 are those the export recorded."""
    record = manifest["files"].get(key)
    if record is None:
        hint = " (export with --int8, or int8=True, to write them)" if key.endswith("int8") else ""
        raise FileNotFoundError(f"the ONNX export at {folder} has no {key.replace('_', ' ')} tower{hint}")
    path = os.path.join(folder, record["path"])
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} is missing from the ONNX export; export the model again")
    size = os.path.getsize(path)
    if size != record["bytes"] or file_sha256(path) != record["sha256"]:
        raise ValueError(
            f"{path} is not the file the export wrote ({size:,} bytes against {record['bytes']:,}, or another "
            "sha256): it is truncated, corrupt or replaced; export the model again"
        )
    return path


def cpu_session(path: str, num_threads: int | None = None):
    """An ONNX Runtime CPU session over `path` with `num_threads` intra-op threads (default: PyTorch's count)."""
    ort = import_onnxruntime()
    options = ort.SessionOptions()
    options.intra_op_num_threads = num_threads or torch.get_num_threads()
    options.inter_op_num_threads = 1  # the towers are one chain of operators: nothing runs in parallel beside it
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3  # errors only: ONNX Runtime warns about unused initializers of a valid export
    try:
        return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own pybind error types
        raise ValueError(f"ONNX Runtime cannot load {path} ({err}); export the model again") from None


def as_numpy(value, dtype) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    return np.ascontiguousarray(np.asarray(value), dtype=dtype)


class OnnxMotionTextModel:
    """The motion and text towers of an ONNX export, with `MotionTextModel`'s feature API (module documentation)."""

    main_input_name = "motion_values"
    device = torch.device("cpu")
    dtype = torch.float32
    training = False

    def __init__(self, folder, *, int8: bool = False, num_threads: int | None = None):
        folder = os.fspath(folder)
        self.manifest = read_manifest(folder)
        self.variant = "int8" if int8 else "fp32"
        paths = {tower: checked_file(folder, self.manifest, f"{tower}_{self.variant}") for tower in TOWERS}
        self.config = MotionPatchesConfig.from_pretrained(folder)
        self.name_or_path = os.path.abspath(folder)
        self.num_threads = num_threads or torch.get_num_threads()
        self.sessions = {tower: cpu_session(path, self.num_threads) for tower, path in paths.items()}
        self.logit_scale = torch.tensor(float(self.manifest["logit_scale"]))
        self.source_weights_sha256 = variant_identity(self.manifest, self.variant)

    @classmethod
    def from_pretrained(cls, folder, *, int8: bool = False, num_threads: int | None = None) -> "OnnxMotionTextModel":
        return cls(folder, int8=int8, num_threads=num_threads)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name_or_path!r}, {self.variant}, {self.num_threads} threads)"

    # ------------------------------------------------------------------------- what callers of a torch model use
    def eval(self) -> "OnnxMotionTextModel":
        return self

    def to(self, device) -> "OnnxMotionTextModel":
        if torch.device(device).type != "cpu":
            raise ValueError(f"an ONNX Runtime model runs on the CPU here; got device {device}")
        return self

    # ------------------------------------------------------------------------- features
    def _check_motion_values(self, values: np.ndarray) -> None:
        persons = () if self.config.num_persons == 1 else (self.config.num_persons,)
        expected = (*persons, *self.config.motion_config.input_shape)
        if values.ndim != len(expected) + 1 or tuple(values.shape[1:]) != expected or len(values) == 0:
            raise ValueError(
                f"motion_values has shape {tuple(values.shape)}; this model expects (batch, "
                f"{', '.join(map(str, expected))}) -- prepare motions with the model's MotionPatchProcessor"
            )

    def get_motion_features(self, motion_values, motion_lengths=None, **kwargs) -> BaseModelOutputWithPooling:
        """The projected motion embedding in `pooler_output` (unnormalised), as `MotionTextModel`'s."""
        values = as_numpy(motion_values, np.float32)
        self._check_motion_values(values)
        # motion_lengths is accepted as MotionTextModel accepts it: the ViT tower sees padding as part of the image
        (features,) = self.sessions["motion"].run(None, {"motion_values": values})
        return BaseModelOutputWithPooling(pooler_output=torch.from_numpy(features))

    def get_text_features(
        self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None, **kwargs
    ) -> BaseModelOutputWithPooling:
        """The projected first-token text embedding in `pooler_output` (unnormalised), as `MotionTextModel`'s."""
        ids = as_numpy(input_ids, np.int64)
        if ids.ndim != 2 or ids.shape[0] == 0 or ids.shape[1] == 0:
            raise ValueError(f"input_ids has shape {ids.shape}; expected (batch, sequence) token ids")
        mask = np.ones_like(ids) if attention_mask is None else as_numpy(attention_mask, np.int64)
        if mask.shape != ids.shape:
            raise ValueError(f"attention_mask has shape {mask.shape}, input_ids {ids.shape}; they must match")
        # the exported text tower takes the encoder's defaults for these: all-zero token types (one sentence per
        # row, as the processor makes them) and positions 0, 1, ...
        if token_type_ids is not None and as_numpy(token_type_ids, np.int64).any():
            raise ValueError("the exported text tower takes one sentence per row: token_type_ids must be all 0")
        if position_ids is not None and not np.array_equal(
            as_numpy(position_ids, np.int64), np.broadcast_to(np.arange(ids.shape[1]), ids.shape)
        ):
            raise ValueError("the exported text tower uses positions 0, 1, ...; position_ids must be those")
        (features,) = self.sessions["text"].run(None, {"input_ids": ids, "attention_mask": mask})
        return BaseModelOutputWithPooling(pooler_output=torch.from_numpy(features))

    def __call__(
        self,
        input_ids=None,
        motion_values=None,
        attention_mask=None,
        token_type_ids=None,
        position_ids=None,
        motion_lengths=None,
        return_loss: bool | None = None,
        **kwargs,
    ) -> MotionTextOutput:
        """`MotionTextModel.forward`: logits both ways and the normalised embeddings of both towers."""
        if input_ids is None or motion_values is None:
            raise ValueError(
                "the model needs both input_ids and motion_values; use get_text_features/get_motion_features for one tower"
            )
        motion_outputs = self.get_motion_features(motion_values, motion_lengths)
        text_outputs = self.get_text_features(input_ids, attention_mask, token_type_ids, position_ids)
        return pair_tower_outputs(text_outputs, motion_outputs, self.logit_scale, return_loss)

    forward = __call__


def load_onnx_model_and_processor(
    folder, *, int8: bool = False, num_threads: int | None = None, weights_sha256: str | None = None
):
    """`(OnnxMotionTextModel, processor)` from an export folder. `weights_sha256` (an index's record of its model)
    picks the variant, fp32 or int8, that has that identity, and refuses a folder that has neither."""
    if weights_sha256 is not None:
        manifest = read_manifest(folder)
        exported = [v for v in VARIANTS if f"motion_{v}" in manifest["files"]]
        matching = [v for v in exported if variant_identity(manifest, v) == weights_sha256]
        if not matching:
            raise ValueError(
                f"the ONNX export at {folder} holds no towers with weights sha256 {weights_sha256[:12]} (it has "
                f"{', '.join(f'{v}: {variant_identity(manifest, v)[:12]}' for v in exported)}); export that model"
            )
        int8 = matching[0] == "int8"
    from transformers import AutoProcessor

    model = OnnxMotionTextModel(folder, int8=int8, num_threads=num_threads)
    try:
        processor = AutoProcessor.from_pretrained(os.fspath(folder))
    except (OSError, ValueError) as err:
        raise ValueError(
            f"the ONNX export at {folder} holds no usable processor ({err}); export it from a model folder that has one"
        ) from None
    return model, processor

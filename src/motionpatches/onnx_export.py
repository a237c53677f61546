"""Export a `MotionTextModel`'s two towers to ONNX, check them against PyTorch, and optionally quantise them to int8.

    motionpatches export onnx --model outputs/motionpatches-demo --out outputs/motionpatches-demo-onnx --int8

    from motionpatches.onnx_export import export_onnx
    report = export_onnx(model, processor, "outputs/motionpatches-demo-onnx", int8=True)

**Exporter: `torch.onnx.export(..., dynamo=True)`**, PyTorch's own exporter (`torch.export` graph capture, ONNX
written by onnxscript). Not optimum-onnx: its only release (0.1.0) requires transformers < 4.58, and this package
needs transformers 5; its custom-config route would also have to describe our two towers by hand, where
`torch.export` traces the very `get_motion_features` / `get_text_features` that PyTorch runs. The TorchScript
exporter (`dynamo=False`) is deprecated in PyTorch.

**What is exported.** Each tower outputs what its `MotionTextModel` method puts in `pooler_output`: the projected
embedding, not normalised (normalise it, as `MotionIndex` and `MotionTextModel.forward` do, for cosine scores).

    motion_tower.onnx   motion_values (batch, [persons,] 3, frames, parts * points) float32 -> motion_features (batch, D)
    text_tower.onnx     input_ids, attention_mask (batch, sequence) int64                 -> text_features (batch, D)

The batch axis (and the text's sequence axis) is dynamic. The text tower takes no `token_type_ids`: one sentence
per row, as the processor makes them. Only the ViT motion tower (motion patches, the paper's) is exported: the
raw-joint encoders check their `motion_lengths` with data-dependent branches, which `torch.export` cannot trace.
The folder also holds the model's `config.json`, its processor (tokenizer and motion preprocessing, when given)
and `onnx_export.json`: the source model and the sha256 of its weights (what `MotionIndex` checks), the logit
scale, each ONNX file's size and sha256 (checked on load), and the validation.

**Validation.** The export is traced at batch 2 and checked at batches 1 and 5 (other batch sizes than traced,
texts of several lengths, so padded) against PyTorch: every embedding must equal PyTorch's to `atol` (1e-4),
else nothing is published and an `OnnxValidationError` gives the differences.

**int8** (`int8=True`): `onnxruntime.quantization.quantize_dynamic` stores the MatMul and Gemm weights as int8
(per output channel) and quantises their inputs on the fly, per call. Embeddings then differ from fp32: the export
records the lowest cosine similarity between int8 and fp32 embeddings of the validation inputs, and
`benchmarks/onnx_runtime.py` measures the retrieval metrics of both on the demo's test split.

The folder is written under a temporary name beside `out` and its files are moved into place once all are
validated, `onnx_export.json` last; `out` must be new, empty or an earlier export.
"""

import json
import logging
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from motionpatches.atomic import publish_folder, write_text_atomically
from motionpatches.index import weights_sha256
from motionpatches.onnx_inference import (
    EXPORT_FORMAT,
    INSTALL_ONNX,
    MANIFEST_FILE,
    TOWERS,
    OnnxMotionTextModel,
    file_sha256,
    import_onnxruntime,
    is_onnx_export,
)

logger = logging.getLogger(__name__)

FILE_NAMES = {
    "motion_fp32": "motion_tower.onnx",
    "text_fp32": "text_tower.onnx",
    "motion_int8": "motion_tower.int8.onnx",
    "text_int8": "text_tower.int8.onnx",
}
OUTPUT_NAMES = {"motion": "motion_features", "text": "text_features"}
TRACE_BATCH = 2
VALIDATION_BATCHES = (1, 5)
DEFAULT_ATOL = 1e-4
# several lengths, so that the validation batches hold padded rows
VALIDATION_TEXTS = (
    "a person walks forward",
    "someone waves the left hand above the head and then lowers it slowly",
    "a man jumps",
    "the person kicks with the right leg twice",
    "a woman sits down on a chair, waits, and stands up again",
)
PROTOBUF_LIMIT_BYTES = 2**31  # one ONNX file (weights inline) must fit a protobuf message


class OnnxValidationError(ValueError):
    """ONNX Runtime's embeddings differ from PyTorch's by more than the tolerance."""


@dataclass
class OnnxExport:
    """What `export_onnx` wrote and measured."""

    folder: str
    files: dict  # key (motion_fp32, text_fp32, motion_int8, text_int8) -> file name
    max_abs_diff: dict  # tower -> largest |ONNX Runtime fp32 - PyTorch| over the validation batches
    int8_min_cosine: dict = field(default_factory=dict)  # tower -> lowest cosine(int8, fp32) of those embeddings


# ----------------------------------------------------------------------------- the towers as modules
class MotionTower(nn.Module):
    """`get_motion_features(...).pooler_output` as a module for `torch.onnx.export`."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, motion_values: torch.Tensor) -> torch.Tensor:
        return self.model.get_motion_features(motion_values=motion_values).pooler_output


class TextTower(nn.Module):
    """`get_text_features(...).pooler_output` as a module for `torch.onnx.export`."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model.get_text_features(input_ids=input_ids, attention_mask=attention_mask).pooler_output


def check_exportable(model) -> None:
    encoder = model.config.motion_config.encoder
    if encoder != "vit":
        raise ValueError(
            f"the ONNX export supports the ViT motion tower (motion patches); this model's motion_config.encoder is "
            f"{encoder!r}, whose checks of motion_lengths torch.export cannot trace"
        )
    size = sum(p.numel() * p.element_size() for p in model.parameters())
    if size >= PROTOBUF_LIMIT_BYTES:
        raise ValueError(f"the model's weights take {size / 2**30:.1f} GiB; one ONNX file holds less than 2 GiB")


# ----------------------------------------------------------------------------- inputs
def motion_inputs(model, batch: int, seed: int) -> dict[str, torch.Tensor]:
    """Random normal motion values of the model's input shape."""
    generator = torch.Generator().manual_seed(seed)
    persons = () if model.config.num_persons == 1 else (model.config.num_persons,)
    shape = (batch, *persons, *model.config.motion_config.input_shape)
    return {"motion_values": torch.randn(*shape, generator=generator)}


def text_inputs(tokenizer, model, batch: int) -> dict[str, torch.Tensor]:
    """`batch` of VALIDATION_TEXTS tokenized and padded; without a tokenizer, random ids of several lengths."""
    if tokenizer is not None:
        texts = [VALIDATION_TEXTS[i % len(VALIDATION_TEXTS)] for i in range(batch)]
        encoded = tokenizer(texts, padding=True, return_tensors="pt")
        return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}
    generator = torch.Generator().manual_seed(batch)
    length = 12
    ids = torch.randint(1, model.config.text_config.vocab_size, (batch, length), generator=generator)
    mask = torch.ones_like(ids)
    for row in range(1, batch):
        mask[row, length - row % (length - 2) :] = 0
    return {"input_ids": ids, "attention_mask": mask}


# ----------------------------------------------------------------------------- export
def export_tower(model, tower: str, example: dict, path: str, opset: int | None) -> None:
    """One tower to `path`, the batch (and sequence) axis dynamic."""
    batch = torch.export.Dim("batch", min=1, max=2**20)
    if tower == "motion":
        module, names = MotionTower(model), ["motion_values"]
        shapes = {"motion_values": {0: batch}}
    else:
        module, names = TextTower(model), ["input_ids", "attention_mask"]
        longest = getattr(model.config.text_config, "max_position_embeddings", None) or 2**16
        sequence = torch.export.Dim("sequence", min=1, max=longest)
        shapes = {name: {0: batch, 1: sequence} for name in names}
    with warnings.catch_warnings():
        # the exporter warns about its own internals (axis renaming, deprecations) at every call
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module.eval(),
            tuple(example[name] for name in names),
            path,
            input_names=names,
            output_names=[OUTPUT_NAMES[tower]],
            dynamic_shapes=shapes,
            opset_version=opset,
            dynamo=True,
            external_data=False,
            verbose=False,
        )


def quantize_tower(source: str, target: str) -> None:
    """Dynamic int8 quantisation of the matrix products' weights (see the module's documentation)."""
    import_onnxruntime()
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # the quantiser advises shape pre-processing on the root logger at every call; measured on the demo model it
    # changes neither speed nor accuracy here, so the advice is dropped rather than shown to every user
    advice = AdviceFilter("pre-processing before quantization")
    logging.getLogger().addFilter(advice)
    try:
        quantize_dynamic(
            source, target, weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=["MatMul", "Gemm"]
        )
    finally:
        logging.getLogger().removeFilter(advice)


class AdviceFilter(logging.Filter):
    def __init__(self, text: str):
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in record.getMessage()


@torch.inference_mode()
def reference_features(model, tower: str, inputs: dict) -> np.ndarray:
    if tower == "motion":
        return model.get_motion_features(**inputs).pooler_output.float().numpy()
    return model.get_text_features(**inputs).pooler_output.float().numpy()


def onnx_features(onnx_model: OnnxMotionTextModel, tower: str, inputs: dict) -> np.ndarray:
    if tower == "motion":
        return onnx_model.get_motion_features(**inputs).pooler_output.numpy()
    return onnx_model.get_text_features(**inputs).pooler_output.numpy()


def validation_inputs(model, tokenizer) -> list[tuple[str, dict]]:
    return [
        (tower, motion_inputs(model, batch, seed=batch) if tower == "motion" else text_inputs(tokenizer, model, batch))
        for tower in TOWERS
        for batch in VALIDATION_BATCHES
    ]


def validate(model, folder: str, tokenizer, atol: float) -> dict:
    """Largest |ONNX Runtime - PyTorch| per tower over the validation batches; an error above `atol`."""
    onnx_model = OnnxMotionTextModel(folder)
    worst = dict.fromkeys(TOWERS, 0.0)
    for tower, inputs in validation_inputs(model, tokenizer):
        expected, found = reference_features(model, tower, inputs), onnx_features(onnx_model, tower, inputs)
        if found.shape != expected.shape:
            raise OnnxValidationError(f"the ONNX {tower} tower returned shape {found.shape}, PyTorch {expected.shape}")
        worst[tower] = max(worst[tower], float(np.abs(found - expected).max()))
    failed = {tower: diff for tower, diff in worst.items() if not diff <= atol}
    if failed:
        raise OnnxValidationError(
            "ONNX Runtime's embeddings differ from PyTorch's by more than "
            f"{atol:g}: {', '.join(f'{tower} tower {diff:.2e}' for tower, diff in failed.items())} (batches "
            f"{', '.join(map(str, VALIDATION_BATCHES))}); nothing was written"
        )
    return worst


def int8_cosines(model, folder: str, tokenizer) -> dict:
    """Lowest cosine similarity per tower between the int8 and the fp32 towers' embeddings of the validation inputs."""
    fp32, int8 = OnnxMotionTextModel(folder), OnnxMotionTextModel(folder, int8=True)
    lowest = dict.fromkeys(TOWERS, 1.0)
    for tower, inputs in validation_inputs(model, tokenizer):
        a = torch.from_numpy(onnx_features(fp32, tower, inputs))
        b = torch.from_numpy(onnx_features(int8, tower, inputs))
        lowest[tower] = min(lowest[tower], float(torch.nn.functional.cosine_similarity(a, b, dim=-1).min()))
    return lowest


def check_out_folder(out: str) -> str:
    """`out` if an export may be written there: new, empty, or an earlier export (whose files are replaced)."""
    out = os.path.normpath(os.fspath(out))
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"--out {out} is a file; an ONNX export is a folder")
    if os.path.isdir(out) and os.listdir(out) and not is_onnx_export(out):
        raise ValueError(f"--out {out} holds files and is not an earlier ONNX export; export to a new or empty folder")
    parent = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(parent):
        raise FileNotFoundError(f"--out {out}: the folder {parent} does not exist; create it first")
    return out


def tokenizer_of(processor):
    return None if processor is None else getattr(processor, "tokenizer", processor)


def export_onnx(
    model,
    processor,
    out,
    *,
    int8: bool = False,
    opset: int | None = None,
    atol: float = DEFAULT_ATOL,
    model_name_or_path: str | None = None,
) -> OnnxExport:
    """Export `model`'s towers to `out` (with `processor`, when given), check them, optionally quantise them.

    Returns an `OnnxExport`; raises `OnnxValidationError` (nothing published) when ONNX Runtime's fp32 embeddings
    differ from PyTorch's by more than `atol`."""
    try:
        import onnx  # noqa: F401  (torch.onnx.export writes through it)
        import onnxscript  # noqa: F401
    except ImportError as err:
        raise ImportError(f"exporting to ONNX needs onnx and onnxscript ({err}): {INSTALL_ONNX}") from None
    import_onnxruntime()
    out = check_out_folder(out)
    model = model.eval()
    check_exportable(model)
    tokenizer = tokenizer_of(processor)
    parent = os.path.dirname(os.path.abspath(out))
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(out)}.", suffix=".partial", dir=parent)
    try:
        examples = {
            "motion": motion_inputs(model, TRACE_BATCH, seed=0),
            "text": text_inputs(tokenizer, model, TRACE_BATCH),
        }
        for tower in TOWERS:
            logger.info(f"exporting the {tower} tower")
            export_tower(model, tower, examples[tower], os.path.join(staging, FILE_NAMES[f"{tower}_fp32"]), opset)
        model.config.save_pretrained(staging)
        if processor is not None:
            processor.save_pretrained(staging)
        manifest = describe_export(model, staging, model_name_or_path, opset)
        write_manifest(staging, manifest)  # OnnxMotionTextModel reads the files through it
        max_abs_diff = validate(model, staging, tokenizer, atol)
        cosines = None
        if int8:
            for tower in TOWERS:
                logger.info(f"quantising the {tower} tower to int8")
                fp32, quantized = (os.path.join(staging, FILE_NAMES[f"{tower}_{v}"]) for v in ("fp32", "int8"))
                quantize_tower(fp32, quantized)
            manifest["files"] = file_records(staging)
            manifest["int8"] = INT8_METHOD
            write_manifest(staging, manifest)
            cosines = int8_cosines(model, staging, tokenizer)
        manifest["validation"] = {
            "atol": atol,
            "traced_batch": TRACE_BATCH,
            "batches": list(VALIDATION_BATCHES),
            "max_abs_diff": max_abs_diff,
            "int8_min_cosine": cosines,
        }
        os.remove(os.path.join(staging, MANIFEST_FILE))
        publish_folder(staging, out)
        # the manifest is the commit, written last: a reader that finds it finds every file it names, whole (an
        # earlier export's manifest, until then, names other sha256s and is refused)
        write_manifest(out, manifest)
        remove_stale_files(out, manifest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return OnnxExport(
        out, {key: record["path"] for key, record in manifest["files"].items()}, max_abs_diff, cosines or {}
    )


INT8_METHOD = "onnxruntime.quantization.quantize_dynamic: QInt8 weights per output channel, MatMul and Gemm"


def write_manifest(folder: str, manifest: dict) -> None:
    write_text_atomically(os.path.join(folder, MANIFEST_FILE), json.dumps(manifest, indent=2) + "\n")


def remove_stale_files(out: str, manifest: dict) -> None:
    """int8 files of an earlier export that this one does not name: they belong to other weights."""
    for key, name in FILE_NAMES.items():
        path = os.path.join(out, name)
        if key not in manifest["files"] and os.path.isfile(path):
            os.remove(path)


def file_records(folder: str) -> dict:
    """{key: path, bytes, sha256} of the ONNX files in `folder`."""
    records = {}
    for key, name in FILE_NAMES.items():
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            records[key] = {"path": name, "bytes": os.path.getsize(path), "sha256": file_sha256(path)}
    return records


def describe_export(model, folder: str, name_or_path, opset) -> dict:
    import onnx
    import onnxruntime
    import onnxscript

    name = name_or_path or getattr(model, "name_or_path", "") or None
    if name and os.path.isdir(name):
        name = os.path.abspath(name)  # so that it is found again from another working directory
    written = onnx.load(os.path.join(folder, FILE_NAMES["text_fp32"]))
    return {
        "format": EXPORT_FORMAT,
        "source": {"name_or_path": name, "weights_sha256": weights_sha256(model)},
        "exporter": {
            "function": "torch.onnx.export(dynamo=True)",
            "opset": max(o.version for o in written.opset_import if o.domain in ("", "ai.onnx")),
            "requested_opset": opset,
            "versions": {
                "torch": torch.__version__,
                "onnx": onnx.__version__,
                "onnxscript": onnxscript.__version__,
                "onnxruntime": onnxruntime.__version__,
            },
        },
        "logit_scale": float(model.logit_scale.detach()),
        "projection_dim": model.config.projection_dim,
        "inputs": {
            "motion": ["motion_values"],
            "text": ["input_ids", "attention_mask"],
        },
        "outputs": dict(OUTPUT_NAMES),
        "files": file_records(folder),
        "int8": None,
    }

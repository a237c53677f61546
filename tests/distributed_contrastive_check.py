"""Run by tests/test_training.py under `accelerate launch --num_processes 2`: one training step's loss and
gradients when each process holds half of a fixed global batch. Writes rank 0's results to argv[1]."""

import sys

import safetensors.torch
import torch
from accelerate import Accelerator

from motionpatches import MotionTextModel
from motionpatches.tiny import tiny_config
from motionpatches.training.loss import global_contrastive_loss

GLOBAL_BATCH = 8


def make_model_and_batch():
    """The same initial weights and global batch in every process; no dropout, so processes agree."""
    torch.manual_seed(0)
    config = tiny_config(
        50,
        motion_config={"num_frames": 32},
        text_config={"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0},
        projection_dropout=0.0,
    )
    model = MotionTextModel(config)
    generator = torch.Generator().manual_seed(1)
    batch = {
        "input_ids": torch.randint(5, 50, (GLOBAL_BATCH, 6), generator=generator),
        "attention_mask": torch.ones(GLOBAL_BATCH, 6, dtype=torch.long),
        "motion_values": torch.randn(GLOBAL_BATCH, 3, 32, 80, generator=generator),
    }
    return model, batch


def step(accelerator, model, batch):
    out = model(**batch)
    loss = global_contrastive_loss(out.motion_embeds, out.text_embeds, accelerator.unwrap_model(model).logit_scale)
    accelerator.backward(loss)
    grads = {name: p.grad.detach().clone() for name, p in accelerator.unwrap_model(model).named_parameters()}
    return loss.detach(), grads


def main():
    accelerator = Accelerator(cpu=True)
    model, batch = make_model_and_batch()
    share = GLOBAL_BATCH // accelerator.num_processes
    rank = accelerator.process_index
    local = {k: v[rank * share : (rank + 1) * share] for k, v in batch.items()}
    model = accelerator.prepare(model)
    model.train()
    loss, grads = step(accelerator, model, local)
    if accelerator.is_main_process:
        safetensors.torch.save_file({"loss": loss.reshape(1), **grads}, sys.argv[1])
        print(f"world size {accelerator.num_processes}")


if __name__ == "__main__":
    main()

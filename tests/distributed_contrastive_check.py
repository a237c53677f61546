"""Run by tests/test_training.py under `accelerate launch --num_processes 2`: one training step's loss and
gradients when each process holds half of a fixed global batch, with the plain loss and with false negatives
masked (duplicates that straddle the two processes' halves). Writes rank 0's results to argv[1]."""

import sys

import safetensors.torch
import torch
from accelerate import Accelerator

from motionpatches import MotionTextModel
from motionpatches.tiny import tiny_config
from motionpatches.training.loss import global_contrastive_loss

GLOBAL_BATCH = 8
# rows 0 and 4 share a caption (one in each process's half); rows 1 and 6 have near-identical sentence
# embeddings; rows 2 and 5 too, but name different sides, so they stay negatives
CAPTION_KEYS = [10, 11, 12, 13, 10, 15, 16, 17]
SIDE_KEYS = [0, 0, 1, 0, 0, 2, 0, 0]
SIMILAR_PAIRS = [(1, 6), (2, 5)]
THRESHOLD = 0.9


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
    caption_embeds = torch.nn.functional.normalize(torch.randn(GLOBAL_BATCH, 16, generator=generator), dim=-1)
    for first, second in SIMILAR_PAIRS:
        caption_embeds[second] = caption_embeds[first]
    pair_keys = {
        "caption_keys": torch.tensor(CAPTION_KEYS),
        "side_keys": torch.tensor(SIDE_KEYS),
        "caption_embeds": caption_embeds,
    }
    return model, batch, pair_keys


def step(accelerator, model, batch, pair_keys=None):
    """Loss and parameter gradients of one forward/backward; `pair_keys` masks false negatives."""
    unwrapped = accelerator.unwrap_model(model)
    unwrapped.zero_grad()
    out = model(**batch)
    loss = global_contrastive_loss(out.motion_embeds, out.text_embeds, unwrapped.logit_scale, pair_keys, THRESHOLD)
    accelerator.backward(loss)
    grads = {name: p.grad.detach().clone() for name, p in unwrapped.named_parameters()}
    return loss.detach(), grads


def main():
    accelerator = Accelerator(cpu=True)
    model, batch, pair_keys = make_model_and_batch()
    share = GLOBAL_BATCH // accelerator.num_processes
    rank = accelerator.process_index

    def local(values):
        return {k: v[rank * share : (rank + 1) * share] for k, v in values.items()}

    model = accelerator.prepare(model)
    model.train()
    loss, grads = step(accelerator, model, local(batch))
    masked_loss, masked_grads = step(accelerator, model, local(batch), local(pair_keys))
    if accelerator.is_main_process:
        results = {"loss": loss.reshape(1), **grads, "masked/loss": masked_loss.reshape(1)}
        results.update({f"masked/{name}": grad for name, grad in masked_grads.items()})
        safetensors.torch.save_file(results, sys.argv[1])
        print(f"world size {accelerator.num_processes}")
    # both processes leave together and close the process group: a process that exits while gloo's threads
    # still serve the other one can abort ("terminate called without an active exception")
    accelerator.wait_for_everyone()
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()

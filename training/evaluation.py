"""Embedding a dataset split with a model and scoring text<->motion retrieval on it."""

import numpy as np
import torch
from torch.utils.data import DataLoader

from motionpatches.retrieval import retrieval_metrics
from motionpatches.training.batching import MotionTextCollator


@torch.inference_mode()
def embed_split(model, processor, rows, batch_size: int = 128, device=None) -> dict:
    """Normalised text embeddings of each row's first caption and motion embeddings of its first window."""
    model.eval()
    device = device or next(model.parameters()).device
    loader = DataLoader(
        rows.with_format("numpy", columns=["motion"], output_all_columns=True),
        batch_size=batch_size,
        collate_fn=MotionTextCollator(processor, train=False),
    )
    text_embeds, motion_embeds = [], []
    for batch in loader:
        batch = {k: v.to(device) for k, v in batch.items()}
        out = model(**batch)
        text_embeds.append(out.text_embeds.float().cpu())
        motion_embeds.append(out.motion_embeds.float().cpu())
    return {
        "text_embeds": torch.cat(text_embeds).numpy(),
        "motion_embeds": torch.cat(motion_embeds).numpy(),
        "captions": np.array([captions[0] for captions in rows["captions"]]),
        "ids": np.array(list(rows["id"])),
    }


def score_embeddings(embeddings: dict, protocol: str = "all", **protocol_kwargs) -> dict[str, float]:
    return retrieval_metrics(
        embeddings["text_embeds"],
        embeddings["motion_embeds"],
        protocol=protocol,
        captions=list(embeddings["captions"]),
        ids=list(embeddings["ids"]),
        **protocol_kwargs,
    )


def selection_score(metrics: dict[str, float]) -> float:
    """One number for model selection: the sum of R@1, R@5 and R@10 in both directions."""
    return sum(metrics[f"{direction}/R@{k}"] for direction in ("t2m", "m2t") for k in (1, 5, 10))


def left_right_confusion(embeddings: dict) -> float | None:
    """Percent of texts naming exactly one side whose best motion's caption names only the other side.

    The demo's hardest distinction: a left-hand and a right-hand wave differ only in which arm moves.
    None when no caption names a side.
    """

    def side(caption):
        words = set(caption.lower().replace(",", " ").split())
        sides = {"left", "right"} & words
        return sides.pop() if len(sides) == 1 else None

    sides = [side(c) for c in embeddings["captions"]]
    queries = [i for i, s in enumerate(sides) if s is not None]
    if not queries:
        return None
    best = (embeddings["text_embeds"][queries] @ embeddings["motion_embeds"].T).argmax(axis=1)
    swapped = [sides[j] is not None and sides[j] != sides[i] for i, j in zip(queries, best)]
    return 100.0 * float(np.mean(swapped))

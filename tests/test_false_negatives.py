"""The false-negative-aware contrastive loss: masks, exactness without duplicates, zero negative gradient for
duplicates, the caption keys and the cached sentence embeddings (the 2-process equivalence is in
test_training.py, with the masked loss)."""

import math

import numpy as np
import pytest
import torch

from motionpatches import motion_text_contrastive_loss
from motionpatches.retrieval import default_sentence_encoder
from motionpatches.training.false_negatives import (
    CaptionEmbeddings,
    caption_embeddings,
    caption_key,
    false_negative_mask,
    normalise_caption,
    side_key,
)
from motionpatches.training.loss import global_contrastive_loss


def keys(captions):
    return (
        torch.tensor([caption_key(c) for c in captions]),
        torch.tensor([side_key(c) for c in captions]),
    )


def embeddings(n, dim=8, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.nn.functional.normalize(torch.randn(n, dim, generator=generator, dtype=torch.float64), dim=-1)


def reference_loss(logits: np.ndarray, mask: np.ndarray) -> float:
    """Symmetric InfoNCE with masked pairs left out of the denominators, written out with loops."""
    n = len(logits)
    total = 0.0
    for matrix in (logits, logits.T):
        for i in range(n):
            kept = [matrix[i, j] for j in range(n) if not mask[i, j]]
            total += -(matrix[i, i] - math.log(sum(math.exp(v) for v in kept)))
    return total / (2 * n)


def test_captions_are_identical_up_to_case_spaces_and_final_stop():
    assert normalise_caption("  A person  walks forward. ") == "a person walks forward"
    assert caption_key("A person walks forward.") == caption_key("a person walks  forward")
    assert caption_key("a person walks forward") != caption_key("a person walks backward")
    # stable across processes and runs: not Python's salted hash()
    assert caption_key("a person walks forward") == caption_key("a person walks forward")
    assert side_key("waves the left hand") == side_key("kicks with the left leg")
    assert side_key("waves the left hand") != side_key("waves the right hand")
    assert side_key("claps twice") == side_key("jumps")


def test_mask_marks_identical_and_similar_captions_of_the_same_side_only():
    captions = ["a person walks", "A person walks.", "a person waves the left hand", "a person waves the right hand"]
    caption_keys, side_keys = keys(captions)
    mask = false_negative_mask(caption_keys, side_keys)
    expected = torch.zeros(4, 4, dtype=torch.bool)
    expected[0, 1] = expected[1, 0] = True
    assert torch.equal(mask, expected)
    # rows 2 and 3 have identical sentence embeddings but name different sides: still negatives
    embeds = embeddings(4)
    embeds[3] = embeds[2]
    assert torch.equal(false_negative_mask(caption_keys, side_keys, embeds, threshold=0.9), expected)
    # the same side and close embeddings: masked both ways, never the diagonal
    same_side = torch.tensor([0, 0, 0, 0])
    mask = false_negative_mask(caption_keys, same_side, embeds, threshold=0.9)
    assert mask[2, 3] and mask[3, 2] and not mask.diagonal().any()


def test_loss_with_all_captions_distinct_equals_the_plain_loss_exactly():
    captions = [f"a person does action number {i}" for i in range(6)]
    caption_keys, side_keys = keys(captions)
    motion, text = embeddings(6, seed=1).float(), embeddings(6, seed=2).float()
    scale = torch.tensor(math.log(1 / 0.07))
    plain = global_contrastive_loss(motion, text, scale)
    assert torch.equal(plain, motion_text_contrastive_loss(scale.exp() * text @ motion.t()))
    masked = global_contrastive_loss(motion, text, scale, {"caption_keys": caption_keys, "side_keys": side_keys})
    assert torch.equal(masked, plain)
    # similar mode with embeddings below the threshold: also exactly the plain loss
    pair_keys = {"caption_keys": caption_keys, "side_keys": side_keys, "caption_embeds": embeddings(6).float()}
    assert torch.equal(global_contrastive_loss(motion, text, scale, pair_keys, 0.999), plain)


def test_duplicated_captions_get_no_negative_gradient_and_the_documented_loss():
    captions = ["a person walks", "someone jumps", "a person walks", "a person sits down", "someone jumps."]
    caption_keys, side_keys = keys(captions)
    motion = embeddings(5, seed=3).requires_grad_()
    text = embeddings(5, seed=4).requires_grad_()
    scale = torch.tensor(2.0, dtype=torch.float64)
    loss = global_contrastive_loss(motion, text, scale, {"caption_keys": caption_keys, "side_keys": side_keys})
    mask = false_negative_mask(caption_keys, side_keys)
    logits = (scale.exp() * text @ motion.t()).detach().numpy()
    assert loss.item() == pytest.approx(reference_loss(logits, mask.numpy()), rel=1e-12)

    # d loss / d logit(i, j) is zero for every masked pair, and positive (pushing apart) for kept negatives
    logits = (scale.exp() * text @ motion.t()).detach().requires_grad_()
    masked_logits = logits.masked_fill(mask, float("-inf"))
    motion_text_contrastive_loss(masked_logits).backward()
    grad = logits.grad
    assert mask.sum() == 4  # (0, 2), (2, 0), (1, 4), (4, 1)
    assert torch.all(grad[mask] == 0)
    off_diagonal_kept = ~mask & ~torch.eye(5, dtype=torch.bool)
    assert torch.all(grad[off_diagonal_kept] > 0)

    # so the duplicate's motion is not pushed away from the other copy's text: moving motion 2 towards text 0
    # changes the loss only through motion 2's own terms, never through text 0's softmax
    def loss_with_motion2(shift):
        moved = motion.detach().clone()
        moved[2] = moved[2] + shift * text[0].detach()
        out = scale.exp() * text.detach() @ moved.t()
        return motion_text_contrastive_loss(out.masked_fill(mask, float("-inf")))

    def text0_term(shift):
        moved = motion.detach().clone()
        moved[2] = moved[2] + shift * text[0].detach()
        row = (scale.exp() * text.detach()[0] @ moved.t()).masked_fill(mask[0], float("-inf"))
        return -torch.log_softmax(row, dim=0)[0]

    assert text0_term(0.5) == text0_term(0.0)
    assert loss_with_motion2(0.5) != loss_with_motion2(0.0)


def test_caption_embedding_table_refuses_an_unknown_caption():
    table = CaptionEmbeddings(["a", "b"], np.eye(2, dtype=np.float32))
    assert np.array_equal(table(["b", "a"]), np.array([[0, 1], [1, 0]], dtype=np.float32))
    with pytest.raises(KeyError, match="'c' has no precomputed sentence embedding"):
        table(["c"])
    with pytest.raises(ValueError, match="2 captions but 3 embeddings"):
        CaptionEmbeddings(["a", "b"], np.eye(3))


@pytest.mark.skipif(default_sentence_encoder() is None, reason="needs MiniLM (dev extra)")
def test_sentence_embeddings_are_computed_once_and_cached(tmp_path, monkeypatch):
    import motionpatches.retrieval as retrieval

    calls = []
    real = retrieval.sentence_embeddings

    def counting(texts, *args, **kwargs):
        calls.append(len(texts))
        return real(texts, *args, **kwargs)

    monkeypatch.setattr(retrieval, "sentence_embeddings", counting)
    captions = [
        "a person walks forward",
        "someone walks ahead",
        "a person waves the left hand",
        "a person walks forward",
    ]
    first = caption_embeddings(captions, default_sentence_encoder(), cache_dir=tmp_path)
    second = caption_embeddings(reversed(captions), default_sentence_encoder(), cache_dir=tmp_path)
    assert calls == [3]  # distinct captions, once
    assert np.array_equal(first(captions), second(captions))
    similarity = first(["a person walks forward"]) @ first(["someone walks ahead", "a person waves the left hand"]).T
    assert similarity[0, 0] > similarity[0, 1]  # MiniLM: walking is closer to walking than to waving
    assert len(list(tmp_path.iterdir())) == 1
    caption_embeddings(captions[:2], default_sentence_encoder(), cache_dir=tmp_path)
    assert calls == [3, 2]  # another caption set: another cache entry

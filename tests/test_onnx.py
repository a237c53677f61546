"""ONNX export of both towers and inference with ONNX Runtime: embeddings equal PyTorch's to 1e-4 at batch sizes other
than the traced one, int8 towers close but not equal, the index and the command line on the ONNX towers, and clear
refusals of missing, foreign or damaged export folders."""

import json
import os
import shutil

import datasets
import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from motionpatches.index import IncompatibleIndexError, MotionIndex, weights_sha256  # noqa: E402
from motionpatches.loading import load_model_and_processor  # noqa: E402
from motionpatches.onnx_export import (  # noqa: E402
    TRACE_BATCH,
    OnnxValidationError,
    export_onnx,
)
from motionpatches.onnx_inference import (  # noqa: E402
    MANIFEST_FILE,
    OnnxMotionTextModel,
    load_onnx_model_and_processor,
)

ATOL = 1e-4
TEXTS = [
    "a person walks",
    "a person waves the left hand and then walks forward",
    "someone jumps",
    "a person dances in a circle",
    "a person walks and waves",
]


def random_motions(count: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(scale=0.3, size=(int(rng.integers(30, 90)), 22, 3)).astype(np.float32) for _ in range(count)]


@pytest.fixture(scope="module")
def torch_model(saved_tiny_model):
    return load_model_and_processor(saved_tiny_model)


@pytest.fixture(scope="module")
def export(tmp_path_factory, torch_model, saved_tiny_model):
    """The tiny model's towers exported once for the module, int8 included."""
    model, processor = torch_model
    out = tmp_path_factory.mktemp("onnx") / "export"
    result = export_onnx(model, processor, out, int8=True, model_name_or_path=str(saved_tiny_model))
    return out, result


@pytest.fixture
def traced_once(export, monkeypatch):
    """Exports reuse the module's traced towers of the same model (tracing takes seconds); everything after the
    trace (validation against PyTorch, quantisation, manifest, publishing) runs for real."""
    from motionpatches import onnx_export

    def copy_traced(model, tower, example, path, opset):
        shutil.copyfile(export[0] / onnx_export.FILE_NAMES[f"{tower}_fp32"], path)

    monkeypatch.setattr(onnx_export, "export_tower", copy_traced)


def model_inputs(processor, batch: int, seed: int) -> dict:
    inputs = processor(text=TEXTS[:batch], motions=random_motions(batch, seed), return_tensors="pt")
    assert inputs["motion_values"].shape[0] == batch
    return inputs


@pytest.mark.parametrize("batch", [1, 5])
def test_onnx_embeddings_equal_pytorch_at_batch_sizes_other_than_traced(export, torch_model, batch):
    assert batch != TRACE_BATCH
    model, processor = torch_model
    onnx_model = OnnxMotionTextModel(export[0])
    inputs = model_inputs(processor, batch, seed=batch)
    if batch > 1:  # padded rows are part of what must match
        assert (inputs["attention_mask"] == 0).any()
    with torch.inference_mode():
        expected_motion = model.get_motion_features(motion_values=inputs["motion_values"]).pooler_output
        expected_text = model.get_text_features(**{k: inputs[k] for k in ("input_ids", "attention_mask")}).pooler_output
    found_motion = onnx_model.get_motion_features(motion_values=inputs["motion_values"]).pooler_output
    found_text = onnx_model.get_text_features(**{k: v for k, v in inputs.items() if k != "motion_values"}).pooler_output
    for found, expected in ((found_motion, expected_motion), (found_text, expected_text)):
        assert isinstance(found, torch.Tensor) and found.dtype == torch.float32
        assert found.shape == expected.shape == (batch, model.config.projection_dim)
        assert (found - expected).abs().max().item() <= ATOL
    # numpy in, as from a pipeline without torch tensors
    from_numpy = onnx_model.get_motion_features(inputs["motion_values"].numpy()).pooler_output
    torch.testing.assert_close(from_numpy, found_motion)


def test_calling_the_onnx_model_gives_motion_text_model_outputs(export, torch_model):
    model, processor = torch_model
    onnx_model = OnnxMotionTextModel(export[0])
    inputs = model_inputs(processor, 3, seed=7)
    with torch.inference_mode():
        expected = model(**inputs, return_loss=True)
    found = onnx_model(**inputs, return_loss=True)
    for name in ("text_embeds", "motion_embeds", "logits_per_text", "logits_per_motion", "loss"):
        torch.testing.assert_close(
            found[name], expected[name], atol=ATOL * expected.logits_per_text.abs().max(), rtol=0
        )
    torch.testing.assert_close(found.text_embeds.norm(dim=-1), torch.ones(3))


def test_int8_towers_are_close_to_fp32_but_not_equal(export, torch_model):
    model, processor = torch_model
    fp32, int8 = OnnxMotionTextModel(export[0]), OnnxMotionTextModel(export[0], int8=True)
    inputs = model_inputs(processor, 5, seed=3)
    for tower, kwargs in (
        ("motion", {"motion_values": inputs["motion_values"]}),
        ("text", {"input_ids": inputs["input_ids"], "attention_mask": inputs["attention_mask"]}),
    ):
        a = getattr(fp32, f"get_{tower}_features")(**kwargs).pooler_output
        b = getattr(int8, f"get_{tower}_features")(**kwargs).pooler_output
        assert torch.nn.functional.cosine_similarity(a, b, dim=-1).min() > 0.9, tower
        assert (a - b).abs().max() > 1e-6, f"the int8 {tower} tower computed the fp32 numbers"
    assert set(export[1].int8_min_cosine) == {"motion", "text"}
    assert all(0.9 < value <= 1.0 + 1e-6 for value in export[1].int8_min_cosine.values())


def test_manifest_records_the_source_weights_and_the_validation(export, torch_model, saved_tiny_model):
    folder, result = export
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    model, _ = torch_model
    assert manifest["source"] == {"name_or_path": str(saved_tiny_model), "weights_sha256": weights_sha256(model)}
    assert OnnxMotionTextModel(folder).source_weights_sha256 == weights_sha256(model)
    assert OnnxMotionTextModel(folder, int8=True).source_weights_sha256 != weights_sha256(model)
    assert all(diff <= ATOL for diff in result.max_abs_diff.values())
    assert manifest["validation"]["max_abs_diff"] == result.max_abs_diff
    assert sorted(manifest["files"]) == ["motion_fp32", "motion_int8", "text_fp32", "text_int8"]
    assert manifest["logit_scale"] == pytest.approx(model.logit_scale.item())
    assert not [name for name in os.listdir(folder.parent) if name.endswith(".partial")]


def dataset_rows(count: int) -> datasets.Dataset:
    motions = random_motions(count, seed=11)
    return datasets.Dataset.from_dict(
        {
            "id": [f"m{i}" for i in range(count)],
            "motion": motions,
            "captions": [[TEXTS[i % len(TEXTS)]] for i in range(count)],
        },
        features=datasets.Features(
            {
                "id": datasets.Value("string"),
                "motion": datasets.Array3D(shape=(None, 22, 3), dtype="float32"),
                "captions": datasets.List(datasets.Value("string")),
            }
        ),
    )


def test_an_index_built_with_pytorch_is_searched_with_the_onnx_towers(export, torch_model):
    model, processor = torch_model
    rows = dataset_rows(6)
    index = MotionIndex.build(model, processor, rows, batch_size=4)
    expected = index.search_text(TEXTS[:2], k=6)
    onnx_model, onnx_processor = load_onnx_model_and_processor(export[0])
    index.use_model(onnx_model, onnx_processor)
    found = index.search_text(TEXTS[:2], k=6)
    assert [[h.row for h in q] for q in found] == [[h.row for h in q] for q in expected]
    np.testing.assert_allclose(
        [[h.score for h in q] for q in found], [[h.score for h in q] for q in expected], atol=ATOL
    )
    # the int8 towers compute other embeddings: refused, as another model would be
    with pytest.raises(IncompatibleIndexError, match="weights sha256"):
        index.use_model(*load_onnx_model_and_processor(export[0], int8=True))


def test_an_index_built_with_the_onnx_towers_loads_them_again(export, torch_model, tmp_path):
    model, processor = torch_model
    rows = dataset_rows(6)
    by_torch = MotionIndex.build(model, processor, rows, batch_size=4)
    onnx_model, onnx_processor = load_onnx_model_and_processor(export[0], int8=True)
    built = MotionIndex.build(onnx_model, onnx_processor, rows, batch_size=4)
    built.save(tmp_path / "index")
    assert built.info["model"]["name_or_path"] == os.path.abspath(export[0])
    loaded = MotionIndex.load(tmp_path / "index")
    hits = loaded.search_text([TEXTS[0]], k=3)
    # the index's own record picked the int8 towers it was built with
    assert isinstance(loaded._model, OnnxMotionTextModel) and loaded._model.variant == "int8"
    assert len(hits[0]) == 3
    cosines = (np.asarray(built.rows["motion_embeds"]) * np.asarray(by_torch.rows["motion_embeds"])).sum(axis=1)
    assert cosines.min() > 0.9


def test_missing_foreign_and_damaged_export_folders_are_refused(export, tmp_path):
    with pytest.raises(FileNotFoundError, match="motionpatches export onnx"):
        OnnxMotionTextModel(tmp_path / "nowhere")
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match=MANIFEST_FILE):
        OnnxMotionTextModel(tmp_path / "foreign")

    damaged = tmp_path / "damaged"
    shutil.copytree(export[0], damaged)
    text_file = damaged / "text_tower.onnx"
    data = text_file.read_bytes()
    text_file.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"text_tower\.onnx.*truncated, corrupt or replaced"):
        OnnxMotionTextModel(damaged)
    flipped = bytearray(data)
    flipped[len(flipped) // 2] ^= 0xFF  # same size, other bytes
    text_file.write_bytes(bytes(flipped))
    with pytest.raises(ValueError, match=r"text_tower\.onnx"):
        OnnxMotionTextModel(damaged)

    os.remove(damaged / "motion_tower.int8.onnx")
    with pytest.raises(FileNotFoundError, match=r"motion_tower\.int8\.onnx is missing"):
        OnnxMotionTextModel(damaged, int8=True)
    (damaged / MANIFEST_FILE).write_text('{"format": "something-else"}')
    with pytest.raises(ValueError, match="format 'something-else'"):
        OnnxMotionTextModel(damaged)


def test_a_file_onnx_runtime_cannot_read_is_refused_naming_it(export, tmp_path):
    """A manifest that matches a file which is no ONNX model (e.g. written by hand): ONNX Runtime's error, named."""
    folder = tmp_path / "garbage"
    shutil.copytree(export[0], folder)
    (folder / "motion_tower.onnx").write_bytes(b"not an onnx model")
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    from motionpatches.onnx_inference import file_sha256

    manifest["files"]["motion_fp32"].update(bytes=17, sha256=file_sha256(folder / "motion_tower.onnx"))
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=r"ONNX Runtime cannot load .*motion_tower\.onnx"):
        OnnxMotionTextModel(folder)


def test_wrong_inputs_are_refused(export):
    onnx_model = OnnxMotionTextModel(export[0])
    with pytest.raises(ValueError, match="motion_values has shape"):
        onnx_model.get_motion_features(torch.zeros(2, 3, 10, 80))
    with pytest.raises(ValueError, match="token_type_ids"):
        onnx_model.get_text_features(torch.ones(1, 4, dtype=torch.long), token_type_ids=torch.ones(1, 4))
    with pytest.raises(ValueError, match="attention_mask has shape"):
        onnx_model.get_text_features(torch.ones(2, 4, dtype=torch.long), torch.ones(2, 3))
    with pytest.raises(ValueError, match="CPU"):
        onnx_model.to("cuda")


def test_export_refuses_a_folder_of_other_files_and_a_failed_validation(
    traced_once, torch_model, tmp_path, monkeypatch
):
    model, processor = torch_model
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not an earlier ONNX export"):
        export_onnx(model, processor, taken)
    assert os.listdir(taken) == ["notes.txt"]

    from motionpatches import onnx_export

    real = onnx_export.reference_features
    monkeypatch.setattr(onnx_export, "reference_features", lambda *args: real(*args) + 1e-3)
    with pytest.raises(OnnxValidationError, match="differ from PyTorch's by more than 0.0001"):
        export_onnx(model, processor, tmp_path / "bad")
    assert not (tmp_path / "bad").exists()
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".partial")]


def test_exporting_again_over_an_earlier_export_replaces_it(traced_once, export, torch_model, tmp_path):
    model, processor = torch_model
    again = tmp_path / "again"
    shutil.copytree(export[0], again)
    result = export_onnx(model, processor, again)  # fp32 only this time
    assert sorted(result.files) == ["motion_fp32", "text_fp32"]
    assert not (again / "motion_tower.int8.onnx").exists() and not (again / "text_tower.int8.onnx").exists()
    assert OnnxMotionTextModel(again).source_weights_sha256 == weights_sha256(model)
    with pytest.raises(FileNotFoundError, match="--int8"):
        OnnxMotionTextModel(again, int8=True)


def test_a_model_exported_without_processor_is_validated_on_token_ids(traced_once, torch_model, tmp_path):
    model, _ = torch_model
    result = export_onnx(model, None, tmp_path / "bare")
    assert all(diff <= ATOL for diff in result.max_abs_diff.values())
    OnnxMotionTextModel(tmp_path / "bare")  # the towers load
    with pytest.raises(ValueError, match="no usable processor"):
        load_onnx_model_and_processor(tmp_path / "bare")


def write_motion_files(folder, count: int) -> None:
    folder.mkdir()
    for i, motion in enumerate(random_motions(count, seed=5)):
        np.save(folder / f"clip{i}.npy", motion)
        (folder / f"clip{i}.txt").write_text(TEXTS[i % len(TEXTS)] + "\n")


@pytest.mark.slow  # traces both towers again: about 10 s
def test_the_command_line_exports_and_searches_with_onnx(cli, saved_tiny_model, tmp_path):
    out = tmp_path / "onnx"
    done = cli("export", "onnx", "--model", saved_tiny_model, "--out", out)
    assert done.returncode == 0, done.stderr
    assert "max abs difference" in done.stdout
    assert {"motion_tower.onnx", "text_tower.onnx", MANIFEST_FILE, "config.json"} <= set(os.listdir(out))
    assert "motion_tower.int8.onnx" not in os.listdir(out)

    motions = tmp_path / "motions"
    write_motion_files(motions, 5)
    assert cli("index", "--model", saved_tiny_model, motions, "--out", tmp_path / "index").returncode == 0
    query = ["--query", TEXTS[1], "--top_k", "5"]
    by_torch = cli("search", "--index", tmp_path / "index", "--model", saved_tiny_model, *query)
    by_onnx = cli("search", "--index", tmp_path / "index", "--onnx", out, *query)
    assert by_torch.returncode == by_onnx.returncode == 0, by_onnx.stderr
    assert by_onnx.stdout == by_torch.stdout and "clip" in by_onnx.stdout
    files_onnx = cli("search", motions, "--onnx", out, *query)
    files_torch = cli("search", motions, "--model", saved_tiny_model, *query)
    assert files_onnx.returncode == 0 and files_onnx.stdout == files_torch.stdout

    no_int8 = cli("search", "--index", tmp_path / "index", "--onnx", out, "--int8", *query)
    assert no_int8.returncode == 2 and "--int8" in no_int8.stderr
    both = cli("search", "--index", tmp_path / "index", "--onnx", out, "--model", saved_tiny_model, *query)
    assert both.returncode == 2 and "not both" in both.stderr
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    refused = cli("export", "onnx", "--model", saved_tiny_model, "--out", tmp_path / "taken")
    assert refused.returncode == 2 and "not an earlier ONNX export" in refused.stderr

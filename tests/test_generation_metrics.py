"""Guo et al.'s generation metrics in the model's embedding space (`motionpatches.generation_metrics`) and the
`motionpatches score` command: known answers on constructed embeddings, brute-force comparisons, bad input."""

import json

import numpy as np
import pytest
import torch
from bvh_samples import bvh_text
from humanml3d_writer import features_from_positions

from motionpatches.generation_metrics import (
    fid,
    format_generation_metrics,
    frechet_distance,
    generation_metrics,
    generation_metrics_from_embeddings,
    shuffled_batches,
)

TEXTS = ["a person walks forward", "a person waves the left hand", "someone jumps", "a man kicks with his right leg"]


def whitened(rng, n: int, d: int) -> np.ndarray:
    """n rows whose sample mean is exactly 0 and sample covariance exactly the identity (up to round-off)."""
    x = rng.normal(size=(n, d))
    x -= x.mean(axis=0)
    return x @ np.linalg.inv(np.linalg.cholesky(np.cov(x, rowvar=False)).T)


def metrics_of(texts, motions, real=None, **kwargs):
    return generation_metrics_from_embeddings(texts, motions, real, **kwargs)


# ----------------------------------------------------------------------------- FID
def test_fid_of_a_set_against_itself_is_zero_and_ignores_row_order():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 16)) @ rng.normal(size=(16, 16)) + 3.0
    y = rng.normal(size=(150, 16)) * 2.0
    assert abs(fid(x, x)) < 1e-6
    assert fid(x[rng.permutation(len(x))], y[rng.permutation(len(y))]) == pytest.approx(fid(x, y), rel=1e-9)
    assert fid(x, y) > 1.0
    # fewer rows than dimensions: singular covariances, as 150 demo motions give in 256 dimensions
    few = rng.normal(size=(20, 64))
    assert abs(fid(few, few)) < 1e-6


def test_fid_of_shifted_means_is_the_squared_shift():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 8)) @ rng.normal(size=(8, 8))
    shift = rng.normal(size=8)
    # the sample covariances are the same and the sample means differ by `shift` exactly
    assert fid(x, x + shift) == pytest.approx(shift @ shift, rel=1e-9, abs=1e-9)


def test_fid_of_diagonal_gaussians_has_the_closed_form():
    rng = np.random.default_rng(2)
    a, b = rng.uniform(0.1, 4.0, size=6), rng.uniform(0.1, 4.0, size=6)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    expected = np.sum((np.sqrt(a) - np.sqrt(b)) ** 2) + np.sum((mu1 - mu2) ** 2)
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-12)
    # the same from samples whose statistics are exactly (mu, diag)
    x = mu1 + whitened(rng, 500, 6) * np.sqrt(a)
    y = mu2 + whitened(rng, 400, 6) * np.sqrt(b)
    assert fid(x, y) == pytest.approx(expected, rel=1e-9)
    # rotating both sets alike changes nothing
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    assert fid(x @ q, y @ q) == pytest.approx(expected, rel=1e-9)


def test_fid_agrees_with_scipy_sqrtm():
    linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(3)
    s1 = np.cov(rng.normal(size=(400, 12)) @ rng.normal(size=(12, 12)), rowvar=False)
    s2 = np.cov(rng.normal(size=(400, 12)) @ rng.normal(size=(12, 12)), rowvar=False)
    mu1, mu2 = rng.normal(size=12), rng.normal(size=12)
    reference = (mu1 - mu2) @ (mu1 - mu2) + np.trace(s1 + s2) - 2 * np.trace(linalg.sqrtm(s1 @ s2)).real
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(reference, rel=1e-8)


# ----------------------------------------------------------------------------- R-precision, MM-Dist, TMR-score
def test_matched_embeddings_have_r_precision_100_and_no_distance():
    rng = np.random.default_rng(4)
    texts = rng.normal(size=(100, 16))
    result = metrics_of(texts, 5.0 * texts)  # the features' scale does not matter to the cross-modal metrics
    for k in (1, 2, 3):
        assert result[f"r_precision_top{k}"] == 100.0 and result[f"r_precision_top{k}_ci95"] == 0.0
    assert result["mm_dist"] == pytest.approx(0.0, abs=1e-12)
    assert result["tmr_score"] == pytest.approx(1.0) and result["text_motion_cosine"] == pytest.approx(1.0)
    assert result["settings"]["r_precision_batches"] == 3 and result["settings"]["left_out_per_replication"] == 4


def test_unrelated_pairs_have_chance_r_precision():
    rng = np.random.default_rng(5)
    result = metrics_of(rng.normal(size=(3200, 32)), rng.normal(size=(3200, 32)), metrics=["r_precision"])
    for k in (1, 2, 3):
        assert result[f"r_precision_top{k}"] == pytest.approx(100.0 * k / 32, abs=1.0)
    assert set(result) == {"r_precision_top1", "r_precision_top1_ci95", "r_precision_top2", "r_precision_top2_ci95",
                           "r_precision_top3", "r_precision_top3_ci95", "unavailable", "settings"}  # fmt: skip


def test_r_precision_is_a_ranking_by_euclidean_distance_within_shuffled_batches_of_32():
    """Brute force: each text against the 32 motions of its batch, Euclidean distances of unit vectors."""
    rng = np.random.default_rng(6)
    texts = rng.normal(size=(75, 8))
    motions = texts + rng.normal(scale=1.2, size=texts.shape)
    result = metrics_of(texts, motions, replications=3, seed=7)
    unit_texts = texts / np.linalg.norm(texts, axis=1, keepdims=True)
    unit_motions = motions / np.linalg.norm(motions, axis=1, keepdims=True)
    hits = np.zeros((3, 3))
    for replication in range(3):
        # replication r of R-precision draws from default_rng([seed, r, 0])
        for batch in shuffled_batches(75, 32, np.random.default_rng([7, replication, 0])):
            for i in batch:
                distances = {j: np.linalg.norm(unit_texts[i] - unit_motions[j]) for j in batch}
                rank = 1 + sum(distance < distances[i] for distance in distances.values())
                hits[replication] += [rank <= k for k in (1, 2, 3)]
    percent = 100 * hits / 64  # 2 batches of 32; 11 pairs left out per replication
    for column, k in enumerate((1, 2, 3)):
        assert result[f"r_precision_top{k}"] == pytest.approx(percent[:, column].mean())
        assert result[f"r_precision_top{k}_ci95"] == pytest.approx(1.96 * percent[:, column].std() / np.sqrt(3))
    assert 0 < result["r_precision_top1"] < 100


def test_mm_dist_and_tmr_score_known_values():
    # every text and its motion at cosine 0.6: distance sqrt(2 - 1.2), TMR score (0.6 + 1) / 2
    angle = np.arccos(0.6)
    phases = np.linspace(0, 2 * np.pi, 40, endpoint=False)
    texts = np.stack([np.cos(phases), np.sin(phases), np.zeros(40)], axis=1)
    motions = np.cos(angle) * texts + np.sin(angle) * np.array([0.0, 0.0, 1.0])
    result = metrics_of(texts, 3.0 * motions, metrics=["mm_dist", "tmr_score"])
    assert result["mm_dist"] == pytest.approx(np.sqrt(0.8))
    assert result["tmr_score"] == pytest.approx(0.8) and result["text_motion_cosine"] == pytest.approx(0.6)


# ----------------------------------------------------------------------------- Diversity, MultiModality
def test_diversity_of_equidistant_motions_is_their_distance():
    """Motions at the corners of a simplex: every two different motions lie 2 * sqrt(2) apart."""
    texts = np.random.default_rng(8).normal(size=(40, 40))
    result = metrics_of(texts, 2.0 * np.eye(40), metrics=["diversity"])
    assert result["diversity"] == pytest.approx(2 * np.sqrt(2)) and result["diversity_ci95"] == pytest.approx(0.0)
    assert result["settings"]["diversity_pairs"] == 40  # fewer motions than 300: one pair per motion
    many = metrics_of(np.ones((400, 400)), 2.0 * np.eye(400), 3.0 * np.eye(400)[:350], metrics=["diversity"])
    assert many["diversity"] == pytest.approx(2 * np.sqrt(2)) and many["diversity_real"] == pytest.approx(
        3 * np.sqrt(2)
    )
    assert many["settings"]["diversity_pairs"] == 300


def test_diversity_is_seeded():
    rng = np.random.default_rng(9)
    texts, motions = rng.normal(size=(500, 8)), rng.normal(size=(500, 8))
    first = metrics_of(texts, motions, seed=3, metrics=["diversity"])
    assert metrics_of(texts, motions, seed=3, metrics=["diversity"]) == first
    assert metrics_of(texts, motions, seed=4, metrics=["diversity"])["diversity"] != first["diversity"]
    # its draws do not depend on the other metrics being computed
    assert metrics_of(texts, motions, seed=3)["diversity"] == first["diversity"]
    assert first["diversity_ci95"] > 0


def test_multimodality_of_identical_repeats_is_zero():
    rng = np.random.default_rng(10)
    texts, motions = rng.normal(size=(40, 8)), rng.normal(size=(40, 8))
    repeats = [np.repeat(rng.normal(size=(1, 8)), 30, axis=0) for _ in range(5)]
    result = metrics_of(texts, motions, multimodality_features=repeats)
    assert result["multimodality"] == 0.0 and result["multimodality_ci95"] == 0.0
    grouped = metrics_of(texts, np.repeat(motions[:10], 4, axis=0), text_ids=np.repeat(np.arange(10), 4).tolist())
    assert grouped["multimodality"] == 0.0 and grouped["settings"]["multimodality_texts"] == 10


def test_multimodality_is_the_mean_over_texts_of_the_distance_between_their_motions():
    rng = np.random.default_rng(11)
    texts, motions = rng.normal(size=(40, 4)), rng.normal(size=(40, 4))
    # text t has two motions 1 + t apart, and a text with a single motion is left out
    groups = [np.array([[0.0, 0, 0, 0], [1.0 + t, 0, 0, 0]]) for t in range(3)] + [np.ones((1, 4))]
    result = metrics_of(texts, motions, multimodality_features=groups, metrics=["multimodality"])
    assert result["multimodality"] == pytest.approx(2.0) and result["settings"]["multimodality_texts"] == 3


# ----------------------------------------------------------------------------- what is unavailable, bad input
def test_unavailable_metrics_are_listed_unless_requested():
    rng = np.random.default_rng(12)
    texts, motions = rng.normal(size=(20, 8)), rng.normal(size=(20, 8))
    result = metrics_of(texts, motions)
    assert set(result["unavailable"]) == {"r_precision", "fid", "multimodality"}
    assert "32" in result["unavailable"]["r_precision"] and "real" in result["unavailable"]["fid"]
    assert "r_precision_top1" not in result and "fid" not in result
    assert {"mm_dist", "diversity", "tmr_score"} <= set(result)
    assert "unavailable: " in format_generation_metrics(result)
    with pytest.raises(
        ValueError, match=r"r_precision: R-precision ranks each text among a batch of 32 motions; only 20"
    ):
        metrics_of(texts, motions, metrics=["r_precision"])
    with pytest.raises(ValueError, match="fid: FID compares generated with real motions; none were given"):
        metrics_of(texts, motions, metrics=["fid"])
    with pytest.raises(ValueError, match="multimodality: MultiModality needs several motions"):
        metrics_of(texts, motions, metrics="multimodality")
    assert metrics_of(texts, motions, batch_size=4, metrics=["r_precision"])["settings"]["r_precision_batches"] == 5


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(texts=np.ones((5, 8))), "text_embeds has 5 rows but motion_features has 40"),
        (dict(motions=np.full((40, 8), np.nan)), "motion_features row 0 holds NaN or inf"),
        (dict(real=np.ones((10, 6))), "real_motion_features has 6-d rows"),
        (dict(metrics=["fid", "precision"]), r"unknown metrics \['precision'\]"),
        (dict(replications=0), "replications must be an integer >= 1"),
        (dict(batch_size=1), "batch_size must be an integer >= 2"),
        (dict(text_ids=[0, 1]), "text_ids has 2 entries but there are 40 generated motions"),
        (dict(text_ids=[0] * 40, multimodality_features=[np.ones((2, 8))]), "not both"),
    ],
)
def test_bad_input_is_refused_naming_the_problem(change, message):
    rng = np.random.default_rng(13)
    inputs = dict(texts=rng.normal(size=(40, 8)), motions=rng.normal(size=(40, 8)), real=None)
    inputs.update({key: change.pop(key) for key in ("texts", "motions", "real") if key in change})
    with pytest.raises(ValueError, match=message):
        metrics_of(inputs["texts"], inputs["motions"], inputs["real"], **change)


# ----------------------------------------------------------------------------- with a model
@pytest.fixture(scope="module")
def evaluator(tiny_model):
    return tiny_model(TEXTS, num_frames=64)


@pytest.fixture(scope="module")
def motions(sample_motion):
    rng = np.random.default_rng(14)
    return [
        (sample_motion[i % 40 : i % 40 + 50] + rng.normal(scale=0.05, size=(1, 22, 3))).astype(np.float32)
        for i in range(36)
    ]


@torch.no_grad()
def reference_features(model, processor, motions, texts):
    motion = model.get_motion_features(**processor(motions=motions, return_tensors="pt")).pooler_output
    text = model.get_text_features(**processor(text=texts, return_tensors="pt")).pooler_output
    return text.double().numpy(), motion.double().numpy()


def test_generation_metrics_embeds_arrays_files_and_feature_rows_as_the_model_does(evaluator, motions, tmp_path):
    model, processor = evaluator
    np.save(tmp_path / "joints.npy", motions[1])
    np.save(tmp_path / "rows.npy", features_from_positions(motions[2]).astype(np.float32))
    generated = [motions[0], str(tmp_path / "joints.npy"), str(tmp_path / "rows.npy"), *motions[3:]]
    texts = [TEXTS[i % 4] for i in range(36)]
    groups = [motions[:3], motions[3:7]]
    result = generation_metrics(
        model,
        processor,
        generated,
        texts,
        motions[:12],
        multimodality_motions=groups,
        replications=4,
        embed_batch_size=5,
    )
    text, generated_features = reference_features(model, processor, generated, texts)
    real = reference_features(model, processor, motions[:12], texts[:1])[1]
    mm = [reference_features(model, processor, group, texts[:1])[1] for group in groups]
    expected = generation_metrics_from_embeddings(
        text, generated_features, real, multimodality_features=mm, replications=4
    )
    assert {"r_precision_top1", "mm_dist", "fid", "diversity", "diversity_real", "multimodality", "tmr_score"} <= set(
        result
    )
    assert result.keys() == expected.keys() and result["unavailable"] == {}
    for key, value in expected.items():
        assert result[key] == (value if isinstance(value, dict) else pytest.approx(value, rel=1e-5, abs=1e-6)), key


def test_generation_metrics_refuses_mismatched_counts_and_names_a_nan_motion(evaluator, motions):
    model, processor = evaluator
    with pytest.raises(ValueError, match="35 texts for 36 generated motions: give one text per generated motion"):
        generation_metrics(model, processor, motions, ["a person walks"] * 35)
    broken = [m.copy() for m in motions]
    broken[33][4, 2, 0] = np.nan
    with pytest.raises(ValueError, match=r"generated_motions\[33\]: contains NaN \(first at frame 4, joint 2\)"):
        generation_metrics(model, processor, broken, ["a person walks"] * 36, embed_batch_size=8)
    with pytest.raises(ValueError, match="fid: FID compares generated with real motions"):
        generation_metrics(model, processor, motions, ["a person walks"] * 36, metrics=["fid"])


# ----------------------------------------------------------------------------- the command
@pytest.fixture(scope="module")
def score_files(tmp_path_factory, motions):
    root = tmp_path_factory.mktemp("score")
    (root / "generated").mkdir()
    (root / "real").mkdir()
    texts = [TEXTS[i % 4] for i in range(34)]
    for i in range(34):
        np.save(root / "generated" / f"g{i:02d}.npy", motions[i])
    (root / "generated" / "g34.bvh").write_text(bvh_text(frames=40, fps=20.0))  # another rig, in the same folder
    texts.append("someone jumps")
    for i in range(8):
        np.save(root / "real" / f"r{i}.npy", motions[-1 - i])
    (root / "texts.txt").write_text("\n".join(texts) + "\n")
    for t in range(3):
        (root / "mm" / f"text{t}").mkdir(parents=True)
        for r in range(3):
            np.save(root / "mm" / f"text{t}" / f"m{r}.npy", motions[4 * t + r])
    return root, texts


def test_score_writes_the_report(score_files, cli, saved_tiny_model):
    root, texts = score_files
    out = root / "report.json"
    proc = cli(
        "score", "--model", saved_tiny_model, "--generated", root / "generated", "--texts", root / "texts.txt",
        "--real", root / "real", "--multimodality", root / "mm", "--replications", "3", "--output_file", out,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert [m["text"] for m in report["motions"]] == texts
    assert report["motions"][0]["file"].endswith("g00.npy") and report["motions"][-1]["file"].endswith("g34.bvh")
    metrics = report["metrics"]
    for key in ("r_precision_top1", "r_precision_top3_ci95", "mm_dist", "fid", "diversity", "diversity_real",
                "multimodality", "tmr_score"):  # fmt: skip
        assert np.isfinite(metrics[key]), key
    assert report["unavailable"] == {} and report["settings"]["num_generated"] == 35
    assert report["settings"]["num_real"] == 8 and report["settings"]["multimodality_texts"] == 3
    assert "R-precision top-1 (%)" in proc.stdout and str(out) in proc.stdout


def test_score_texts_as_json_or_a_texts_folder_give_the_same_report(score_files, cli, tmp_path, saved_tiny_model):
    root, texts = score_files
    mapping = {f"g{i:02d}" if i % 2 else f"g{i:02d}.npy": text for i, text in enumerate(texts[:34])}
    mapping["g34.bvh"] = texts[34]
    (tmp_path / "texts.json").write_text(json.dumps(mapping))
    (tmp_path / "texts").mkdir()
    for i, text in enumerate(texts):
        (tmp_path / "texts" / f"g{i:02d}.txt").write_text(f"{text}#a/DET person/NOUN#0.0#0.0\nanother caption##0#0\n")
    reports = []
    for texts_file in (root / "texts.txt", tmp_path / "texts.json", tmp_path / "texts"):
        out = tmp_path / f"{texts_file.stem}-report.json"
        proc = cli(
            "score", "--model", saved_tiny_model, "--generated", root / "generated", "--texts", texts_file,
            "--replications", "2", "--output_file", out,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        reports.append(json.loads(out.read_text()))
    assert reports[0]["metrics"] == reports[1]["metrics"] == reports[2]["metrics"]
    assert "fid" in reports[0]["unavailable"]


def test_score_reads_an_npz_archive_with_lengths(score_files, cli, tmp_path, motions, saved_tiny_model):
    root, _ = score_files
    padded = np.zeros((33, 60, 22, 3), dtype=np.float32)
    lengths = np.array([40 + i % 10 for i in range(33)])
    for i, length in enumerate(lengths):
        padded[i, :length] = motions[i][:length]
    np.savez(tmp_path / "generated.npz", motions=padded, lengths=lengths)
    (tmp_path / "texts.txt").write_text("\n".join(TEXTS[i % 4] for i in range(33)))
    out = tmp_path / "report"
    proc = cli(
        "score", "--model", saved_tiny_model, "--generated", tmp_path / "generated.npz",
        "--texts", tmp_path / "texts.txt", "--real", root / "real", "--replications", "2", "--output_file", out,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["motions"][5]["file"] == f"{tmp_path / 'generated.npz'}[5]"
    # the same as the library on the unpadded motions
    from motionpatches import MotionPatchProcessor, MotionTextModel

    model = MotionTextModel.from_pretrained(saved_tiny_model).eval()
    processor = MotionPatchProcessor.from_pretrained(saved_tiny_model)
    real = [np.load(root / "real" / f"r{i}.npy") for i in range(8)]
    expected = generation_metrics(
        model,
        processor,
        [m[:n] for m, n in zip(padded, lengths)],
        [TEXTS[i % 4] for i in range(33)],
        real,
        replications=2,
    )
    assert report["metrics"]["fid"] == pytest.approx(expected["fid"], rel=1e-5)
    assert report["metrics"]["r_precision_top1"] == pytest.approx(expected["r_precision_top1"])


@pytest.mark.parametrize(
    "texts, message",
    [
        ("one text\nanother\n", "has 2 lines for 35 generated motions"),
        ("{}", "has no text for 35 generated motions: g00.npy"),
    ],
)
def test_score_refuses_texts_that_do_not_match_the_motions(
    score_files, cli, tmp_path, saved_tiny_model, texts, message
):
    root, _ = score_files
    path = tmp_path / ("texts.json" if texts.startswith("{") else "texts.txt")
    path.write_text(texts)
    out = tmp_path / "report.json"
    proc = cli(
        "score", "--model", saved_tiny_model, "--generated", root / "generated", "--texts", path, "--output_file", out
    )
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert not out.exists()


def test_score_stops_at_a_nan_motion_unless_told_to_skip_it(score_files, cli, tmp_path, motions, saved_tiny_model):
    root, texts = score_files
    folder = tmp_path / "generated"
    folder.mkdir()
    for i in range(33):
        motion = motions[i].copy()
        if i == 3:
            motion[5, 7, 1] = np.nan
        np.save(folder / f"g{i:02d}.npy", motion)
    (tmp_path / "texts.txt").write_text("\n".join(texts[:33]))
    out = tmp_path / "report.json"
    args = (
        "score",
        "--model",
        saved_tiny_model,
        "--generated",
        folder,
        "--texts",
        tmp_path / "texts.txt",
        "--output_file",
        out,
    )
    proc = cli(*args)
    assert proc.returncode == 2 and "g03.npy holds NaN or inf (first at frame 5, joint 7)" in proc.stderr
    assert not out.exists()
    proc = cli(*args, "--on_error", "skip")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert report["skipped_files"] == 1 and len(report["motions"]) == 32
    assert [m["text"] for m in report["motions"]] == texts[:3] + texts[4:33]
    assert report["settings"]["r_precision_batches"] == 1  # the 32 left fill one batch


def test_score_refuses_a_requested_metric_before_loading_the_model(score_files, cli, tmp_path):
    root, _ = score_files
    out = tmp_path / "report.json"
    proc = cli(
        "score", "--model", tmp_path / "no-model", "--generated", root / "generated", "--texts", root / "texts.txt",
        "--metrics", "r_precision,fid", "--output_file", out,
    )  # fmt: skip
    assert proc.returncode == 2 and "fid: FID compares generated with real motions; none were given" in proc.stderr
    assert "r_precision" not in proc.stderr.split("requested metrics;")[1]  # 35 motions fill a batch of 32
    assert not out.exists()

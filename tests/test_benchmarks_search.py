"""Smoke tests of the search benchmark: what it times must be right (exact rows, recall, tuning, the table); how
fast is not tested."""

import re

import numpy as np
import pytest

from benchmarks import results, search


@pytest.fixture(scope="module")
def quick():
    """One `--quick --no-write` run for the module (about 10 s); RESULTS.md must come out untouched."""
    before = results.RESULTS_PATH.read_text() if results.RESULTS_PATH.exists() else None
    out = search.main(["--quick", "--no-write"])
    after = results.RESULTS_PATH.read_text() if results.RESULTS_PATH.exists() else None
    assert after == before
    return out


def quick_data(out):
    """The quick run's gallery and query sets, made again from the same seed."""
    config = out["config"]
    mixture = search.Mixture.make(config["clusters"], config["dim"], out["seed"])
    gallery = mixture.sample(config["n"], [out["seed"], 0])
    queries = search.query_sets(lambda count, s: mixture.sample(count, s), config, out["seed"])
    return gallery, queries


def brute_force_rows(gallery, queries, k):
    """Top-k rows by a full sort of every similarity row, equal scores by row: written out independently."""
    scores = queries.astype(np.float64) @ gallery.astype(np.float64).T
    return np.array([sorted(range(len(row)), key=lambda i: (-row[i], i))[:k] for row in scores])


def test_exact_rows_equal_a_brute_force_sort(quick):
    gallery, queries = quick_data(quick)
    # the ground truth of recall is the exact index's top 10 of the held-out queries; a float64 full sort agrees
    heldout = queries["heldout"][:40]
    found = quick["truth"]["heldout"][:40]
    expected = np.stack([np.argsort(-(gallery.astype(np.float64) @ q), kind="stable")[: search.K] for q in heldout])
    np.testing.assert_array_equal(found, expected)
    for check in quick[
        "checks"
    ].values():  # both exact searches (torch, FAISS in its place) against the argsort baseline
        assert check["equal"], check
        assert check["queries"] == quick["config"]["argsort_queries"]


def test_argsort_baseline_is_a_full_sort_with_ties_by_row():
    gallery = np.array([[1.0, 0.0], [0.6, 0.8], [1.0, 0.0], [0.0, 1.0], [0.8, 0.6]], dtype=np.float32)
    query = np.array([[1.0, 0.0]], dtype=np.float32)
    scores, rows = search.argsort_search(gallery, query, 4)
    np.testing.assert_array_equal(rows, [[0, 2, 4, 1]])  # rows 0 and 2 tie: the smaller first
    np.testing.assert_allclose(scores, [[1.0, 1.0, 0.8, 0.6]])
    np.testing.assert_array_equal(rows, brute_force_rows(gallery, query, 4))


def test_recall_on_a_hand_made_case():
    exact = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    found = np.array([[4, 3, 2, 1], [5, 9, -1, -1]])  # order does not matter; -1 (nothing found) is a miss
    assert search.recall_at_k(found, exact) == pytest.approx((4 / 4 + 1 / 4) / 2)
    assert search.recall_at_k(exact, exact) == 1.0


def test_recall_reported_is_recomputed_from_the_rows(quick):
    truth = quick["truth"]["heldout"]
    for row in quick["approximate"]:
        found = row["found"]
        assert found.shape == truth.shape
        overlap = [np.isin(f[f >= 0], e).sum() for f, e in zip(found, truth)]
        assert row["recall"] == pytest.approx(np.mean(overlap) / truth.shape[1])
        assert row["recall"] >= search.TARGET_RECALL  # tuned on other queries; the quick data is easy enough


def test_tuning_picks_the_smallest_value_reaching_the_target(quick):
    for row in quick["approximate"]:
        kind = row["search"].split()[-1]
        curve = {c["value"]: c["recall"] for c in quick["curves"] if c["index"] == kind}
        chosen = row["chosen"]
        assert chosen is not None and row["search_parameters"][row["knob"]] == chosen
        assert curve[chosen] >= search.TARGET_RECALL
        first = search.SEARCH_KNOBS[kind][1]
        assert chosen == first or curve[chosen - 1] < search.TARGET_RECALL
        assert all(recall < search.TARGET_RECALL for value, recall in curve.items() if value < chosen)


def test_the_table_has_its_columns_and_rows(quick):
    table = quick["table"]
    sections = table.split("\n\n")
    assert len(sections) == 4  # main, tuning, bandwidth, harder galleries
    header = sections[0].splitlines()[1]
    assert re.split(r"\s{2,}", header.strip()) == search.COLUMNS
    body = sections[0].splitlines()[3:]
    names = [line.strip() for line in body]
    for label in (
        "motionpatches search",
        "numpy argsort (full sort)",
        "MotionIndex exact",
        "MotionIndex ivf",
        "MotionIndex hnsw",
    ):
        assert any(line.startswith(label) for line in names), label
    assert sum(line.startswith("MotionIndex exact") for line in names) == 2
    assert "(extrapolated)" in body[0]
    assert re.split(r"\s{2,}", sections[1].splitlines()[1].strip()) == search.CURVE_COLUMNS
    assert re.split(r"\s{2,}", sections[2].splitlines()[1].strip()) == search.BANDWIDTH_COLUMNS
    assert re.split(r"\s{2,}", sections[3].splitlines()[1].strip()) == search.ROBUSTNESS_COLUMNS
    # one verdict for the exact index (its torch search) and one per approximate index
    assert len(quick["targets"]) == 3 and all(isinstance(met, bool) for _, met, _ in quick["targets"])
    assert "EXTRAPOLATED" in quick["notes"]


def test_compare_exact_flags_a_wrong_row():
    rows = np.array([[0, 1, 2], [3, 4, 5]])
    scores = np.array([[0.9, 0.8, 0.7], [0.9, 0.8, 0.7]])
    assert search.compare_exact(rows, scores, rows.copy(), scores.copy(), 1e-6)["equal"]
    swapped = np.array([[0, 2, 1], [3, 4, 5]])
    tied = np.array([[0.9, 0.8, 0.8], [0.9, 0.8, 0.7]])  # rows 1 and 2 score the same: either order is exact
    tie = search.compare_exact(swapped, tied, rows, tied.copy(), 1e-6)
    assert not tie["equal"] and tie["differ"] == 1 and tie["near_ties"]
    wrong = search.compare_exact(
        np.array([[0, 1, 9], [3, 4, 5]]), np.array([[0.9, 0.8, 0.5], [0.9, 0.8, 0.7]]), rows, scores, 1e-6
    )
    assert not wrong["equal"] and not wrong["near_ties"]


def test_mixture_is_clustered_unit_vectors():
    mixture = search.Mixture.make(clusters=20, dim=32, seed=0)
    gallery = mixture.sample(2000, [0, 0])
    queries = mixture.sample(50, [0, 1])
    np.testing.assert_allclose(np.linalg.norm(gallery, axis=1), 1.0, atol=1e-5)
    assert gallery.dtype == np.float32 and not np.isin(queries, gallery).all(axis=1).any()
    np.testing.assert_array_equal(gallery, mixture.sample(2000, [0, 0], out=np.empty_like(gallery)))
    nearest = (queries @ gallery.T).max(axis=1)
    unrelated = np.abs(np.einsum("nd,nd->n", gallery[:1000], gallery[1000:]))
    assert nearest.mean() > 0.6 > 3 * unrelated.mean()  # a query's nearest motion is far closer than a random one
    flat = search.isotropic(500, 32, 0)
    np.testing.assert_allclose(np.linalg.norm(flat, axis=1), 1.0, atol=1e-5)

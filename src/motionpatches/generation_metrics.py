"""Text-to-motion generation metrics computed in a motion–text model's embedding space.

    from motionpatches.generation_metrics import format_generation_metrics, generation_metrics

    result = generation_metrics(model, processor, generated_motions, texts, real_motions)
    print(format_generation_metrics(result))

Generation papers score their motions with the metrics of Guo et al. (CVPR 2022, "Generating Diverse and
Natural 3D Human Motions from Text"), computed by a motion–text embedding model; here any `MotionTextModel`
is that model. Text i is the text generated motion i was generated from. Notation: t_i and m_i are the
L2-normalised embeddings of text i and generated motion i (the space the model compares them in), f_i the
motion's un-normalised features (`model.get_motion_features(...).pooler_output`), ||.|| the Euclidean norm.

- **R-precision top-1/2/3** (percent): each replication shuffles the N (text, motion) pairs with a seeded
  permutation and cuts them into floor(N / 32) batches of 32; the last N mod 32 pairs are left out, as
  Guo's data loader drops its last partial batch. Within a batch every text ranks the batch's 32 motions by
  ||t_i - m_j||. Guo's evaluator compares unnormalised embeddings by Euclidean distance; this model is
  trained and used with cosine similarity, so its embeddings are normalised first, and on unit vectors
  ||t - m||^2 = 2 - 2 t.m: the ranking is the cosine ranking. The rank of text i is 1 + the number of
  motions of its batch strictly closer to it than m_i (a tie counts in its favour); top-k is the share of
  texts with rank <= k. Chance is k/32. Papers print it as a fraction (0.492 = 49.2 %).
- **MM-Dist** (multimodal distance, Guo's "matching score"): mean ||t_i - m_i|| over the N pairs, in
  [0, 2] (= sqrt(2 - 2 cos)). Guo averages it over the R-precision batches, leaving out the remainder;
  here every pair counts, so it does not depend on the shuffle.
- **FID**: the Fréchet distance between Gaussians fitted to the features f of the generated and of the
  real motions, mu the mean and S the covariance (`np.cov`, divided by N - 1, as Guo):

      FID = ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^{1/2})

  Tr (S1 S2)^{1/2} is the sum of the square roots of the eigenvalues of S1^{1/2} S2 S1^{1/2}, which has
  the eigenvalues of S1 S2 and is symmetric positive semi-definite, so `numpy.linalg.eigvalsh` computes it
  even when the covariances are singular (fewer motions than feature dimensions); eigenvalues round-off
  cannot tell from 0 (below D * machine epsilon * the largest) are taken as 0. No scipy needed. Features
  already normalised (passed to `generation_metrics_from_embeddings`) give the normalised variant STMC
  calls FID+.
- **Diversity**: mean ||f_a - f_b|| over 300 random pairs of generated motions; the first motions of
  the pairs are 300 different motions, the second of each pair any other motion. Guo draws two independent
  lists, so a pair is one motion twice (distance 0) with chance 1/N; here never (with the thousands of
  motions of HumanML3D's test split, the difference is a few hundredths of a percent). With N < 300
  motions, N pairs (every motion once as the first), recorded in `settings["diversity_pairs"]`; at least 2
  motions. `diversity_real` is the same for the real motions, the value a generator should come close to.
- **MultiModality**: for each text with n >= 2 motions generated from it, mean ||f_a - f_b|| over
  min(10, n) pairs of its motions drawn as for Diversity; then the mean over those texts (each text counts
  the same). Guo: 100 texts with 30 motions each, 10 pairs. The motions of one text are given as lists
  (`multimodality_motions`) or by grouping the generated motions (`text_ids`).
- **TMR-score** (Petrovich et al.'s TMR `get_score_matrix`, STMC's text-to-motion "M2T score"): mean
  over the pairs of (t_i . m_i + 1) / 2, in [0, 1]; `text_motion_cosine` is the mean cosine t_i . m_i.

R-precision, Diversity and MultiModality are repeated `replications` times (20 by default, as in the
literature), replication r of a metric drawing from `numpy.random.default_rng([seed, r, stream])` with a
stream per metric (0 R-precision, 1 Diversity, 2 real Diversity, 3 MultiModality), so one metric's draws
do not depend on which others run. Each is reported as the mean
over the replications and `<name>_ci95` = 1.96 * std / sqrt(replications) (population std, as Guo's
`get_metric_statistics`). Guo generates the motions again for each replication; here the motions are
given, so the interval covers the shuffling and pair sampling only. FID, MM-Dist and the TMR-score use
every motion and are single values. Everything is computed in float64.

A metric the inputs cannot give (no real motions for FID, fewer than 32 motions for R-precision, no text
with several motions for MultiModality) is left out of the result and listed with the reason in
`result["unavailable"]`; asking for it explicitly (`metrics=("fid", ...)`) raises a ValueError instead.
"""

import math
from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import torch

__all__ = [
    "METRICS",
    "R_PRECISION_TOP_K",
    "fid",
    "format_generation_metrics",
    "frechet_distance",
    "gaussian_statistics",
    "generation_metrics",
    "generation_metrics_from_embeddings",
    "motion_features",
    "shuffled_batches",
    "text_features",
    "unavailable_metrics",
]

METRICS = ("r_precision", "mm_dist", "fid", "diversity", "multimodality", "tmr_score")
R_PRECISION_TOP_K = (1, 2, 3)
BATCH_SIZE = 32
REPLICATIONS = 20
DIVERSITY_PAIRS = 300
MULTIMODALITY_PAIRS = 10
# one random stream per replicated metric: its draws do not depend on the others being computed
_STREAMS = {"r_precision": 0, "diversity": 1, "diversity_real": 2, "multimodality": 3}


# ----------------------------------------------------------------------------- from a model
def generation_metrics(
    model,
    processor,
    generated_motions,
    texts: Sequence[str],
    real_motions=None,
    *,
    multimodality_motions: Sequence | None = None,
    text_ids: Sequence[Hashable] | None = None,
    batch_size: int = BATCH_SIZE,
    replications: int = REPLICATIONS,
    seed: int = 0,
    diversity_pairs: int = DIVERSITY_PAIRS,
    multimodality_pairs: int = MULTIMODALITY_PAIRS,
    metrics: Sequence[str] | None = None,
    motion_fps=None,
    file_options=None,
    embed_batch_size: int = 64,
) -> dict:
    """Guo et al.'s generation metrics and the TMR-score of `generated_motions`, embedded by `model`.

    Args:
        model, processor: a `MotionTextModel` and its `MotionPatchProcessor` (the evaluator).
        generated_motions: N motions in any form the processor takes: `(T, J, 3)` arrays or tensors,
            HumanML3D / KIT-ML feature rows `(T, 263 | 251)`, `.npy` / `.bvh` / `.npz` paths, a list of those,
            or a `(N, T, J, 3)` array.
        texts: the N texts, text i the one motion i was generated from.
        real_motions: motions of the dataset (same forms), for FID and `diversity_real`.
        multimodality_motions: for MultiModality, one list of motions per text, all generated from that text.
        text_ids: instead, N ids grouping `generated_motions`: motions with the same id were generated from
            the same text.
        batch_size: R-precision batch size (32 in the literature).
        replications, seed: see the module docstring.
        diversity_pairs, multimodality_pairs: pairs drawn per replication (300 and 10 in the literature).
        metrics: the metrics to compute, of `METRICS`; each must then be computable or a ValueError says why.
            Default: every metric the inputs allow.
        motion_fps, file_options: the processor's, for every motion set (frame rate of arrays and `.npy`
            files; a `MotionFileOptions` for files).
        embed_batch_size: motions or texts embedded at once.

    Returns:
        `generation_metrics_from_embeddings`' dict.

    Raises:
        ValueError: texts and generated motions of different counts, a requested metric the inputs cannot
            give, a motion the processor refuses (NaN, wrong shape: named by its set and index), bad settings.
    """
    generated = _motion_list(generated_motions, "generated_motions")
    texts = _check_texts(texts, len(generated))
    real = None if real_motions is None else _motion_list(real_motions, "real_motions")
    groups = None
    if multimodality_motions is not None:
        if text_ids is not None:
            raise ValueError("give multimodality_motions or text_ids, not both")
        groups = [_motion_list(group, f"multimodality_motions[{i}]") for i, group in enumerate(multimodality_motions)]
    settings = _Settings(batch_size, replications, seed, diversity_pairs, multimodality_pairs)
    requested = _requested_metrics(metrics)
    # refused before anything is embedded: the counts are enough to know
    group_sizes = [len(group) for group in groups] if groups is not None else _group_sizes(text_ids, len(generated))
    num_real = None if real is None else len(real)
    _check_available(requested, _unavailable(len(generated), num_real, group_sizes, settings.batch_size))

    def embed(motions, name):
        return motion_features(
            model,
            processor,
            motions,
            motion_fps=motion_fps,
            file_options=file_options,
            batch_size=embed_batch_size,
            name=name,
        )

    return generation_metrics_from_embeddings(
        text_features(model, processor, texts, batch_size=embed_batch_size),
        embed(generated, "generated_motions"),
        None if real is None else embed(real, "real_motions"),
        multimodality_features=None
        if groups is None
        else [embed(group, f"multimodality_motions[{i}]") for i, group in enumerate(groups)],
        text_ids=text_ids,
        batch_size=batch_size,
        replications=replications,
        seed=seed,
        diversity_pairs=diversity_pairs,
        multimodality_pairs=multimodality_pairs,
        metrics=metrics,
    )


@torch.inference_mode()
def motion_features(
    model,
    processor,
    motions,
    *,
    motion_fps=None,
    file_options=None,
    batch_size: int = 64,
    name: str = "motions",
    labels: Sequence[str] | None = None,
) -> np.ndarray:
    """The un-normalised motion features `(N, D)` (`get_motion_features(...).pooler_output`), float64.

    `motion_fps` is one rate or one per motion. A motion the processor refuses is named by `name` and its
    index, e.g. "generated_motions[7] (clip.npy): contains NaN (first at frame 5, joint 3)", or by its entry
    of `labels` (one per motion) when given.
    """
    items = _motion_list(motions, name)
    if labels is not None and len(labels) != len(items):
        raise ValueError(f"labels has {len(labels)} entries for the {len(items)} {name}")
    rates = list(motion_fps) if isinstance(motion_fps, (list, tuple, np.ndarray)) else [motion_fps] * len(items)
    if len(rates) != len(items):
        raise ValueError(f"motion_fps has {len(rates)} rates for the {len(items)} {name}")
    device = _device(model)
    out = []
    for start in range(0, len(items), batch_size):
        batch, batch_rates = items[start : start + batch_size], rates[start : start + batch_size]
        try:
            inputs = processor(motions=batch, motion_fps=batch_rates, file_options=file_options, return_tensors="pt")
        except ValueError:
            names = labels[start : start + batch_size] if labels is not None else None
            _raise_for_culprit(processor, batch, batch_rates, file_options, name, start, names)
            raise
        lengths = inputs.get("motion_lengths")
        features = model.get_motion_features(
            motion_values=inputs["motion_values"].to(device),
            motion_lengths=None if lengths is None else lengths.to(device),
        ).pooler_output
        out.append(features.double().cpu().numpy())
    return np.concatenate(out)


@torch.inference_mode()
def text_features(model, processor, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
    """The un-normalised text features `(N, D)` (`get_text_features(...).pooler_output`), float64."""
    texts = _check_texts(texts, len(texts))
    device = _device(model)
    out = []
    for start in range(0, len(texts), batch_size):
        inputs = processor(text=list(texts[start : start + batch_size]), return_tensors="pt")
        keys = ("input_ids", "attention_mask", "token_type_ids")
        features = model.get_text_features(**{k: inputs[k].to(device) for k in keys if k in inputs}).pooler_output
        out.append(features.double().cpu().numpy())
    return np.concatenate(out)


# ----------------------------------------------------------------------------- from embeddings
def generation_metrics_from_embeddings(
    text_embeds,
    motion_features,
    real_motion_features=None,
    *,
    multimodality_features=None,
    text_ids: Sequence[Hashable] | None = None,
    batch_size: int = BATCH_SIZE,
    replications: int = REPLICATIONS,
    seed: int = 0,
    diversity_pairs: int = DIVERSITY_PAIRS,
    multimodality_pairs: int = MULTIMODALITY_PAIRS,
    metrics: Sequence[str] | None = None,
) -> dict:
    """The metrics of the module docstring from embeddings.

    Args:
        text_embeds: `(N, D)` text embeddings, row i the text of motion i (normalised here).
        motion_features: `(N, D)` features of the generated motions, un-normalised (FID, Diversity and
            MultiModality use them as given; the cross-modal metrics normalise them).
        real_motion_features: `(M, D)` features of real motions, for FID and `diversity_real`.
        multimodality_features: one `(n_i, D)` array per text (or a `(texts, n, D)` array), features of
            motions generated from the same text.
        text_ids: instead, N ids grouping the rows of `motion_features` by the text they were generated from.
        batch_size, replications, seed, diversity_pairs, multimodality_pairs, metrics: see `generation_metrics`.

    Returns:
        A dict: `r_precision_top1/2/3` (percent), `mm_dist`, `fid`, `diversity`, `diversity_real`,
        `multimodality`, `tmr_score`, `text_motion_cosine` (floats; each replicated metric also has its
        `<name>_ci95`), `unavailable` ({metric: reason} for those the inputs could not give) and `settings`
        (counts and parameters actually used).
    """
    settings = _Settings(batch_size, replications, seed, diversity_pairs, multimodality_pairs)
    requested = _requested_metrics(metrics)
    motions = _matrix(motion_features, "motion_features")
    texts = _matrix(text_embeds, "text_embeds")
    n, dim = motions.shape
    if len(texts) != n:
        raise ValueError(
            f"text_embeds has {len(texts)} rows but motion_features has {n}: one text per generated motion "
            "(the text it was generated from)"
        )
    if texts.shape[1] != dim:
        raise ValueError(f"text_embeds are {texts.shape[1]}-d but motion_features {dim}-d; they must share one space")
    real = None if real_motion_features is None else _matrix(real_motion_features, "real_motion_features", dim)
    groups = _multimodality_groups(multimodality_features, text_ids, motions, dim)
    unavailable = _unavailable(n, None if real is None else len(real), [len(g) for g in groups], batch_size)
    _check_available(requested, unavailable)
    wanted = [m for m in (requested or METRICS) if m not in unavailable]

    text_unit, motion_unit = _unit(texts), _unit(motions)
    result: dict = {}
    if "r_precision" in wanted:
        per_replication = np.array(
            [
                _r_precision(text_unit, motion_unit, shuffled_batches(n, batch_size, _rng(seed, r, "r_precision")))
                for r in range(replications)
            ]
        )
        for column, k in enumerate(R_PRECISION_TOP_K):
            _put_replicated(result, f"r_precision_top{k}", per_replication[:, column])
    if "mm_dist" in wanted:
        result["mm_dist"] = float(np.linalg.norm(text_unit - motion_unit, axis=1).mean())
    if "fid" in wanted:
        result["fid"] = fid(motions, real)
    if "diversity" in wanted:
        _put_replicated(result, "diversity", _diversity_replications(motions, settings, "diversity"))
        if real is not None and len(real) >= 2:
            _put_replicated(result, "diversity_real", _diversity_replications(real, settings, "diversity_real"))
    if "multimodality" in wanted:
        values = [
            _multimodality(groups, multimodality_pairs, _rng(seed, r, "multimodality")) for r in range(replications)
        ]
        _put_replicated(result, "multimodality", np.array(values))
    if "tmr_score" in wanted:
        cosines = np.einsum("nd,nd->n", text_unit, motion_unit)
        result["tmr_score"] = float(((cosines + 1.0) / 2.0).mean())
        result["text_motion_cosine"] = float(cosines.mean())
    result["unavailable"] = {m: unavailable[m] for m in (requested or METRICS) if m in unavailable}
    result["settings"] = {
        "num_generated": n,
        "num_real": None if real is None else len(real),
        "multimodality_texts": len(groups),
        "batch_size": batch_size,
        "r_precision_batches": n // batch_size,
        "left_out_per_replication": n % batch_size if n >= batch_size else n,
        "replications": replications,
        "seed": seed,
        "diversity_pairs": min(diversity_pairs, n),
        "diversity_real_pairs": None if real is None else min(diversity_pairs, len(real)),
        "multimodality_pairs": multimodality_pairs,
        "feature_dim": dim,
    }
    return result


# ----------------------------------------------------------------------------- FID
def gaussian_statistics(features) -> tuple[np.ndarray, np.ndarray]:
    """(mean, covariance) of the rows of `features` `(N, D)`, N >= 2; the covariance divided by N - 1 (`np.cov`)."""
    x = _matrix(features, "features")
    if len(x) < 2:
        raise ValueError(f"a covariance needs at least 2 feature rows; got {len(x)}")
    return x.mean(axis=0), np.cov(x, rowvar=False).reshape(x.shape[1], x.shape[1])


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^{1/2}), the Fréchet distance of N(mu1, S1) and N(mu2, S2).

    Tr (S1 S2)^{1/2} = sum of sqrt(eigenvalues of S1^{1/2} S2 S1^{1/2}), a symmetric positive semi-definite
    matrix with the eigenvalues of S1 S2; S1^{1/2} comes from S1's eigendecomposition. Eigenvalues (of S1 and
    of the product) that round-off cannot tell from 0, negative ones included, count as 0, so singular
    covariances are fine.
    """
    mu1, mu2 = np.asarray(mu1, dtype=np.float64).ravel(), np.asarray(mu2, dtype=np.float64).ravel()
    s1, s2 = np.atleast_2d(np.asarray(sigma1, dtype=np.float64)), np.atleast_2d(np.asarray(sigma2, dtype=np.float64))
    d = len(mu1)
    if len(mu2) != d or s1.shape != (d, d) or s2.shape != (d, d):
        raise ValueError(
            f"frechet_distance needs means of one length D and (D, D) covariances; got means {len(mu1)} and "
            f"{len(mu2)}, covariances {s1.shape} and {s2.shape}"
        )
    for name, value in (("mu1", mu1), ("sigma1", s1), ("mu2", mu2), ("sigma2", s2)):
        if not np.isfinite(value).all():
            raise ValueError(f"frechet_distance: {name} holds NaN or inf")
    eigenvalues, eigenvectors = np.linalg.eigh((s1 + s1.T) / 2)
    root1 = (eigenvectors * np.sqrt(_numerically_positive(eigenvalues))) @ eigenvectors.T
    product = root1 @ s2 @ root1
    trace_root = np.sqrt(_numerically_positive(np.linalg.eigvalsh((product + product.T) / 2))).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * trace_root)


def _numerically_positive(eigenvalues: np.ndarray) -> np.ndarray:
    """Eigenvalues of a positive semi-definite matrix with those round-off cannot tell from 0 set to 0 (below
    D * machine epsilon * the largest, numpy's `matrix_rank` tolerance): their square roots would add up to
    D * sqrt(epsilon) * scale, about 1e-6 for a singular 64 x 64 covariance."""
    tolerance = max(float(eigenvalues.max(initial=0.0)), 0.0) * len(eigenvalues) * np.finfo(np.float64).eps
    return np.where(eigenvalues > tolerance, eigenvalues, 0.0)


def fid(features1, features2) -> float:
    """The Fréchet distance between Gaussians fitted to two feature sets `(N1, D)` and `(N2, D)` (N >= 2 each)."""
    return frechet_distance(*gaussian_statistics(features1), *gaussian_statistics(features2))


# ----------------------------------------------------------------------------- sampling
def shuffled_batches(n: int, batch_size: int, rng: np.random.Generator) -> np.ndarray:
    """Row indices `(n // batch_size, batch_size)`: a permutation of range(n) drawn from `rng`, cut into
    batches, the last n % batch_size rows left out."""
    count = n // batch_size
    return rng.permutation(n)[: count * batch_size].reshape(count, batch_size)


def _rng(seed: int, replication: int, stream: str) -> np.random.Generator:
    return np.random.default_rng([seed, replication, _STREAMS[stream]])


def _pairs(n: int, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """`count` (<= n) pairs of different rows among n: the first rows all different, each second row uniform
    among the n - 1 others."""
    first = rng.choice(n, size=count, replace=False)
    return first, (first + rng.integers(1, n, size=count)) % n


def _r_precision(text_unit: np.ndarray, motion_unit: np.ndarray, batches: np.ndarray) -> list[float]:
    sims = np.einsum("bid,bjd->bij", text_unit[batches], motion_unit[batches])
    own = np.diagonal(sims, axis1=1, axis2=2)
    ranks = 1 + (sims > own[:, :, None]).sum(axis=2)
    return [100.0 * float((ranks <= k).mean()) for k in R_PRECISION_TOP_K]


def _mean_pair_distance(x: np.ndarray, count: int, rng: np.random.Generator) -> float:
    first, second = _pairs(len(x), min(count, len(x)), rng)
    return float(np.linalg.norm(x[first] - x[second], axis=1).mean())


def _diversity_replications(x: np.ndarray, settings: "_Settings", stream: str) -> np.ndarray:
    return np.array(
        [
            _mean_pair_distance(x, settings.diversity_pairs, _rng(settings.seed, r, stream))
            for r in range(settings.replications)
        ]
    )


def _multimodality(groups: list[np.ndarray], pairs: int, rng: np.random.Generator) -> float:
    return float(np.mean([_mean_pair_distance(group, pairs, rng) for group in groups]))


def _put_replicated(result: dict, name: str, values: np.ndarray) -> None:
    result[name] = float(np.mean(values))
    result[f"{name}_ci95"] = float(1.96 * np.std(values) / math.sqrt(len(values)))


# ----------------------------------------------------------------------------- report
def format_generation_metrics(result: Mapping) -> str:
    """The metrics as aligned lines, `name  mean ± ci95`, then the unavailable ones with their reasons."""
    rows = [
        ("R-precision top-1 (%)", "r_precision_top1"),
        ("R-precision top-2 (%)", "r_precision_top2"),
        ("R-precision top-3 (%)", "r_precision_top3"),
        ("MM-Dist", "mm_dist"),
        ("FID", "fid"),
        ("Diversity", "diversity"),
        ("Diversity (real)", "diversity_real"),
        ("MultiModality", "multimodality"),
        ("TMR-score", "tmr_score"),
        ("text-motion cosine", "text_motion_cosine"),
    ]
    lines = []
    for label, key in rows:
        if key in result:
            interval = f" ± {result[key + '_ci95']:.4f}" if key + "_ci95" in result else ""
            lines.append(f"{label:<24}{result[key]:>10.4f}{interval}")
    lines += [f"{metric:<24}unavailable: {reason}" for metric, reason in result.get("unavailable", {}).items()]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- checks
class _Settings:
    def __init__(self, batch_size, replications, seed, diversity_pairs, multimodality_pairs):
        _check_int(batch_size, "batch_size", 2)
        _check_int(replications, "replications", 1)
        _check_int(seed, "seed", 0)
        _check_int(diversity_pairs, "diversity_pairs", 1)
        _check_int(multimodality_pairs, "multimodality_pairs", 1)
        self.batch_size, self.replications, self.seed = int(batch_size), int(replications), int(seed)
        self.diversity_pairs, self.multimodality_pairs = int(diversity_pairs), int(multimodality_pairs)


def _check_int(value, name: str, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")


def _requested_metrics(metrics) -> tuple[str, ...] | None:
    if metrics is None:
        return None
    if isinstance(metrics, str):
        metrics = [metrics]
    unknown = [m for m in metrics if m not in METRICS]
    if unknown or not metrics:
        raise ValueError(f"unknown metrics {unknown}; choose among {', '.join(METRICS)}")
    return tuple(dict.fromkeys(metrics))


def unavailable_metrics(
    num_generated: int,
    num_real: int | None = None,
    multimodality_sizes: Sequence[int] = (),
    *,
    batch_size: int = BATCH_SIZE,
    requested: Sequence[str] | None = None,
) -> dict[str, str]:
    """{metric: why inputs of these sizes cannot give it}, from the counts alone (so a command can refuse its
    input before embedding anything): `num_generated` motions, `num_real` real ones (None: none given) and
    the number of motions generated from each text for MultiModality. Raises a ValueError naming the reasons
    when a metric of `requested` is among them."""
    _check_int(batch_size, "batch_size", 2)
    unavailable = _unavailable(num_generated, num_real, list(multimodality_sizes), batch_size)
    _check_available(_requested_metrics(requested), unavailable)
    return unavailable


def _unavailable(n: int, num_real: int | None, group_sizes: list[int], batch_size: int) -> dict[str, str]:
    reasons = {}
    if n < batch_size:
        reasons["r_precision"] = (
            f"R-precision ranks each text among a batch of {batch_size} motions; only {n} generated "
            f"motions were given (give at least {batch_size}, or a smaller batch_size)"
        )
    if num_real is None:
        reasons["fid"] = "FID compares generated with real motions; none were given (real_motions / --real)"
    elif num_real < 2 or n < 2:
        reasons["fid"] = (
            f"FID fits a covariance to each set: at least 2 motions each; got {n} generated, {num_real} real"
        )
    if n < 2:
        reasons["diversity"] = f"Diversity needs at least 2 generated motions; got {n}"
    if not any(size >= 2 for size in group_sizes):
        reasons["multimodality"] = (
            "MultiModality needs several motions generated from the same text; give multimodality_motions "
            "(one list per text) or text_ids (--multimodality DIR on the command line)"
        )
    return reasons


def _check_available(requested, unavailable: dict[str, str]) -> None:
    missing = [f"{metric}: {unavailable[metric]}" for metric in requested or () if metric in unavailable]
    if missing:
        raise ValueError("cannot compute the requested metrics; " + "; ".join(missing))


def _group_sizes(text_ids, n: int) -> list[int]:
    if text_ids is None:
        return []
    if len(text_ids) != n:
        raise ValueError(f"text_ids has {len(text_ids)} entries but there are {n} generated motions; one id per motion")
    sizes: dict = {}
    for text_id in text_ids:
        sizes[text_id] = sizes.get(text_id, 0) + 1
    return list(sizes.values())


def _multimodality_groups(multimodality_features, text_ids, motions: np.ndarray, dim: int) -> list[np.ndarray]:
    """The feature rows of each text with 2 or more motions."""
    if multimodality_features is not None and text_ids is not None:
        raise ValueError("give multimodality_features or text_ids, not both")
    if text_ids is not None:
        _group_sizes(text_ids, len(motions))
        rows: dict = {}
        for row, text_id in enumerate(text_ids):
            rows.setdefault(text_id, []).append(row)
        groups = [motions[r] for r in rows.values()]
    elif multimodality_features is not None:
        groups = [_matrix(group, f"multimodality_features[{i}]", dim) for i, group in enumerate(multimodality_features)]
    else:
        groups = []
    return [group for group in groups if len(group) >= 2]


def _matrix(array, name: str, dim: int | None = None) -> np.ndarray:
    if isinstance(array, torch.Tensor):
        array = array.detach().cpu().numpy()
    try:
        x = np.asarray(array, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a numeric (N, D) array; got {type(array).__name__}") from None
    if x.ndim != 2 or len(x) == 0 or x.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty 2-D (N, D) array; got shape {x.shape}")
    if dim is not None and x.shape[1] != dim:
        raise ValueError(f"{name} has {x.shape[1]}-d rows but the generated motions' features are {dim}-d")
    if not np.isfinite(x).all():
        row = int(np.argwhere(~np.isfinite(x))[0][0])
        raise ValueError(f"{name} row {row} holds NaN or inf")
    return x


def _unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if (norms == 0).any():
        raise ValueError(f"row {int(np.argmin(norms))} of the embeddings is all zeros; it has no direction")
    return x / norms


def _check_texts(texts, n: int) -> list[str]:
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise ValueError(f"texts must be a list of strings, one per generated motion; got {type(texts).__name__}")
    if len(texts) != n:
        raise ValueError(
            f"{len(texts)} texts for {n} generated motions: give one text per generated motion, the text it was "
            "generated from, in the same order"
        )
    for i, text in enumerate(texts):
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"texts[{i}] must be a non-empty string; got {text!r}")
    return list(texts)


def _motion_list(motions, name: str) -> list:
    from motionpatches.processors.feature_extraction_motionpatches import as_motion_list

    if motions is None:
        raise ValueError(f"{name} is None; give motions")
    if isinstance(motions, Sequence) and not isinstance(motions, str) and len(motions) == 0:
        raise ValueError(f"{name} is empty; give at least one motion")
    return as_motion_list(motions)


def _raise_for_culprit(processor, batch, rates, file_options, name: str, start: int, labels=None) -> None:
    """Raise the error of the first motion of `batch` the processor refuses alone, named by its index in `name`
    (or by its label)."""
    for offset, (item, rate) in enumerate(zip(batch, rates)):
        try:
            processor(motions=[item], motion_fps=[rate], file_options=file_options, return_tensors="pt")
        except ValueError as err:
            # the processor numbers the motions of its call; the caller knows them by `name` and index
            message = str(err).removeprefix("motion 0")
            separator = "" if message.startswith((" (", ":")) else ": "
            label = labels[offset] if labels is not None else f"{name}[{start + offset}]"
            raise ValueError(f"{label}{separator}{message}") from None


def _device(model) -> torch.device:
    try:
        return next(model.parameters()).device
    except (StopIteration, AttributeError):
        return torch.device("cpu")

"""Zero-shot action classification with a motion-text model: each label becomes a sentence, each motion
is assigned the label whose sentence it is most similar to, as CLIP does for images.

    scores = zero_shot_scores(model, processor, motions, ["walk", "run", "sit_down"])
    report = classification_report(scores, true_labels, ["walk", "run", "sit_down"])
    print(format_confusion_matrix(report))

The model was trained on captions such as "a person walks forward", so a bare label ("walk") is a poor
query; `build_prompts` puts each label into a caption-like template ("a person walk"), and `label_text`
lets a label be phrased as the captions phrase it ("walks"). Scores are cosine similarities
(the model's `logit_scale` does not change their order). Only torch and numpy are used.
"""

from collections.abc import Iterable, Iterator, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "DEFAULT_TEMPLATE",
    "build_prompts",
    "classification_report",
    "format_confusion_matrix",
    "zero_shot_scores",
]

DEFAULT_TEMPLATE = "a person {label}"
TOP_K = 5
_CORNER = "true \\ predicted"


def build_prompts(
    labels: Sequence[str], template: str = DEFAULT_TEMPLATE, label_text: Mapping[str, str] | None = None
) -> list[str]:
    """One sentence per label: `template` with `{label}` replaced by the label's words.

    A label's words are `label_text[label]` when given, else the label with underscores as spaces
    (dataset labels such as `sit_down` are identifiers; the text tower was trained on sentences).
    """
    if "{label}" not in template:
        raise ValueError(f"template {template!r} has no '{{label}}' placeholder for the label's words")
    label_text = label_text or {}
    return [template.replace("{label}", label_text.get(label, str(label).replace("_", " "))) for label in labels]


@torch.inference_mode()
def zero_shot_scores(
    model,
    processor,
    motions: Iterable,
    labels: Sequence[str],
    template: str = DEFAULT_TEMPLATE,
    batch_size: int = 64,
    motion_fps: float | None = None,
    label_text: Mapping[str, str] | None = None,
) -> np.ndarray:
    """Cosine similarity of every motion with every label's prompt, `(num_motions, num_labels)` float32.

    motions: any iterable of `(T, J, 3)` arrays, tensors or `.npy` paths (a list, a `datasets` column);
        read `batch_size` at a time, so a long split never sits in memory as motion-patch images.
    motion_fps: frame rate of the motions, when it differs from the model's (the processor resamples).
    The model is put in eval mode: dropout would make the scores random.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    if len(labels) == 0:
        raise ValueError("zero_shot_scores needs at least one label")
    model.eval()
    device = next(model.parameters()).device
    text_embeds = _text_embeddings(model, processor, build_prompts(labels, template, label_text), batch_size, device)
    rows = [
        _motion_embeddings(model, processor, batch, motion_fps, device) @ text_embeds.T
        for batch in _batches(motions, batch_size)
    ]
    if not rows:
        raise ValueError("zero_shot_scores got no motions")
    return torch.cat(rows).float().cpu().numpy()


def _batches(items: Iterable, size: int) -> Iterator[list]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _text_embeddings(model, processor, prompts: list[str], batch_size: int, device) -> torch.Tensor:
    """Normalised prompt embeddings, computed once for all motions."""
    embeds = []
    for batch in _batches(prompts, batch_size):
        inputs = processor(text=batch, return_tensors="pt")
        outputs = model.get_text_features(**{name: value.to(device) for name, value in inputs.items()})
        embeds.append(F.normalize(outputs.pooler_output.float(), dim=-1))
    return torch.cat(embeds)


def _motion_embeddings(model, processor, motions: list, motion_fps: float | None, device) -> torch.Tensor:
    motion_values = processor(motions=motions, motion_fps=motion_fps, return_tensors="pt")["motion_values"]
    outputs = model.get_motion_features(motion_values=motion_values.to(device))
    return F.normalize(outputs.pooler_output.float(), dim=-1)


def classification_report(scores, true_labels: Sequence[str], labels: Sequence[str]) -> dict:
    """Accuracy of predicting each row's highest-scoring label.

    scores: `(num_samples, num_labels)`, column j scoring `labels[j]`; true_labels: one per row.
    Returns `top1` and `top5` (percent; top-5 means within the best min(5, num_labels) labels),
    `confusion_matrix` (rows: true label, columns: predicted label, both in `labels` order),
    `per_class_accuracy` (percent, None for a label with no samples), `labels` and `num_samples`.
    Ties go to the earlier label, as with `np.argmax`, so top-1 always agrees with the confusion matrix.
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = list(labels)
    true_index = _label_indices(scores, true_labels, labels)
    # a label's rank is its position in a stable sort of the row by decreasing score
    order = np.argsort(-scores, axis=1, kind="stable")
    ranks = np.argmax(order == true_index[:, None], axis=1)
    predicted = order[:, 0]
    confusion = np.zeros((len(labels), len(labels)), dtype=np.int64)
    np.add.at(confusion, (true_index, predicted), 1)
    support = confusion.sum(axis=1)
    per_class = {
        label: (100.0 * float(confusion[i, i] / support[i]) if support[i] else None) for i, label in enumerate(labels)
    }
    return {
        "top1": 100.0 * float(np.mean(ranks < 1)),
        "top5": 100.0 * float(np.mean(ranks < min(TOP_K, len(labels)))),
        "confusion_matrix": confusion.tolist(),
        "per_class_accuracy": per_class,
        "labels": labels,
        "num_samples": len(true_index),
    }


def _label_indices(scores: np.ndarray, true_labels: Sequence[str], labels: list) -> np.ndarray:
    """Column index of each row's true label, after checking that scores, labels and rows agree."""
    if len(set(labels)) != len(labels):
        duplicates = sorted({label for label in labels if labels.count(label) > 1})
        raise ValueError(f"labels must be distinct; repeated: {duplicates}")
    if scores.ndim != 2 or scores.shape[1] != len(labels):
        raise ValueError(
            f"scores has shape {scores.shape}; expected (num_samples, {len(labels)}), one column per label"
        )
    true_labels = list(true_labels)
    if len(true_labels) != scores.shape[0]:
        raise ValueError(f"{len(true_labels)} true labels for {scores.shape[0]} rows of scores")
    if not true_labels:
        raise ValueError("classification_report got no samples")
    column = {label: j for j, label in enumerate(labels)}
    unknown = sorted({str(label) for label in true_labels if label not in column})
    if unknown:
        raise ValueError(f"true labels not among the {len(labels)} labels: {unknown}")
    return np.array([column[label] for label in true_labels], dtype=np.int64)


def format_confusion_matrix(report: Mapping) -> str:
    """The report's confusion matrix as fixed-width text, with per-class accuracy in the last column.

    Columns are headed by label numbers rather than names so that the table stays narrow with many
    (or long) labels; each row shows its number and name.
    """
    labels = [str(label) for label in report["labels"]]
    matrix = report["confusion_matrix"]
    count_width = max(len(str(len(labels) - 1)), *(len(str(n)) for row in matrix for n in row))
    name_width = max(len(_CORNER), *(len(f"{i} {label}") for i, label in enumerate(labels)))
    lines = [_CORNER.ljust(name_width) + "".join(f" {j:>{count_width}}" for j in range(len(labels))) + f" {'acc %':>6}"]
    for i, (label, row) in enumerate(zip(labels, matrix)):
        accuracy = report["per_class_accuracy"][report["labels"][i]]
        lines.append(
            f"{i} {label}".ljust(name_width)
            + "".join(f" {n:>{count_width}}" for n in row)
            + " "
            + ("-" if accuracy is None else f"{accuracy:.1f}").rjust(6)
        )
    return "\n".join(lines)

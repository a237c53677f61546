"""The model card (README.md) written next to a saved model, by the trainer and by the checkpoint converter.

`write_model_card` owns the card's frame (Hub metadata, title, how to load); its callers give the
description and the sections that differ: `trained_model_card` for `train.py`, the converter its own.
"""

import os

from motionpatches.atomic import write_text_atomically
from motionpatches.retrieval import format_metrics_table

HOW_TO_LOAD = """```python
import motionpatches  # registers the classes: no remote code needed
from transformers import AutoModel, AutoProcessor

model = AutoModel.from_pretrained(path)
processor = AutoProcessor.from_pretrained(path)
```
Without the `motionpatches` package, `trust_remote_code=True` runs the code files saved in this folder."""


def write_model_card(
    output_dir: str, *, description: str, sections: dict[str, str], tags=(), license: str | None = None
) -> str:
    """Write `output_dir/README.md` and return its path. `sections` maps headings to markdown."""
    metadata = ["library_name: transformers"]
    if license:
        metadata.append(f"license: {license}")
    metadata.append(f"tags: [{', '.join(['motionpatches', 'motion-retrieval', 'text-to-motion-retrieval', *tags])}]")
    body = "\n\n".join(f"## {heading}\n{text.strip()}" for heading, text in {"Usage": HOW_TO_LOAD, **sections}.items())
    card = f"---\n{chr(10).join(metadata)}\n---\n\n# {os.path.basename(os.path.normpath(output_dir))}\n\n{description.strip()}\n\n{body}\n"
    path = os.path.join(output_dir, "README.md")
    write_text_atomically(path, card)  # a kill leaves the previous card, never half of one
    return path


def report_summary_markdown(report: dict) -> str:
    """A few lines of a failure report (`motionpatches.training.report.failure_report`) for a model card: R@1 per
    query and averaged over groups, the left/right confusion and the three most confused group pairs."""
    groups = "caption groups" if report["group_by"] == "caption" else f"groups of `{report['group_by']}`"
    per_query, macro = report["per_query"], report["macro"]
    lines = [
        f"On {report['num_queries']} test pairs ({report['num_groups']} {groups}), protocol `all`:",
        "",
        f"- text-to-motion R@1 {per_query['t2m/R@1']:.1f} per query, {macro['t2m/R@1']:.1f} averaged over {groups} "
        f"(motion-to-text {per_query['m2t/R@1']:.1f} / {macro['m2t/R@1']:.1f}): the second weighs every group the same.",
    ]
    confusion = report["left_right_confusion"]
    if confusion is not None:
        lines.append(
            f"- left/right: {confusion:.1f}% of the texts naming one side retrieve first a motion of the other side."
        )
    if report["group_by"] != "caption" and report["failed_queries"]:
        lines.append(
            f"- {report['failed_within_group']} of the {report['failed_queries']} texts missed at rank 1 retrieve "
            f"first another caption of their own `{report['group_by']}`."
        )
    pairs = report["confused_pairs"][:3]
    if pairs:
        lines.append("- most confused (text's group -> group retrieved first instead, times):")
        lines += [f'  - "{p["query_group"]}" -> "{p["retrieved_group"]}" ({p["count"]})' for p in pairs]
    elif not report["failed_queries"]:
        lines.append("- no text query failed at rank 1.")
    return "\n".join(lines)


def trained_model_card(
    args: dict,
    data,
    validation: dict | None,
    test: dict,
    steps: int,
    best_step: int,
    failure_summary: str | None = None,
) -> dict:
    """`write_model_card` keyword arguments describing a model trained by `train.py`; `failure_summary` (markdown,
    e.g. `report_summary_markdown(failure_report(test_embeddings))`) becomes a "Failure modes" section."""
    args = {key: getattr(value, "name", value) for key, value in args.items()}  # a Skeleton by its name
    sizes = ", ".join(f"{split} {len(rows)}" for split, rows in data.items())
    settings = "\n".join(
        f"| `{key}` | `{value}` |" for key, value in sorted(args.items()) if value is not None and key != "push_to_hub"
    )
    validation_table = format_metrics_table(validation) if validation else "(no validation run)"
    sections = {
        "Training data": f"Dataset `{args.get('dataset_name')}` ({args.get('dataset_dir') or 'generated offline'}), "
        f"skeleton `{args.get('skeleton')}`, rows: {sizes}. One random caption and one random "
        f"{args.get('num_frames')}-frame window per motion and step.",
        "Training": f"{steps} optimizer steps; the weights are those of step {best_step}, chosen on the validation "
        f"split.\n\n| setting | value |\n| --- | --- |\n{settings}",
        "Results": "Protocol `all`: the whole split; a text's correct motions are all motions sharing its exact caption.\n\n"
        f"Validation (model selection):\n```\n{validation_table}\n```\n\nTest:\n```\n{format_metrics_table(test)}\n```",
    }
    if failure_summary:
        sections["Failure modes"] = failure_summary
    description = (
        "A Motion Patches text<->motion model (Yu et al., CVPR 2024) trained with the `motionpatches` package."
    )
    return {"description": description, "sections": sections, "tags": ("contrastive",)}

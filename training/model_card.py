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


def trained_model_card(args: dict, data, validation: dict | None, test: dict, steps: int, best_step: int) -> dict:
    """`write_model_card` keyword arguments describing a model trained by `train.py`."""
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
    description = (
        "A Motion Patches text<->motion model (Yu et al., CVPR 2024) trained with the `motionpatches` package."
    )
    return {"description": description, "sections": sections, "tags": ("contrastive",)}

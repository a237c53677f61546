"""The model card (README.md) written next to a trained model."""

import os

from motionpatches.retrieval import format_metrics_table


def write_model_card(output_dir: str, args: dict, data, validation: dict | None, test: dict, steps: int, best_step: int) -> str:
    args = {key: getattr(value, "name", value) for key, value in args.items()}  # a Skeleton by its name
    sizes = ", ".join(f"{split} {len(rows)}" for split, rows in data.items())
    settings = "\n".join(
        f"| `{key}` | `{value}` |" for key, value in sorted(args.items()) if value is not None and key not in ("push_to_hub",)
    )
    validation_table = format_metrics_table(validation) if validation else "(no validation run)"
    card = f"""---
library_name: transformers
tags: [motionpatches, motion-retrieval, text-to-motion-retrieval, contrastive]
---

# {os.path.basename(os.path.normpath(output_dir))}

A Motion Patches text<->motion model (Yu et al., CVPR 2024) trained with the `motionpatches` package.
Load it with `AutoModel.from_pretrained(path, trust_remote_code=True)` and
`AutoProcessor.from_pretrained(path, trust_remote_code=True)`.

## Training data
Dataset `{args.get('dataset_name')}` ({args.get('dataset_dir') or 'generated offline'}), skeleton `{args.get('skeleton')}`,
rows: {sizes}. One random caption and one random {args.get('num_frames')}-frame window per motion and step.

## Training
{steps} optimizer steps; the weights are those of step {best_step}, chosen on the validation split.

| setting | value |
| --- | --- |
{settings}

## Results (protocol `all`: the whole split; a text's correct motions are all motions sharing its exact caption)

Validation (model selection):
```
{validation_table}
```

Test:
```
{format_metrics_table(test)}
```
"""
    path = os.path.join(output_dir, "README.md")
    with open(path, "w", encoding="utf-8") as f:
        f.write(card)
    return path

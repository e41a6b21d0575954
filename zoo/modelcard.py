"""The model card (README.md of a model folder): a YAML block the Hub reads, then prose."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from zoo.family import Family


def model_card(model: Family, recipe: Any, metrics: dict[str, float], samples: Path | None = None) -> str:
    """Card text for a trained model: metadata (library, tags, dataset, metrics), usage, samples."""
    family = model.name
    metadata = {
        "library_name": "zoo",
        "tags": ["zoo", family, "generative", "image-generation"],
        "datasets": [recipe.data],
        "model-index": [
            {
                "name": f"{family}-{recipe.data}",
                "results": [
                    {
                        "task": {"type": "image-generation"},
                        "dataset": {"name": recipe.data, "type": recipe.data, "split": "test"},
                        "metrics": [
                            {"type": k, "value": round(float(v), 4), "name": f"test {k}"} for k, v in metrics.items()
                        ],
                    }
                ],
            }
        ],
    }
    rows = "\n".join(f"| {k} | {v:.4g} |" for k, v in metrics.items())
    picture = f"\n## Samples\n\n![samples](samples/{samples.name})\n" if samples else ""
    params = sum(p.numel() for p in model.parameters())
    return f"""---
{yaml.safe_dump(metadata, sort_keys=False).strip()}
---

# {family} trained on {recipe.data}

A `{family}` model ({params:,} parameters) trained with zoo on
`{recipe.data}` for {recipe.train.epochs} epochs (seed {recipe.seed}).

## Test metrics

| metric | value |
|---|---|
{rows}

## Use

```python
import zoo

model = zoo.load("path/to/this/folder")
images = model.sample(16)
```
{picture}"""

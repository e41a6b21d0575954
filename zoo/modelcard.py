"""The model card (README.md of a model folder): a YAML block the Hub reads, then prose."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from zoo.family import Family
from zoo.runfolder import SAMPLES_DIR


def model_card(
    model: Family,
    recipe: Any | None,
    metrics: dict[str, float],
    samples: Path | None = None,
    repo_id: str | None = None,
    license: str = "apache-2.0",
) -> str:
    """Card text for a model: metadata (library, license, tags, dataset, metrics), usage, samples.
    `recipe` is None for a model that zoo did not train; `repo_id` names the Hub repo in the
    usage snippet (else it loads the folder)."""
    family = model.name
    data = recipe.data if recipe is not None else None
    metadata: dict[str, Any] = {
        "library_name": "zoo",
        "license": license,
        "tags": ["zoo", family, "generative", "image-generation"],
    }
    if data:
        metadata["datasets"] = [data]
    if data and metrics:
        metadata["model-index"] = [
            {
                "name": f"{family}-{data}",
                "results": [
                    {
                        "task": {"type": "image-generation"},
                        "dataset": {"name": data, "type": data, "split": "test"},
                        "metrics": [
                            {"type": k, "value": round(float(v), 4), "name": f"test {k}"} for k, v in metrics.items()
                        ],
                    }
                ],
            }
        ]
    params = sum(p.numel() for p in model.parameters())
    if recipe is not None:
        title = f"# {family} trained on {data}"
        about = (
            f"A `{family}` model ({params:,} parameters) trained with zoo on\n"
            f"`{data}` for {recipe.train.epochs} epochs (seed {recipe.seed})."
        )
    else:
        title, about = f"# {family}", f"A `{family}` model ({params:,} parameters) saved with zoo."
    rows = "\n".join(f"| {k} | {v:.4g} |" for k, v in metrics.items())
    table = f"## Test metrics\n\n| metric | value |\n|---|---|\n{rows}\n\n" if metrics else ""
    picture = f"\n## Samples\n\n![samples]({SAMPLES_DIR}/{samples.name})\n" if samples else ""
    return f"""---
{yaml.safe_dump(metadata, sort_keys=False).strip()}
---

{title}

{about}

{table}{usage_section(repo_id)}{picture}"""


def usage_section(repo_id: str | None) -> str:
    """The card's '## Use' section: how to get and load the model from `repo_id` (else its folder)."""
    source = repo_id or "path/to/this/folder"
    shell = f"\n```bash\nzoo pull {repo_id}\nzoo sample {repo_id} -n 64 -o samples.png\n```\n" if repo_id else ""
    return f"""{USE_HEADING}
{shell}
```python
import zoo

model = zoo.load("{source}")
images = model.sample(16)
```
"""


def with_usage(card: str, repo_id: str) -> str:
    """`card` with its '## Use' section replaced by one for `repo_id` (appended if it has none);
    the rest of the card, edits included, is kept."""
    section = usage_section(repo_id)
    match = _USE_SECTION.search(card)
    if match is None:
        return card.rstrip("\n") + "\n\n" + section
    rest = card[match.end() :]
    return card[: match.start()] + section + ("\n" + rest if rest.strip() else "")


def card_images(card: str) -> list[str]:
    """Relative paths of the images a card shows (`![alt](path)`), to publish alongside it."""
    return [m for m in _IMAGE.findall(card) if "://" not in m]


USE_HEADING = "## Use"
_USE_SECTION = re.compile(r"^## Use\n.*?(?=^## |\Z)", re.S | re.M)
_IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")

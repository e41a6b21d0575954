"""The model card (README.md of a model folder): a YAML block the Hub reads, then prose."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from zoo.family import Family
from zoo.outputs import output_suffix
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
        metadata["model-index"] = _model_index(family, data, metrics)
    params = sum(p.numel() for p in model.parameters())
    if recipe is not None:
        title = f"# {family} trained on {data}"
        about = (
            f"A `{family}` model ({params:,} parameters) trained with zoo on\n"
            f"`{data}` for {recipe.train.epochs} epochs (seed {recipe.seed})."
        )
    else:
        title, about = f"# {family}", f"A `{family}` model ({params:,} parameters) saved with zoo."
    table = _metrics_table(metrics) + "\n" if metrics else ""
    picture = f"\n## Samples\n\n![samples]({SAMPLES_DIR}/{samples.name})\n" if samples else ""
    return f"""---
{yaml.safe_dump(metadata, sort_keys=False).strip()}
---

{title}

{about}

{table}{usage_section(repo_id, output_suffix(model.config.input_shape))}{picture}"""


def with_metrics(card: str, family: str, data: str, metrics: dict[str, float]) -> str:
    """`card` with `metrics` (from `zoo eval` on `data`) merged into its metadata's model-index
    and its test-metrics table; a metric already there for the same data and name takes the
    new value (metrics for other data are replaced)."""
    match = _FRONT_MATTER.match(card)
    metadata = (yaml.safe_load(match.group(1)) if match else None) or {}
    body = card[match.end() :] if match else card
    merged = {**_card_metrics(metadata, data), **metrics}
    metadata["model-index"] = _model_index(family, data, merged)
    table = _metrics_table(merged)
    if _METRICS_SECTION.search(body):
        body = _METRICS_SECTION.sub(lambda _: table, body, count=1)
    else:
        use = _USE_SECTION.search(body)
        at = use.start() if use else len(body)
        body = body[:at] + table + "\n" + body[at:]
    return f"---\n{yaml.safe_dump(metadata, sort_keys=False).strip()}\n---\n{body}"


def _model_index(family: str, data: str, metrics: dict[str, float]) -> list[dict[str, Any]]:
    """The Hub's model-index block: one result on `data`'s test split."""
    return [
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


def _card_metrics(metadata: dict[str, Any], data: str) -> dict[str, float]:
    """The metrics on `data` in a card's model-index (empty when it has none or it is malformed)."""
    try:
        result = metadata["model-index"][0]["results"][0]
        if result["dataset"]["name"] != data:
            return {}
        return {str(row["type"]): float(row["value"]) for row in result["metrics"]}
    except (KeyError, IndexError, TypeError, ValueError):
        return {}


def _metrics_table(metrics: dict[str, float]) -> str:
    rows = "\n".join(f"| {k} | {v:.4g} |" for k, v in metrics.items())
    return f"## Test metrics\n\n| metric | value |\n|---|---|\n{rows}\n"


def usage_section(repo_id: str | None, suffix: str = ".png") -> str:
    """The card's '## Use' section: how to get and load the model from `repo_id` (else its
    folder); `zoo sample` writes samples`suffix` (.png for images, .npy for vectors and signals)."""
    source = repo_id or "path/to/this/folder"
    shell = f"\n```bash\nzoo pull {repo_id}\nzoo sample {repo_id} -n 64 -o samples{suffix}\n```\n" if repo_id else ""
    return f"""{USE_HEADING}
{shell}
```python
import zoo

model = zoo.load("{source}")
images = model.sample(16)
```
"""


def with_usage(card: str, repo_id: str, suffix: str = ".png") -> str:
    """`card` with its '## Use' section replaced by one for `repo_id` (appended if it has none);
    the rest of the card, edits included, is kept."""
    section = usage_section(repo_id, suffix)
    match = _USE_SECTION.search(card)
    if match is None:
        return card.rstrip("\n") + "\n\n" + section
    rest = card[match.end() :]
    return card[: match.start()] + section + ("\n" + rest if rest.strip() else "")


def card_images(card: str) -> list[str]:
    """Relative paths of the images a card shows (`![alt](path)`), to publish alongside it."""
    return [m for m in _IMAGE.findall(card) if "://" not in m]


USE_HEADING = "## Use"
_FRONT_MATTER = re.compile(r"\A---\n(.*?)\n---\n", re.S)
_METRICS_SECTION = re.compile(r"^## Test metrics\n.*?(?=^## |\Z)", re.S | re.M)
_USE_SECTION = re.compile(r"^## Use\n.*?(?=^## |\Z)", re.S | re.M)
_IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")

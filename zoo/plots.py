"""Loss curves from a run's metrics.jsonl, drawn with matplotlib (Agg, no display)."""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from zoo import atomic


def loss_curve(records: Iterable[dict[str, Any]], path: str | os.PathLike, metric: str = "loss") -> Path:
    """Training `metric` against step (from 'train' records) with held-out values ('eval')."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = list(records)
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for event, style, label in (("train", "-", "train"), ("eval", "o-", "test")):
        points = [(r["step"], r[metric]) for r in records if r.get("event") == event and metric in r]
        if points:
            steps, values = zip(*points, strict=True)
            ax.plot(steps, values, style, label=label, markersize=3)
    ax.set_xlabel("step")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    atomic.write_bytes(path, buffer.getvalue())
    return Path(path)

"""Plots drawn with matplotlib (Agg, no display): loss curves from a run's metrics.jsonl, and
line plots of 1-D signals."""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo import atomic

if TYPE_CHECKING:
    import numpy as np


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


def signal_plot(
    signals: np.ndarray, path: str | os.PathLike, references: np.ndarray | None = None, panels: int = 16
) -> Path:
    """Line plots of 1-D signals (N, C, L), one panel each for the first `panels`, a line per
    channel; `references` (same shape, e.g. the originals of reconstructions) drawn dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = min(len(signals), panels)
    columns = min(n, 4)
    rows = -(-n // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3 * columns, 2 * rows), dpi=100, squeeze=False, sharex=True)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, ax in enumerate(axes.flat):
        if i >= n:
            ax.axis("off")
            continue
        for c in range(signals.shape[1]):
            colour = colours[c % len(colours)]
            if references is not None:
                ax.plot(references[i, c], "--", color=colour, alpha=0.5, linewidth=1)
            ax.plot(signals[i, c], color=colour, linewidth=1)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    if references is not None:
        fig.suptitle("solid: model output, dashed: original", fontsize=9)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    atomic.write_bytes(path, buffer.getvalue())
    return Path(path)

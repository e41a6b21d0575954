"""Plots drawn with matplotlib (Agg, no display): loss curves from a run's metrics.jsonl, line
plots of 1-D signals, and 2-D maps of codes."""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo import atomic

if TYPE_CHECKING:
    import numpy as np
    from torch import Tensor


def pyplot():
    """matplotlib.pyplot on the Agg backend (imported on first use: it is slow to import)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | os.PathLike) -> Path:
    """Write `fig` as a PNG atomically and close it."""
    plt = pyplot()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    atomic.write_bytes(path, buffer.getvalue())
    return Path(path)


def loss_curve(records: Iterable[dict[str, Any]], path: str | os.PathLike, metric: str = "loss") -> Path:
    """Training `metric` against step (from 'train' records) with held-out values ('eval')."""
    plt = pyplot()
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
    return save_figure(fig, path)


def signal_plot(
    signals: np.ndarray, path: str | os.PathLike, references: np.ndarray | None = None, panels: int = 16
) -> Path:
    """Line plots of 1-D signals (N, C, L), one panel each for the first `panels`, a line per
    channel; `references` (same shape, e.g. the originals of reconstructions) drawn dashed."""
    plt = pyplot()
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
    return save_figure(fig, path)


def check_map_codes(codes: Tensor) -> None:
    """Refuse, in one line, codes that `latent_map` cannot place: discrete ones, or codes of
    fewer than 2 dimensions (a few examples' codes tell, before a whole split is encoded)."""
    from zoo.errors import InvalidInputError

    if not codes.is_floating_point():
        raise InvalidInputError(
            "these codes are discrete (indices into a codebook): a map of them would place them by "
            "index number, which means nothing"
        )
    if codes.flatten(1).shape[1] < 2:
        raise InvalidInputError("a latent map needs codes with at least 2 dimensions")


def latent_map(codes: Tensor, labels: Tensor | None, path: str | os.PathLike, title: str = "") -> Path:
    """A scatter plot of continuous codes (N, D) in 2-D, coloured by class: the codes themselves
    when D = 2, else their first two principal components (the share of variance they hold is
    shown)."""
    check_map_codes(codes)
    plt = pyplot()
    flat = codes.detach().flatten(1).double().cpu().numpy()
    if flat.shape[1] == 2:
        points, axes = flat, ("z1", "z2")
    else:
        from sklearn.decomposition import PCA

        pca = PCA(n_components=2, random_state=0).fit(flat)
        points = pca.transform(flat)
        shares = pca.explained_variance_ratio_ * 100
        axes = (f"PC1 ({shares[0]:.0f}% of variance)", f"PC2 ({shares[1]:.0f}%)")
    fig, ax = plt.subplots(figsize=(6, 5), dpi=100)
    if labels is None:
        ax.scatter(points[:, 0], points[:, 1], s=4, alpha=0.6)
    else:
        values = labels.cpu().numpy()
        for c in sorted(set(values.tolist())):
            chosen = values == c
            ax.scatter(points[chosen, 0], points[chosen, 1], s=4, alpha=0.7, label=str(c), color=plt.cm.tab10(c % 10))
        ax.legend(title="class", markerscale=3, fontsize=7, loc="best")
    ax.set_xlabel(axes[0])
    ax.set_ylabel(axes[1])
    ax.set_title(title)
    return save_figure(fig, path)

"""Train/test splits held in memory as tensors, served in batches without per-sample Python."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from zoo.datasets.reference import parse_data_ref, resolve_loader
from zoo.errors import IncompatiblePluginError, InvalidInputError
from zoo.family import Batch
from zoo.registry import datasets


@dataclass
class TensorData:
    """x: float32 (N, *shape): images in [0, 1], vectors (N, D) and 1-D signals (N, C, L) any
    finite values; y: int64 (N,) class labels or None; factors: int64
    (N, F) ground-truth factor indices where the data has them (dsprites), or None."""

    x: Tensor
    y: Tensor | None = None
    factors: Tensor | None = None

    def __post_init__(self) -> None:
        if self.y is not None and len(self.y) != len(self.x):
            raise InvalidInputError(f"data has {len(self.x)} inputs but {len(self.y)} labels")
        if self.factors is not None and len(self.factors) != len(self.x):
            raise InvalidInputError(f"data has {len(self.x)} inputs but {len(self.factors)} factor rows")

    def __len__(self) -> int:
        return len(self.x)

    def batch(self, index: Tensor) -> Batch:
        return Batch(self.x[index], None if self.y is None else self.y[index])

    def head(self, n: int) -> Batch:
        return self.batch(torch.arange(min(n, len(self)), device=self.x.device))

    def batches(self, size: int) -> Iterator[Batch]:
        """Every example, in order, in batches of `size` (the last one shorter)."""
        for start in range(0, len(self), size):
            yield self.batch(torch.arange(start, min(start + size, len(self)), device=self.x.device))

    def to(self, device: str | torch.device) -> TensorData:
        """The same data on `device` (this object itself when it is there already)."""
        if self.x.device == torch.device(device):
            return self
        moved = [None if t is None else t.to(device) for t in (self.x, self.y, self.factors)]
        return TensorData(*moved)


@dataclass
class Splits:
    name: str
    train: TensorData
    test: TensorData
    num_classes: int = 0
    #: Names of the columns of `factors` (e.g. shape, scale, orientation, pos_x, pos_y).
    factor_names: tuple[str, ...] = ()

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.train.x.shape[1:])

    def digest(self) -> str:
        """sha256 of the contents of both splits (inputs, labels, factors, in order): a
        resumed run checks with it that its data is the data it trained on."""
        digest = hashlib.sha256()
        for part in (self.train, self.test):
            for tensor in (part.x, part.y, part.factors):
                if tensor is None:
                    digest.update(b"none;")
                    continue
                tensor = tensor.detach().cpu().contiguous()
                digest.update(f"{tensor.dtype}{list(tensor.shape)};".encode())
                digest.update(tensor.numpy())
        return digest.hexdigest()


def standardized(splits: Splits) -> Splits:
    """The splits with every feature (vectors) or channel (signals, images) shifted and scaled
    to mean 0 and std 1 by the statistics of the training split alone, so that nothing of the
    test split leaks into training; constant features are only shifted. The statistics are
    numpy's, in float64: torch's reductions to one value depend on its thread count, and the
    data must not (a resume, or a run under torchrun, would differ)."""
    x = splits.train.x.detach().cpu().numpy()
    axes = (0, *range(2, x.ndim))
    mean = x.mean(axis=axes, dtype=np.float64, keepdims=True)
    std = x.std(axis=axes, dtype=np.float64, ddof=1, keepdims=True)
    mean = torch.from_numpy(mean).float().to(splits.train.x.device)
    std = torch.from_numpy(np.where(std > 0, std, 1.0)).float().to(splits.train.x.device)

    def scaled(part: TensorData) -> TensorData:
        return TensorData(((part.x - mean) / std).float(), part.y, part.factors)

    return Splits(splits.name, scaled(splits.train), scaled(splits.test), splits.num_classes, splits.factor_names)


def load_dataset(name: str, **options: Any) -> Splits:
    """The splits of a data reference: a dataset name (see `zoo list`), `folder:PATH`,
    `hf:REPO`, `npy:PATH`, `npz:PATH` or `csv:PATH`, optionally with `?key=value&…` loader
    options; keywords add options."""
    ref = parse_data_ref(name)
    loader, options = resolve_loader(ref, options)
    splits = loader(**options)
    if not isinstance(splits, Splits):
        raise InvalidInputError(f"dataset '{name}' loader returned {type(splits).__name__}, not Splits")
    declared = tuple(datasets.get(ref.name).spec.shape) if ref.scheme is None else ()
    if declared and splits.shape != declared:  # else a family fails on it far from the cause
        raise IncompatiblePluginError(
            f"dataset '{ref.name}' declares examples of shape {list(declared)}, "
            f"but its loader gave {list(splits.shape)}"
        )
    for split, part in (("train", splits.train), ("test", splits.test)):
        bad = 0 if _all_finite(part.x) else int((~torch.isfinite(part.x)).sum())
        if bad:
            raise InvalidInputError(
                f"dataset '{name}' has {bad} NaN or infinite values in its {split} split "
                f"({part.x.numel()} in all); zoo trains on finite inputs in [0, 1]"
            )
    return splits


def _all_finite(x: Tensor) -> bool:
    """Whether every value of x is finite: its least and greatest values are (NaN propagates
    to both), found in one pass, 40-80× faster than the bool tensor that counting needs."""
    if not x.is_floating_point() or x.numel() == 0:
        return True
    return bool(torch.isfinite(torch.stack(torch.aminmax(x))).all())

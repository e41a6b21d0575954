"""Train/test splits held in memory as tensors, served in batches without per-sample Python."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from zoo.errors import InvalidInputError
from zoo.family import Batch
from zoo.registry import datasets, load_object


@dataclass
class TensorData:
    """x: float32 (N, *shape) in [0, 1]; y: int64 (N,) class labels or None."""

    x: Tensor
    y: Tensor | None = None

    def __post_init__(self) -> None:
        if self.y is not None and len(self.y) != len(self.x):
            raise InvalidInputError(f"data has {len(self.x)} inputs but {len(self.y)} labels")

    def __len__(self) -> int:
        return len(self.x)

    def batch(self, index: Tensor) -> Batch:
        return Batch(self.x[index], None if self.y is None else self.y[index])

    def head(self, n: int) -> Batch:
        return self.batch(torch.arange(min(n, len(self))))


@dataclass
class Splits:
    name: str
    train: TensorData
    test: TensorData
    num_classes: int = 0

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.train.x.shape[1:])


def load_dataset(name: str, **options: Any) -> Splits:
    """The named dataset's splits (see `zoo list` for names)."""
    entry = datasets.get(name)
    loader = load_object(entry.spec.loader, f"dataset '{name}'")
    splits = loader(**options)
    if not isinstance(splits, Splits):
        raise InvalidInputError(f"dataset '{name}' loader returned {type(splits).__name__}, not Splits")
    return splits

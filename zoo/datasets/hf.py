"""`hf:REPO` — an image dataset from the Hugging Face Hub (or a local folder `datasets`
understands), through the optional `datasets` package (`pip install 'zoo[hf]'`).

The image column is the first `Image` feature, the label column the first `ClassLabel`
(none: unlabelled), unless named. The `test` split is used when the dataset has one;
otherwise `test_fraction` of `train` is held out. Offline, the dataset must already be in
the `datasets` cache (HF_HOME) or be a local path.
"""

from __future__ import annotations

import numpy as np

from zoo.datasets.builtin import given_splits, make_splits
from zoo.datasets.pictures import to_array
from zoo.errors import InvalidInputError, NotFoundError


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
    try:
        loaded = datasets.load_dataset(repo, revision=revision)
    except Exception as err:  # network, cache and format errors of any kind: one line
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise NotFoundError(
            f"could not load Hugging Face dataset '{repo}': {first} (offline it must be in the datasets cache "
            "under HF_HOME, or be a local folder)"
        ) from None
    if train_split not in loaded:
        raise NotFoundError(f"hf:{repo} has no split '{train_split}' (it has: {', '.join(loaded)})")
    train = loaded[train_split]
    image_col = image_column or _column(train.features, datasets.Image, repo, "image")
    label_col = label_column or _column(train.features, datasets.ClassLabel, repo, None)
    for column in (image_col, label_col):
        if column is not None and column not in train.features:
            raise InvalidInputError(f"hf:{repo} has no column '{column}' (it has: {', '.join(train.features)})")

    def arrays(part, channels_):
        images = to_array(part[image_col], [f"{repo}[{i}]" for i in range(len(part))], size, channels_)
        labels = None if label_col is None else np.asarray(part[label_col], dtype=np.int64)
        return images, labels

    name = f"hf:{repo}"
    images, labels = arrays(train, channels)
    if test_split not in loaded:
        return make_splits(name, images, labels, test_fraction, seed)
    test_images, test_labels = arrays(loaded[test_split], images.shape[1])
    if test_images.shape[1:] != images.shape[1:]:
        raise InvalidInputError(f"hf:{repo} test images differ in size from train images; pass the option size=N")
    return given_splits(name, (images, labels), (test_images, test_labels))


def _column(features, kind, repo: str, required: str | None) -> str | None:
    for name, feature in features.items():
        if isinstance(feature, kind):
            return name
    if required:
        raise InvalidInputError(f"hf:{repo} has no {required} column; name it with the option {required}_column=")
    return None

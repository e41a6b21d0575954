import numpy as np
import pytest
import torch

from zoo.datasets.builtin import stratified_split
from zoo.datasets.splits import load_dataset
from zoo.errors import NotFoundError


def test_mnist_5k_split_is_400_train_100_test_per_class_and_disjoint():
    splits = load_dataset("mnist-5k")
    assert splits.shape == (1, 28, 28) and splits.num_classes == 10
    assert torch.bincount(splits.train.y).tolist() == [400] * 10
    assert torch.bincount(splits.test.y).tolist() == [100] * 10
    train_rows = {row.numpy().tobytes() for row in splits.train.x}
    assert not any(row.numpy().tobytes() in train_rows for row in splits.test.x[:200])
    assert splits.train.x.dtype == torch.float32
    assert splits.train.x.min() == 0.0 and splits.train.x.max() == 1.0


def test_mnist_5k_split_is_fixed_and_batches_mix_classes():
    a, b = load_dataset("mnist-5k"), load_dataset("mnist-5k")
    assert torch.equal(a.test.x, b.test.x) and torch.equal(a.train.y, b.train.y)
    assert len(set(a.test.y[:32].tolist())) >= 8


def test_digits_is_scaled_to_unit_range_with_a_stratified_fifth_held_out():
    splits = load_dataset("digits")
    assert splits.shape == (1, 8, 8)
    assert len(splits.train) + len(splits.test) == 1797
    assert len(splits.test) == 359
    assert splits.train.x.max() == 1.0 and splits.train.x.min() == 0.0


def test_stratified_split_keeps_class_proportions():
    labels = np.repeat(np.arange(3), [10, 20, 30])
    train, test = stratified_split(labels, 0.2)
    assert np.bincount(labels[test]).tolist() == [2, 4, 6]
    assert len(set(train) & set(test)) == 0 and len(train) + len(test) == 60


def test_unknown_dataset_suggests_a_name():
    with pytest.raises(NotFoundError, match="did you mean 'digits'"):
        load_dataset("digit")

import numpy as np
import pytest
import torch

from zoo.datasets.builtin import stratified_split
from zoo.datasets.splits import Splits, TensorData, load_dataset
from zoo.errors import InvalidInputError, NotFoundError


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


def poisoned_digits(split: str = "train", values: str = "nan", empty_test: bool = False):  # -> Splits
    """digits with `values` ("nan", "inf", "-inf", or several joined by +) in scattered pixels
    of `split`; with `empty_test`, no test examples at all."""
    from zoo.datasets.builtin import load_digits
    from zoo.datasets.splits import TensorData

    splits = load_digits()
    x = getattr(splits, split).x
    for i, value in enumerate(str(values).split("+")):
        x[7 * i + 3, 0, i % 8, 5] = float(value)
    if empty_test:
        splits.test = TensorData(splits.test.x[:0], splits.test.y[:0])
    return splits


@pytest.fixture
def poisoned():
    from zoo.plugin import DatasetSpec
    from zoo.registry import datasets

    datasets.register(DatasetSpec("poisoned-digits", loader=poisoned_digits, shape=(1, 8, 8), num_classes=10))
    yield
    datasets.unregister("poisoned-digits")


@pytest.mark.parametrize(
    ("split", "values", "count"),
    [("train", "nan", 1), ("train", "inf", 1), ("test", "-inf", 1), ("test", "nan+inf+-inf", 3)],
)
def test_non_finite_values_in_either_split_are_counted_and_refused(poisoned, split, values, count):
    with pytest.raises(InvalidInputError, match=f"has {count} NaN or infinite values in its {split} split"):
        load_dataset(f"poisoned-digits?split={split}&values={values}")


def test_finite_data_and_an_empty_split_pass_the_check(poisoned):
    data = load_dataset("poisoned-digits?values=0.5&empty_test=true")
    assert len(data.test) == 0 and torch.isfinite(data.train.x).all()


def test_a_dataset_whose_loader_breaks_its_declared_shape_is_refused_by_name():
    """Not a family's 'an input of size 5 is too small for 3 stride-2 levels' later on."""
    from zoo.errors import IncompatiblePluginError
    from zoo.plugin import DatasetSpec
    from zoo.registry import datasets

    def narrow_digits() -> Splits:
        splits = load_dataset("digits")
        return Splits("narrow", TensorData(splits.train.x[..., :5]), TensorData(splits.test.x[..., :5]))

    datasets.register(DatasetSpec("narrow-digits", loader=narrow_digits, shape=(1, 8, 8)))
    try:
        with pytest.raises(IncompatiblePluginError) as err:
            load_dataset("narrow-digits")
        assert (
            str(err.value)
            == "dataset 'narrow-digits' declares examples of shape [1, 8, 8], but its loader gave [1, 8, 5]"
        )
    finally:
        datasets.unregister("narrow-digits")


def test_batches_cover_every_example_in_order_and_the_cpu_copy_is_the_data_itself():
    data = TensorData(torch.arange(10.0).view(10, 1), torch.arange(10) % 3, torch.zeros(10, 2, dtype=torch.long))
    batches = list(data.batches(4))
    assert [len(b.x) for b in batches] == [4, 4, 2]
    assert torch.equal(torch.cat([b.x for b in batches]), data.x)
    assert torch.equal(torch.cat([b.y for b in batches]), data.y)
    assert data.to("cpu") is data
    moved = data.to("meta")
    assert [t.device.type for t in (moved.x, moved.y, moved.factors)] == ["meta"] * 3

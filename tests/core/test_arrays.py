"""npy:/npz:/csv: loaders on files the tests write, the built-in breast-cancer vectors, and
train-statistics standardisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import zoo
from zoo.errors import InvalidInputError, NotFoundError


def test_npy_vectors_and_signals_load_with_their_shape_and_a_seeded_split(tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "v.npy", rng.normal(size=(50, 7)))
    np.save(tmp_path / "s.npy", rng.normal(size=(40, 2, 33)).astype(np.float32))
    vectors = zoo.load_dataset(f"npy:{tmp_path / 'v.npy'}")
    signals = zoo.load_dataset(f"npy:{tmp_path / 's.npy'}?test_fraction=0.25")
    assert vectors.shape == (7,) and (len(vectors.train), len(vectors.test)) == (40, 10)
    assert signals.shape == (2, 33) and (len(signals.train), len(signals.test)) == (30, 10)
    assert vectors.train.x.dtype == torch.float32 and vectors.train.y is None and vectors.num_classes == 0
    # Every row lands in exactly one split, unchanged.
    rows = np.load(tmp_path / "v.npy").astype(np.float32)
    both = torch.cat([vectors.train.x, vectors.test.x]).numpy()
    assert sorted(map(tuple, both)) == sorted(map(tuple, rows))
    again = zoo.load_dataset(f"npy:{tmp_path / 'v.npy'}")
    assert torch.equal(again.test.x, vectors.test.x)
    other = zoo.load_dataset(f"npy:{tmp_path / 'v.npy'}?seed=1")
    assert not torch.equal(other.test.x, vectors.test.x)


def test_npz_labels_stratify_the_split(tmp_path):
    x = np.arange(60 * 3, dtype=np.float64).reshape(60, 3)
    y = np.repeat([0, 1, 2], 20)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    splits = zoo.load_dataset(f"npz:{tmp_path / 'd.npz'}")
    assert splits.num_classes == 3 and splits.shape == (3,)
    assert torch.bincount(splits.test.y).tolist() == [4, 4, 4]
    # Labels travel with their rows: row i of x is i*3 … i*3+2, and its label is i // 20.
    assert torch.equal(splits.train.y, (splits.train.x[:, 0] // 3 // 20).long())


def test_csv_with_a_header_and_a_named_label_column(tmp_path):
    lines = ["a,b,kind,c"] + [f"{i},{i * 0.5},{'cat' if i % 2 else 'dog'},{-i}" for i in range(20)]
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n\n")
    splits = zoo.load_dataset(f"csv:{tmp_path / 't.csv'}?label=kind")
    assert splits.shape == (3,) and splits.num_classes == 2
    x, y = torch.cat([splits.train.x, splits.test.x]), torch.cat([splits.train.y, splits.test.y])
    assert torch.equal(x[:, 1], x[:, 0] * 0.5) and torch.equal(x[:, 2], -x[:, 0])
    assert torch.equal(y, (x[:, 0] % 2 == 0).long())  # names in sorted order: cat 0, dog 1
    by_index = zoo.load_dataset(f"csv:{tmp_path / 't.csv'}?label=2")
    assert torch.equal(by_index.test.x, splits.test.x)


def test_the_row_index_pandas_writes_is_left_out_and_another_unnamed_column_refused(tmp_path):
    """`df.to_csv("t.csv")` writes an unnamed first column 0, 1, 2, …: read as a feature, it
    told the model each row's position."""
    rows = [f"{i},{i * 0.5},{-i},{'cat' if i % 2 else 'dog'}" for i in range(20)]
    (tmp_path / "t.csv").write_text("\n".join([",a,b,kind", *rows]) + "\n")
    splits = zoo.load_dataset(f"csv:{tmp_path / 't.csv'}?label=kind")
    x = torch.cat([splits.train.x, splits.test.x])
    assert splits.shape == (2,) and torch.equal(x[:, 1], -2 * x[:, 0])
    (tmp_path / "u.csv").write_text("\n".join(["a,,kind", *(r.split(",", 1)[1] for r in rows)]) + "\n")
    with pytest.raises(InvalidInputError, match=r"u.csv' has a column without a name in its header \(index 1\)"):
        zoo.load_dataset(f"csv:{tmp_path / 'u.csv'}?label=kind")


def test_a_csv_header_of_numbered_columns_is_a_header(tmp_path):
    """Pixel columns named 0, 1, 2, … beside a word: the word above a number, or the label's name."""
    lines = ["0,1,2,label"] + [f"{i / 20},{i / 40},{i / 80},{i % 2}" for i in range(20)]
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    for query in ("?label=label", "?label=-1"):
        splits = zoo.load_dataset(f"csv:{tmp_path / 't.csv'}{query}")
        assert splits.shape == (3,) and len(splits.train) + len(splits.test) == 20
    names = ["0,1,kind"] + [f"{i / 20},{i / 40},{'cat' if i % 2 else 'dog'}" for i in range(20)]
    (tmp_path / "n.csv").write_text("\n".join(names) + "\n")
    assert zoo.load_dataset(f"csv:{tmp_path / 'n.csv'}?label=kind").num_classes == 2
    # A first data row with a missing value stays data, and is refused by its line.
    (tmp_path / "m.csv").write_text("1.0,NA,3\n2.0,5.0,4\n3.0,6.0,5\n")
    with pytest.raises(InvalidInputError, match=r"m.csv' line 1 column 1"):
        zoo.load_dataset(f"csv:{tmp_path / 'm.csv'}")


def test_csv_without_header_takes_a_label_index_and_integer_labels(tmp_path):
    (tmp_path / "t.csv").write_text("".join(f"{i / 10},{i % 3}\n" for i in range(30)))
    splits = zoo.load_dataset(f"csv:{tmp_path / 't.csv'}?label=-1")
    assert splits.shape == (1,) and splits.num_classes == 3
    unlabelled = zoo.load_dataset(f"csv:{tmp_path / 't.csv'}")
    assert unlabelled.shape == (2,) and unlabelled.train.y is None


def test_standardize_uses_training_statistics_only(tmp_path):
    rng = np.random.default_rng(1)
    np.save(tmp_path / "v.npy", rng.normal(loc=5.0, scale=3.0, size=(200, 4)))
    splits = zoo.load_dataset(f"npy:{tmp_path / 'v.npy'}?standardize=true")
    raw = zoo.load_dataset(f"npy:{tmp_path / 'v.npy'}")
    assert torch.allclose(splits.train.x.mean(0), torch.zeros(4), atol=1e-5)
    assert torch.allclose(splits.train.x.std(0), torch.ones(4), atol=1e-5)
    mean, std = raw.train.x.mean(0), raw.train.x.std(0)
    assert torch.allclose(splits.test.x, (raw.test.x - mean) / std, atol=1e-5)
    assert not torch.allclose(splits.test.x.mean(0), torch.zeros(4), atol=1e-3)


def test_standardized_data_and_its_digest_do_not_depend_on_the_thread_count(tmp_path):
    """torch's reduction of a channel to one value splits it over threads: images of one
    channel came out a few ulps apart under 1 and 3 threads for these (torchrun gives each process 1)."""
    rng = np.random.default_rng(0)
    np.save(tmp_path / "im.npy", (rng.normal(size=(6000, 1, 28, 28)) * 1000 + 3).astype(np.float32))
    threads = torch.get_num_threads()
    digests = set()
    try:
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            splits = zoo.load_dataset(f"npy:{tmp_path / 'im.npy'}?standardize=true")
            digests.add(splits.digest())
    finally:
        torch.set_num_threads(threads)
    assert len(digests) == 1
    x = splits.train.x.double()
    assert abs(float(x.mean())) < 1e-6 and float(x.std()) == pytest.approx(1)
    changed = zoo.load_dataset(f"npy:{tmp_path / 'im.npy'}?standardize=true&seed=1")
    assert changed.digest() not in digests  # another split of the same file


def _write(tmp_path, name, content):
    path = tmp_path / name
    if isinstance(content, np.ndarray):
        np.save(path, content, allow_pickle=True)
    elif isinstance(content, dict):
        np.savez(path, **content)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


@pytest.mark.parametrize(
    ("name", "content", "scheme", "message"),
    [
        ("s.npy", np.array(["a", "b"]), "npy", "has dtype <U1; zoo needs real numbers"),
        ("b.npy", np.ones((4, 2), dtype=bool), "npy", "has dtype bool"),
        ("o.npy", np.array([{}, {}], dtype=object), "npy", "Object arrays cannot be loaded"),
        ("one.npy", np.ones(5), "npy", "needs one row per example"),
        ("e.npy", np.zeros((0, 3)), "npy", "is empty"),
        (
            "nan.npy",
            np.array([[1.0, 2.0], [np.nan, 1.0], [3.0, 4.0]]),
            "npy",
            "1 NaN or infinite value(s), the first in row 1",
        ),
        ("x.npy", b"", "npy", "is empty"),
        ("x.npy", b"not numpy at all", "npy", "is not a NumPy .npy file"),
        ("noy.npz", {"features": np.ones((4, 2))}, "npz", "has no array 'x' (it has: features)"),
        ("bady.npz", {"x": np.ones((4, 2)), "y": np.array([0, 1, 2])}, "npz", "labels must be (4,)"),
        ("fy.npz", {"x": np.ones((4, 2)), "y": np.array([0, 0.5, 1, 1])}, "npz", "integer class ids"),
        ("r.csv", "1,2,3\n4,5\n", "csv", "line 2 has 2 columns, expected 3 (ragged CSV)"),
        ("n.csv", "a,b\n1,2\n3,nan\n", "csv", "line 3 column 'b' is 'nan'"),
        ("m.csv", "a,b\n1,\n", "csv", "line 2 column 'b': '' is not a number"),
        ("t.csv", "a,b\n1,x\n", "csv", "'x' is not a number; name a label column"),
        ("h.csv", "a,b\n", "csv", "has no data rows"),
        ("z.csv", "\n\n", "csv", "is empty"),
        ("u.csv", b"\xff\xfe\x00bad", "csv", "cannot read"),
    ],
)
def test_bad_files_are_refused_with_one_line(tmp_path, name, content, scheme, message):
    path = _write(tmp_path, name, content)
    path = path if path.exists() else path.with_suffix(f".{scheme}")
    with pytest.raises(InvalidInputError) as info:
        zoo.load_dataset(f"{scheme}:{path}")
    assert message in str(info.value) and "\n" not in str(info.value)


def test_missing_files_options_and_columns_are_named(tmp_path):
    with pytest.raises(NotFoundError, match="no file at"):
        zoo.load_dataset(f"npz:{tmp_path / 'nope.npz'}")
    (tmp_path / "t.csv").write_text("a,b\n1,2\n3,4\n")
    with pytest.raises(InvalidInputError, match="has no column 'c' \\(it has: a, b\\)"):
        zoo.load_dataset(f"csv:{tmp_path / 't.csv'}?label=c")
    with pytest.raises(InvalidInputError, match="did you mean 'label'"):
        zoo.load_dataset(f"csv:{tmp_path / 't.csv'}?lable=b")
    with pytest.raises(InvalidInputError, match="test_fraction must be in"):
        zoo.load_dataset(f"csv:{tmp_path / 't.csv'}?test_fraction=1.5")
    np.save(tmp_path / "v.npy", np.ones((3, 2)))
    with pytest.raises(InvalidInputError, match="use npy:"):
        zoo.load_dataset(f"npz:{tmp_path / 'v.npy'}")


def test_breast_cancer_is_standardised_with_a_fixed_stratified_split():
    splits = zoo.load_dataset("breast-cancer")
    assert splits.shape == (30,) and splits.num_classes == 2
    assert (len(splits.train), len(splits.test)) == (456, 113)
    assert torch.allclose(splits.train.x.mean(0), torch.zeros(30), atol=1e-4)
    assert torch.allclose(splits.train.x.std(0), torch.ones(30), atol=1e-4)
    assert torch.bincount(splits.test.y).tolist() == [42, 71]
    assert torch.equal(zoo.load_dataset("breast-cancer").test.x, splits.test.x)


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (["0", "1", "", "1"], "has no label on line 4; remove those rows or label them"),
        (["0", "NA", "1", "n/a"], "has no label on lines 3, 5;"),
        (["0", "1", "-1", "1"], "has the label '-1'; labels are class ids 0, 1, … or names"),
        (["0", "1", "2.5", "1"], "has the label '2.5'"),
    ],
)
def test_a_csv_label_that_is_missing_or_not_an_id_is_refused(tmp_path, labels, message):
    """A missing label used to become a class of its own ('' sorted first: every class id
    moved up by one), and −1 turned every number into a name sorted as text ('10' < '2')."""
    rows = [f"{i / 10},{label}" for i, label in enumerate(labels)]
    (tmp_path / "t.csv").write_text("a,kind\n" + "\n".join(rows) + "\n")
    with pytest.raises(InvalidInputError) as err:
        zoo.load_dataset(f"csv:{tmp_path / 't.csv'}?label=kind")
    assert message in str(err.value)


def test_a_csv_saved_with_a_byte_order_mark_names_its_first_column(tmp_path):
    (tmp_path / "t.csv").write_bytes(
        "label,a\n".encode("utf-8-sig") + b"".join(b"%d,%d\n" % (i % 2, i) for i in range(10))
    )
    splits = zoo.load_dataset(f"csv:{tmp_path / 't.csv'}?label=label")
    assert splits.num_classes == 2 and splits.shape == (1,)


def test_npz_class_ids_past_two_to_the_31_are_refused_not_wrapped(tmp_path):
    np.savez(tmp_path / "big.npz", x=np.ones((4, 2)), y=np.array([0, 1, 2**63, 1], dtype=np.uint64))
    with pytest.raises(InvalidInputError, match="integer class ids 0, 1, … \\(below 2³¹\\)"):
        zoo.load_dataset(f"npz:{tmp_path / 'big.npz'}")


@pytest.mark.parametrize(("dtype", "white"), [(np.uint8, 255), (np.uint16, 65535)])
def test_integer_image_arrays_are_scaled_to_the_unit_interval_as_image_files_are(tmp_path, dtype, white):
    images = np.random.default_rng(0).integers(0, white + 1, (20, 1, 4, 4)).astype(dtype)
    np.save(tmp_path / "x.npy", images)
    data = zoo.load_dataset(f"npy:{tmp_path / 'x.npy'}?test_fraction=0.5")
    both = torch.cat([data.train.x, data.test.x])
    assert both.min() >= 0 and both.max() <= 1
    assert torch.allclose(both.sum(), torch.tensor(images.sum() / white, dtype=torch.float32), rtol=1e-5)
    np.save(tmp_path / "v.npy", images.reshape(20, 16))  # vectors keep their values: counts are not pixels
    assert zoo.load_dataset(f"npy:{tmp_path / 'v.npy'}").train.x.max() > 1

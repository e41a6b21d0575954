"""Data references, dSprites, and the loaders for full datasets, on small files the tests write."""

import http.server
import re
import struct
import sys
import threading
import tracemalloc

import numpy as np
import pytest
import torch
from PIL import Image

import zoo
from tests.conftest import assert_one_line_error
from zoo.datasets.builtin import make_splits
from zoo.datasets.dsprites import FACTOR_SIZES, RADIUS, SCALES, render
from zoo.datasets.folder import folder_images
from zoo.datasets.reference import canonical_data_ref, parse_data_ref
from zoo.errors import InvalidInputError, NotFoundError


def test_data_references_carry_options_and_schemes_come_before_the_registry():
    ref = parse_data_ref("dsprites?n=2000&seed=3&name=x y")
    assert (ref.name, ref.scheme, ref.options) == ("dsprites", None, {"n": 2000, "seed": 3, "name": "x y"})
    assert parse_data_ref("folder:/data/a:b?size=28") == parse_data_ref("folder:/data/a:b?size=28")
    folder = parse_data_ref("folder:/data/a:b?size=28")
    assert (folder.scheme, folder.target, folder.options) == ("folder", "/data/a:b", {"size": 28})
    assert parse_data_ref("zoo:mnist-5k").scheme is None
    assert zoo.load_dataset("zoo:digits").shape == (1, 8, 8)
    with pytest.raises(InvalidInputError, match="has no option 'sede'.*did you mean 'seed'"):
        zoo.load_dataset("dsprites?sede=1")
    with pytest.raises(InvalidInputError, match="must look like key=value"):
        parse_data_ref("dsprites?n")


def test_dsprites_subset_is_deterministic_binary_64px_with_consistent_factors():
    data = zoo.load_dataset("dsprites?n=300")
    assert data.shape == (1, 64, 64) and data.num_classes == 3 and len(data.train) + len(data.test) == 300
    assert data.factor_names == ("shape", "scale", "orientation", "pos_x", "pos_y")
    assert set(torch.unique(data.train.x).tolist()) == {0.0, 1.0}
    assert torch.equal(data.train.y, data.train.factors[:, 0])
    for i in range(5):
        assert (data.train.factors[:, i].max() < FACTOR_SIZES[i]).item()
    again = zoo.load_dataset("dsprites", n=300)
    assert torch.equal(again.train.x, data.train.x) and torch.equal(again.test.factors, data.test.factors)
    other = zoo.load_dataset("dsprites?n=300&seed=1")
    assert not torch.equal(other.train.factors, data.train.factors)
    assert torch.equal(torch.from_numpy(render(data.test.factors.numpy())).float(), data.test.x[:, 0])


def test_dsprites_factors_move_scale_and_shape_the_sprite():
    def sprite(shape=0, scale=5, angle=0, x=16, y=16):
        return render(np.array([[shape, scale, angle, x, y]]))[0].astype(float)

    square = sprite()
    assert square.sum() == pytest.approx((2 * RADIUS * SCALES[5]) ** 2, rel=0.05)
    assert sprite(scale=0).sum() < 0.4 * square.sum()
    cols = np.nonzero(sprite(x=31).sum(0))[0]
    assert cols.mean() > np.nonzero(sprite(x=0).sum(0))[0].mean() + 30  # x moves right
    assert sprite(shape=1).sum() < 0.7 * square.sum() and sprite(shape=2).sum() != square.sum()
    assert not np.array_equal(sprite(angle=5), square) and sprite(angle=5).sum() == pytest.approx(square.sum(), rel=0.1)


def write_idx(root, folder, data):
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    for split, prefix in ((data.train, "train"), (data.test, "t10k")):
        images = (split.x[:, 0] * 255).round().to(torch.uint8).numpy()
        labels = split.y.to(torch.uint8).numpy()
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(
            struct.pack(">IIII", 0x803, len(images), 28, 28) + images.tobytes()
        )
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 0x801, len(labels)) + labels.tobytes())


@pytest.mark.parametrize(("name", "folder"), [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")])
def test_torchvision_loaders_read_idx_files_from_a_local_root(tmp_path, monkeypatch, name, folder):
    small = zoo.load_dataset("mnist-5k")
    write_idx(tmp_path, folder, small)
    data = zoo.load_dataset(f"{name}?root={tmp_path}")
    assert data.shape == (1, 28, 28) and data.num_classes == 10
    assert (len(data.train), len(data.test)) == (4000, 1000)
    assert sorted(data.test.x.sum((1, 2, 3)).tolist()) == pytest.approx(sorted(small.test.x.sum((1, 2, 3)).tolist()))
    assert torch.bincount(data.train.y).tolist() == [400] * 10
    monkeypatch.setenv("ZOO_DATA", str(tmp_path))
    assert torch.equal(zoo.load_dataset(name).test.x, data.test.x)


def test_a_missing_full_dataset_is_one_line_saying_how_to_provide_it(tmp_path, monkeypatch, cli):
    monkeypatch.setenv("ZOO_DATA", str(tmp_path))
    result = cli("train", "ae", "--recipe", "mnist-full", "-q", "--out", str(tmp_path))
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, "'mnist'", str(tmp_path), "download=true")
    with pytest.raises(NotFoundError, match="cifar10"):
        zoo.load_dataset(f"cifar10?root={tmp_path}")


@pytest.fixture
def refusing_server():
    """The URL of an HTTP server on 127.0.0.1 that answers every request with 404."""

    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_error(404)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_a_failed_download_says_so_in_one_line(tmp_path, monkeypatch, refusing_server):
    """torchvision's MNIST tries each mirror and raises one RuntimeError listing them all;
    CIFAR-10 raises urllib's HTTPError. Both are "could not download", not "allow the download"."""
    import torchvision.datasets

    monkeypatch.setattr(torchvision.datasets.MNIST, "mirrors", [refusing_server, refusing_server])
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "url", f"{refusing_server}cifar-10-python.tar.gz")
    for name in ("mnist", "cifar10"):
        with pytest.raises(NotFoundError) as info:
            zoo.load_dataset(f"{name}?root={tmp_path}&download=true")
        message = str(info.value)
        assert message.startswith(f"could not download dataset '{name}' to {tmp_path}: ")
        assert "404" in message and "\n" not in message and "download=true" not in message


def write_pngs(folder, x, y=None):
    for i, image in enumerate(x):
        target = folder if y is None else folder / str(int(y[i]))
        target.mkdir(parents=True, exist_ok=True)
        Image.fromarray((image[0].numpy() * 255).round().astype(np.uint8), mode="L").save(target / f"{i:04d}.png")


def test_image_folder_with_class_subfolders_is_labelled_and_split(tmp_path):
    small = zoo.load_dataset("mnist-5k").test
    write_pngs(tmp_path / "digits", small.x[:200], small.y[:200])
    data = zoo.load_dataset(f"folder:{tmp_path / 'digits'}?test_fraction=0.25")
    assert data.shape == (1, 28, 28) and data.num_classes == len(set(small.y[:200].tolist()))
    assert len(data.train) + len(data.test) == 200 and 45 <= len(data.test) <= 55  # a quarter of each class
    sums = {round(v, 3) for v in small.x[:200].sum((1, 2, 3)).tolist()}
    assert {round(v, 3) for v in data.test.x.sum((1, 2, 3)).tolist()} <= sums
    resized = zoo.load_dataset(f"folder:{tmp_path / 'digits'}?size=14&channels=3")
    assert resized.shape == (3, 14, 14)


def test_image_folder_with_train_and_test_and_an_unlabelled_folder(tmp_path):
    small = zoo.load_dataset("mnist-5k").test
    write_pngs(tmp_path / "split" / "train", small.x[:40], small.y[:40])
    write_pngs(tmp_path / "split" / "test", small.x[40:60], small.y[40:60])
    data = zoo.load_dataset(f"folder:{tmp_path / 'split'}")
    assert (len(data.train), len(data.test)) == (40, 20) and data.train.y is not None
    write_pngs(tmp_path / "flat", small.x[:30])
    flat = zoo.load_dataset(f"folder:{tmp_path / 'flat'}")
    assert flat.train.y is None and flat.num_classes == 0 and len(flat.train) + len(flat.test) == 30
    with pytest.raises(NotFoundError, match="no image folder"):
        zoo.load_dataset(f"folder:{tmp_path / 'nowhere'}")


def test_image_folder_splits_are_those_of_its_images_in_listing_order(tmp_path):
    """The loader splits the listing before decoding; the splits are exactly those that
    splitting the decoded images (in listing order) gives, as in every earlier version."""
    small = zoo.load_dataset("mnist-5k").test
    write_pngs(tmp_path / "digits", small.x[:150], small.y[:150])
    names, images = folder_images(str(tmp_path / "digits"))
    labels = np.array([int(name.split("/")[0]) for name in names])
    expected = make_splits("x", images, labels, test_fraction=0.2, seed=3)
    data = zoo.load_dataset(f"folder:{tmp_path / 'digits'}?test_fraction=0.2&seed=3")
    for got, want in ((data.train, expected.train), (data.test, expected.test)):
        assert torch.equal(got.x, want.x) and torch.equal(got.y, want.y)
    assert data.num_classes == expected.num_classes


@pytest.mark.parametrize("scheme", ["folder", "hf"])
@pytest.mark.parametrize("layout", ["split here", "given train and test"])
def test_image_data_holds_its_images_once_while_loading(tmp_path, scheme, layout):
    if scheme == "hf":
        pytest.importorskip("datasets")
    rng = np.random.default_rng(0)
    for i in range(240):
        folder = tmp_path / ("train" if i < 180 else "test") if layout != "split here" else tmp_path
        (folder / str(i % 3)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(folder / str(i % 3) / f"{i}.png")
    zoo.load_dataset(f"{scheme}:{tmp_path}")  # the modules it imports and the datasets cache are not measured
    tracemalloc.start()
    try:
        data = zoo.load_dataset(f"{scheme}:{tmp_path}")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    held = (data.train.x.numel() + data.test.x.numel()) * 4  # 240 × 3 × 32 × 32 float32: 2.9 MB
    assert len(data.train) + len(data.test) == 240 and data.num_classes == 3
    assert held <= peak < 1.5 * held  # decoded, then copied to reorder them, they took 2.0–2.1 ×


def test_a_model_trains_on_an_image_folder_and_reconstructs_from_it(tmp_path, cli):
    small = zoo.load_dataset("mnist-5k").test
    write_pngs(tmp_path / "pngs", small.x[:128], small.y[:128])
    run = zoo.train(
        "ae",
        data=f"folder:{tmp_path / 'pngs'}",
        out=str(tmp_path / "runs"),
        overrides=["train.epochs=1", "train.batch_size=32", "model.channels=[8]", "train.sample_grid=0"],
    )
    assert run.model.config.input_shape == (1, 28, 28)
    result = cli("reconstruct", str(run.path), "-n", "4", "-o", str(tmp_path / "r.png"))
    assert result.exit_code == 0, result.output


def test_hf_data_without_the_datasets_package_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # what `import datasets` sees when it is absent
    with pytest.raises(NotFoundError, match=r"pip install 'zoo\[hf\]'"):
        zoo.load_dataset("hf:ylecun/mnist")


def test_hf_data_loads_a_local_image_folder_through_datasets(tmp_path):
    pytest.importorskip("datasets")
    small = zoo.load_dataset("mnist-5k").test
    write_pngs(tmp_path / "hf" / "train", small.x[:40], small.y[:40])
    write_pngs(tmp_path / "hf" / "test", small.x[40:60], small.y[40:60])
    data = zoo.load_dataset(f"hf:{tmp_path / 'hf'}")
    assert data.shape == (1, 28, 28) and (len(data.train), len(data.test)) == (40, 20)
    assert data.train.y is not None and data.num_classes >= 5


def write_few(folder, n=5):
    """One class subfolder `a/` of `n` random 8×8 grey PNGs: too few to hold out 10% of."""
    rng = np.random.default_rng(0)
    (folder / "a").mkdir(parents=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8), mode="L").save(folder / "a" / f"{i}.png")


def test_data_that_leaves_an_empty_split_is_refused_in_one_line(tmp_path, cli):
    write_few(tmp_path / "few")
    np.save(tmp_path / "v.npy", np.ones((3, 2), dtype=np.float32))
    refused = {
        f"folder:{tmp_path / 'few'}": "empty test split (5 train / 0 test",
        f"npy:{tmp_path / 'v.npy'}?test_fraction=0.1": "empty test split (3 train / 0 test",
        "dsprites?n=5": "empty test split (5 train / 0 test",
    }
    for ref, message in refused.items():
        with pytest.raises(InvalidInputError, match=re.escape(message)) as info:
            zoo.load_dataset(ref)
        assert "\n" not in str(info.value)
    with pytest.raises(InvalidInputError, match=re.escape("empty train split (0 train / 3 test")):
        make_splits("x", np.ones((3, 2), dtype=np.float32), None, test_fraction=0.99)
    result = cli("train", "vae", "-r", "digits", "--data", f"folder:{tmp_path / 'few'}", "-q", "-o", str(tmp_path))
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, "leaves an empty test split")


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("folder:FEW?seed=abc", "seed must be a whole number ≥ 0, got 'abc'"),
        ("folder:FEW?seed=-1", "seed must be a whole number ≥ 0, got -1"),
        ("dsprites?n=20&seed=1.5", "seed must be a whole number ≥ 0, got 1.5"),
        ("folder:FEW?test_fraction=abc", "test_fraction must be in (0, 1), got 'abc'"),
        ("folder:FEW?test_fraction=1", "test_fraction must be in (0, 1), got 1"),
        ("npy:V?seed=abc", "seed must be a whole number ≥ 0, got 'abc'"),
        ("npy:V?standardize=maybe", "standardize must be true or false, got 'maybe'"),
        ("mnist?download=maybe", "download must be true or false, got 'maybe'"),
        ("mnist?root=1", "root must be a folder's path, got 1"),
        ("cifar10?root=[a]", "root must be a folder's path, got ['a']"),
    ],
)
def test_bad_values_of_shared_loader_options_are_named_in_one_line(tmp_path, ref, message):
    write_few(tmp_path / "few", n=20)
    np.save(tmp_path / "v.npy", np.ones((10, 2), dtype=np.float32))
    ref = ref.replace("FEW", str(tmp_path / "few")).replace("V?", f"{tmp_path / 'v.npy'}?")
    with pytest.raises(InvalidInputError, match=re.escape(f"data option {message}")) as info:
        zoo.load_dataset(ref)
    assert "\n" not in str(info.value)


def test_keyword_options_are_checked_like_those_of_the_reference():
    with pytest.raises(InvalidInputError, match="data option seed must be a whole number"):
        zoo.load_dataset("dsprites", n=20, seed=True)
    with pytest.raises(InvalidInputError, match="has no option 'sede'"):
        zoo.load_dataset("dsprites", sede=1)


def test_canonical_file_references_are_absolute_and_load_from_any_directory(tmp_path, monkeypatch):
    write_few(tmp_path / "pics", n=20)
    np.save(tmp_path / "v.npy", np.ones((10, 2), dtype=np.float32))
    monkeypatch.chdir(tmp_path)
    folder = canonical_data_ref("folder:pics?size=4&seed=2")
    assert folder == f"folder:{tmp_path / 'pics'}?size=4&seed=2"
    assert canonical_data_ref("npy:v.npy") == f"npy:{tmp_path / 'v.npy'}"
    assert canonical_data_ref("hf:pics") == f"hf:{tmp_path / 'pics'}"  # a local folder
    for unchanged in ("mnist-5k", "dsprites?n=20", "hf:user/repo", folder):
        assert canonical_data_ref(unchanged) == unchanged
    here = zoo.load_dataset("folder:pics?size=4&seed=2")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    there = zoo.load_dataset(folder)
    assert there.shape == (1, 4, 4) and torch.equal(there.train.x, here.train.x)
    assert len(zoo.load_dataset(canonical_data_ref(f"npy:{tmp_path / 'v.npy'}")).train) == 8


def test_deep_images_keep_their_depth(tmp_path):
    """16-bit PNGs were clipped to 8 bits (nearly every pixel 1.0) and float images in [0, 1]
    truncated to 0: both went through PIL's 8-bit grey conversion."""
    rng = np.random.default_rng(0)
    deep = rng.integers(0, 65536, (6, 8, 8), dtype=np.uint16)
    floats = rng.random((6, 8, 8), dtype=np.float32)
    for i in range(6):
        (tmp_path / "png16").mkdir(exist_ok=True)
        Image.fromarray(deep[i]).save(tmp_path / "png16" / f"{i}.png")
        (tmp_path / "tiff").mkdir(exist_ok=True)
        Image.fromarray(floats[i], mode="F").save(tmp_path / "tiff" / f"{i}.tif")
    for folder, expected in (("png16", deep / 65535.0), ("tiff", floats)):
        names, images = folder_images(str(tmp_path / folder))
        order = [int(n.split(".")[0]) for n in names]
        assert images.shape == (6, 1, 8, 8)
        assert np.allclose(images[:, 0], expected[order], atol=1e-6)
    _, colour = folder_images(str(tmp_path / "png16"), channels=3)
    assert colour.shape == (6, 3, 8, 8) and np.array_equal(colour[:, 0], colour[:, 2])
    Image.fromarray(np.full((8, 8), 1.5, dtype=np.float32), mode="F").save(tmp_path / "tiff" / "bright.tif")
    with pytest.raises(InvalidInputError, match=r"bright\.tif \(F\) has pixel values in 1\.5 … 1\.5; zoo reads"):
        folder_images(str(tmp_path / "tiff"))


def test_a_colour_image_after_a_grey_first_one_is_refused_not_made_grey(tmp_path):
    Image.new("L", (8, 8), 10).save(tmp_path / "a.png")
    Image.new("RGB", (8, 8), (200, 10, 10)).save(tmp_path / "b.png")
    with pytest.raises(InvalidInputError, match=r"images differ in colour \(.*a\.png is grey, .*b\.png is RGB\); pass"):
        zoo.load_dataset(f"folder:{tmp_path}")
    data = zoo.load_dataset(f"folder:{tmp_path}?channels=3&test_fraction=0.5")
    assert data.shape == (3, 8, 8)


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ({"a/0.png", "a/1.png", "b/2.png", "loose.png"}, "holds 1 images beside its class folders (loose.png, …)"),
        ({"a/0.png", "a/1.png", "b/.keep"}, "class folder '*/b' has no images"),
        (
            {"train/a/0.png", "train/b/1.png", "test/a/2.png", "test/c/3.png"},
            "has classes that '*/train' has not: c",
        ),
    ],
)
def test_an_image_folder_whose_layout_would_leave_images_out_is_refused(tmp_path, layout, message):
    for name in layout:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        if name.endswith(".png"):
            Image.new("L", (8, 8), 100).save(tmp_path / name)
        else:
            (tmp_path / name).write_text("")
    with pytest.raises(InvalidInputError) as err:
        zoo.load_dataset(f"folder:{tmp_path}")
    assert re.search(re.escape(message).replace(r"\*", ".*"), str(err.value)), str(err.value)


def test_reports_on_files_follow_linked_folders_as_training_does_and_never_loop(tmp_path):
    for i, cls in enumerate(("a", "elsewhere/b")):
        (tmp_path / cls).mkdir(parents=True)
        for j in range(3):
            Image.new("L", (8, 8), 40 * i + j).save(tmp_path / cls / f"{j}.png")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a").symlink_to(tmp_path / "a")
    (tmp_path / "data" / "b").symlink_to(tmp_path / "elsewhere" / "b")
    (tmp_path / "a" / "up").symlink_to(tmp_path / "data")  # a loop back up
    trained_on = zoo.load_dataset(f"folder:{tmp_path / 'data'}?test_fraction=0.34")
    names, _ = folder_images(str(tmp_path / "data"))
    assert len(trained_on.train) + len(trained_on.test) == 6
    assert names == [f"{c}/{j}.png" for c in "ab" for j in range(3)]  # a/up, back to data/, walked once


def test_an_image_too_large_to_decode_safely_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 20)  # PIL's own guard, at 2× this: 16×16 is past it
    Image.new("L", (16, 16)).save(tmp_path / "big.png")
    with pytest.raises(InvalidInputError, match=r"cannot read image '.*big\.png': Image size \(256 pixels\) exceeds"):
        folder_images(str(tmp_path))


def test_class_folders_named_by_number_are_labelled_by_value_and_a_given_split_takes_no_split_options(tmp_path):
    for name in ("2", "10", "0"):
        for i in range(3):
            (tmp_path / "flat" / name).mkdir(parents=True, exist_ok=True)
            Image.new("L", (4, 4), int(name) * 20).save(tmp_path / "flat" / name / f"{i}.png")
            for split in ("train", "test"):
                (tmp_path / "split" / split / name).mkdir(parents=True, exist_ok=True)
                Image.new("L", (4, 4), int(name) * 20).save(tmp_path / "split" / split / name / f"{i}.png")
    data = zoo.load_dataset(f"folder:{tmp_path / 'flat'}?test_fraction=0.34")
    both = torch.cat([data.train.x, data.test.x]).flatten(1)[:, 0]
    labels = torch.cat([data.train.y, data.test.y])
    # the pixel value says which folder: 0 → label 0, 2 → label 1, 10 → label 2 (as text, '10' < '2')
    assert {(round(v * 255 / 20), int(y)) for v, y in zip(both.tolist(), labels, strict=True)} == {
        (0, 0),
        (2, 1),
        (10, 2),
    }
    for option in ("seed=3", "test_fraction=0.5"):
        with pytest.raises(InvalidInputError, match="has train/ and test/, which are the split: the options"):
            zoo.load_dataset(f"folder:{tmp_path / 'split'}?{option}")
    assert len(zoo.load_dataset(f"folder:{tmp_path / 'split'}").test) == 9

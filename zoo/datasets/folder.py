"""`folder:PATH` — images from a folder on disk.

    PATH/3/a.png, PATH/7/b.png, …            class subfolders (sorted names → labels 0, 1, …)
    PATH/a.png, PATH/b.png, …                no subfolders: unlabelled
    PATH/train/…, PATH/test/…                the split as given (each laid out as above)

Without train/ and test/, `test_fraction` of the images (per class) is held out with a
seeded split. Options: size (resize to size×size), channels (1 or 3), test_fraction, seed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zoo.datasets.builtin import given_splits, make_splits
from zoo.datasets.pictures import to_array
from zoo.errors import InvalidInputError, NotFoundError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def load_folder(
    path: str, size: int | None = None, channels: int | None = None, test_fraction: float = 0.1, seed: int = 0
):  # -> Splits
    root = Path(path).expanduser()
    if not root.is_dir():
        raise NotFoundError(f"no image folder at '{path}' (folder:PATH needs a folder of images)")
    name = f"folder:{path}"
    train_dir, test_dir = root / "train", root / "test"
    if train_dir.is_dir() and test_dir.is_dir():
        classes = _classes(train_dir)
        train = _read(train_dir, classes, size, channels)
        test = _read(test_dir, classes, size, train[0].shape[1])
        if test[0].shape[1:] != train[0].shape[1:]:
            raise InvalidInputError(
                f"'{test_dir}' images are {list(test[0].shape[1:])} but '{train_dir}' images are "
                f"{list(train[0].shape[1:])}; pass the option size=N to resize both"
            )
        return given_splits(name, train, test)
    if not 0 < test_fraction < 1:
        raise InvalidInputError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    classes = _classes(root)
    images, labels = _read(root, classes, size, channels)
    return make_splits(name, images, labels, test_fraction, seed)


def _classes(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _read(folder: Path, classes: list[str], size: int | None, channels: int | None):
    if classes:
        files = [(f, c) for c, cls in enumerate(classes) for f in _images(folder / cls)]
    else:
        files = [(f, 0) for f in _images(folder)]
    if not files:
        raise NotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in '{folder}'")
    images = _decode([f for f, _ in files], size, channels)
    labels = np.array([c for _, c in files], dtype=np.int64) if classes else None
    return images, labels


def folder_images(path: str, size: int | None = None, channels: int | None = None) -> tuple[list[str], np.ndarray]:
    """Every image file under `path` (any subfolder, sorted by path), unsplit, with each
    file's path relative to `path`: for commands that report on files (`zoo anomaly`)."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise NotFoundError(f"no image folder at '{path}' (folder:PATH needs a folder of images)")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise NotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) under '{path}'")
    return [str(f.relative_to(root)) for f in files], _decode(files, size, channels)


def _decode(files: list[Path], size: int | None, channels: int | None) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    def opened():
        for f in files:
            try:
                with Image.open(f) as image:
                    image.load()
                    yield image
            except (UnidentifiedImageError, OSError) as err:
                raise InvalidInputError(f"cannot read image '{f}': {err}") from None

    return to_array(opened(), [str(f) for f in files], size, channels)


def _images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())

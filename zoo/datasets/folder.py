"""`folder:PATH` — images from a folder on disk.

    PATH/3/a.png, PATH/7/b.png, …            class subfolders (sorted names → labels 0, 1, …;
                                             numbers as numbers: 2 before 10)
    PATH/a.png, PATH/b.png, …                no subfolders: unlabelled
    PATH/train/…, PATH/test/…                the split as given (each laid out as above)

Without train/ and test/, `test_fraction` of the images (per class) is held out with a
seeded split. Options: size (resize to size×size), channels (1 or 3), test_fraction, seed.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from zoo.datasets.builtin import decoded_splits, given_order, split_order
from zoo.datasets.pictures import to_array
from zoo.errors import InvalidInputError, NotFoundError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def load_folder(
    path: str,
    size: int | None = None,
    channels: int | None = None,
    test_fraction: float | None = None,
    seed: int | None = None,
):  # -> Splits
    """The images are listed and split first, then decoded into the rows of one array that
    both splits view: the data is held once, never copied to reorder it."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise NotFoundError(f"no image folder at '{path}' (folder:PATH needs a folder of images)")
    name = f"folder:{path}"
    train_dir, test_dir = root / "train", root / "test"
    if train_dir.is_dir() and test_dir.is_dir():
        if test_fraction is not None or seed is not None:  # else they would be ignored without a word
            raise InvalidInputError(
                f"'{path}' has train/ and test/, which are the split: the options test_fraction and seed do not apply"
            )
        classes = _classes(train_dir)
        unseen = sorted(set(_classes(test_dir)) - set(classes))
        if unseen:  # their images would be left out without a word
            raise InvalidInputError(f"'{test_dir}' has classes that '{train_dir}' has not: {', '.join(unseen)}")
        (train_files, train_labels), (test_files, test_labels) = (_listing(d, classes) for d in (train_dir, test_dir))
        files, n_train = train_files + test_files, len(train_files)
        labels = None if not classes else np.concatenate([train_labels, test_labels])
        order = given_order(n_train, len(test_files))
    else:
        files, labels = _listing(root, _classes(root))
        order, n_train = split_order(labels, len(files), 0.1 if test_fraction is None else test_fraction, seed or 0)
    return decoded_splits(name, functools.partial(_decode, files, size, channels), labels, order, n_train)


def _classes(folder: Path) -> list[str]:
    """The class folders' names in label order: by number when every name is one (2 before
    10, as a reader expects of folders named by class id), else by name."""
    names = [p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return sorted(names, key=int) if names and all(n.isdigit() for n in names) else sorted(names)


def _listing(folder: Path, classes: list[str]) -> tuple[list[Path], np.ndarray | None]:
    """The image files of `folder` (of each class subfolder, in class order) and their labels.
    Images that a layout would leave out, or a class without images (which would still take a
    label), are refused."""
    if classes:
        loose = _images(folder)
        if loose:
            raise InvalidInputError(
                f"'{folder}' holds {len(loose)} images beside its class folders ({loose[0].name}, …), which "
                "would be left out: move them into a class folder"
            )
        empty = [cls for cls in classes if (folder / cls).is_dir() and not _images(folder / cls)]
        if empty and len(empty) < len(classes):
            raise InvalidInputError(f"class folder '{folder / empty[0]}' has no images ({', '.join(IMAGE_SUFFIXES)})")
        pairs = [(f, c) for c, cls in enumerate(classes) for f in _images(folder / cls)]
    else:
        pairs = [(f, 0) for f in _images(folder)]
    if not pairs:
        raise NotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in '{folder}'")
    labels = np.array([c for _, c in pairs], dtype=np.int64) if classes else None
    return [f for f, _ in pairs], labels


def folder_images(path: str, size: int | None = None, channels: int | None = None) -> tuple[list[str], np.ndarray]:
    """Every image file under `path` (any subfolder, sorted by path), unsplit, with each
    file's path relative to `path`: for commands that report on files (`zoo anomaly`)."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise NotFoundError(f"no image folder at '{path}' (folder:PATH needs a folder of images)")
    files = sorted(p for p in _walk(root) if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise NotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) under '{path}'")
    return [str(f.relative_to(root)) for f in files], _decode(files, size, channels)


def _decode(files: list[Path], size: int | None, channels: int | None, rows: np.ndarray | None = None) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    def opened():
        for f in files:
            try:
                with Image.open(f) as image:
                    image.load()
                    yield image
            except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as err:
                raise InvalidInputError(f"cannot read image '{f}': {err}") from None

    return to_array(opened(), [str(f) for f in files], size, channels, rows)


def _images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _walk(root: Path) -> list[Path]:
    """Every file under `root`, into linked folders too (as the class folders of training
    are read), each real folder once: a link back up does not loop."""
    seen, files = set(), []
    for folder, subfolders, names in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            subfolders[:] = []
            continue
        seen.add(real)
        files.extend(Path(folder) / n for n in names)
    return files

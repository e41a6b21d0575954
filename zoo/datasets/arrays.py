"""`npy:PATH`, `npz:PATH`, `csv:PATH` — numeric arrays from files, for non-image data.

    npy:feats.npy                 one array: (N, D) vectors, (N, C, L) 1-D signals, (N, C, H, W) images
                                  (uint8 and uint16 images are scaled to [0, 1], as image files are)
    npz:data.npz                  arrays `x` (as above) and optional `y` (N,) integer class labels
    csv:table.csv?label=target    float columns; the column `label` (a header name, or an index
                                  such as -1) holds the class labels, numbers or names

A CSV's first row is a header when none of its cells is a number, or when a cell of it is a
word above a number, or the label's name (column names that are numbers, such as pixel
indices). An unnamed first column counting 0, 1, 2, … is the row index pandas writes, and is
left out; another unnamed column is refused. `test_fraction` of the rows
(per class, when labelled) is held out with a seeded split; `standardize=true` scales every
feature (channel, for signals) to mean 0 and std 1 with the training split's statistics.
Files are refused with one line when they cannot be used: unreadable, empty, not numeric,
ragged rows, NaN or infinite values. Nothing is unpickled.
"""

from __future__ import annotations

import csv
import math
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from zoo.datasets.builtin import make_splits
from zoo.errors import InvalidInputError, NotFoundError, first_line


def load_npy(path: str, test_fraction: float = 0.2, seed: int = 0, standardize: bool = False):  # -> Splits
    x = _read_numpy(path, "npy")
    if not isinstance(x, np.ndarray):
        raise InvalidInputError(f"'{path}' is an .npz archive; use npz:{path}")
    return _splits(f"npy:{path}", _features(x, path), None, test_fraction, seed, standardize)


def load_npz(path: str, test_fraction: float = 0.2, seed: int = 0, standardize: bool = False):  # -> Splits
    archive = _read_numpy(path, "npz")
    if isinstance(archive, np.ndarray):
        raise InvalidInputError(f"'{path}' is a single .npy array, not an .npz archive; use npy:{path}")
    with archive:
        if "x" not in archive.files:
            have = ", ".join(archive.files) or "none"
            raise InvalidInputError(
                f"'{path}' has no array 'x' (it has: {have}); save it with np.savez(path, x=…, y=…)"
            )
        try:
            x = _features(archive["x"], f"{path}[x]")
            y = _labels(archive["y"], len(x), f"{path}[y]") if "y" in archive.files else None
        except ValueError as err:  # object arrays need pickle, which is refused
            raise InvalidInputError(f"cannot read '{path}': {err}") from None
    return _splits(f"npz:{path}", x, y, test_fraction, seed, standardize)


def load_csv(
    path: str, label: str | int | None = None, test_fraction: float = 0.2, seed: int = 0, standardize: bool = False
):  # -> Splits
    rows = _read_csv_rows(path)
    first = rows[0][1]
    header = first if _is_header(first, rows[1][1] if len(rows) > 1 else None, label) else None
    body = rows[1:] if header is not None else rows
    if not body:
        raise InvalidInputError(f"'{path}' has no data rows")
    width = len(header) if header is not None else len(body[0][1])
    for line, row in body:
        if len(row) != width:
            raise InvalidInputError(f"'{path}' line {line} has {len(row)} columns, expected {width} (ragged CSV)")
    label_index = None if label is None else _column(label, header, width, path)
    skipped = {0} if _is_pandas_index(header, body) else set()
    unnamed = [c for c in range(width) if header is not None and header[c] == "" and c not in skipped]
    if unnamed:
        raise InvalidInputError(
            f"'{path}' has a column without a name in its header (index {unnamed[0]}); name or drop it"
        )
    features = [c for c in range(width) if c != label_index and c not in skipped]
    if not features:
        raise InvalidInputError(f"'{path}' has no feature columns besides the label")
    x = np.empty((len(body), len(features)), dtype=np.float64)
    for i, (line, row) in enumerate(body):
        for j, c in enumerate(features):
            name = f"'{header[c]}'" if header is not None else str(c)
            try:
                x[i, j] = float(row[c])
            except ValueError:
                raise InvalidInputError(
                    f"'{path}' line {line} column {name}: '{row[c]}' is not a number"
                    + ("" if label is not None else "; name a label column with ?label=…")
                ) from None
            if not math.isfinite(x[i, j]):
                raise InvalidInputError(
                    f"'{path}' line {line} column {name} is '{row[c]}'; remove or impute missing values first"
                )
    y = None
    if label_index is not None:
        missing = [line for line, row in body if row[label_index].lower() in MISSING_CELLS]
        if missing:  # a name of its own would renumber every class after it
            lines = ", ".join(map(str, missing[:5])) + (", …" if len(missing) > 5 else "")
            on = "line" if len(missing) == 1 else "lines"
            raise InvalidInputError(f"'{path}' has no label on {on} {lines}; remove those rows or label them")
        y = _label_ids([row[label_index] for _, row in body], path)
    return _splits(f"csv:{path}", _features(x, path), y, test_fraction, seed, standardize)


# ----------------------------------------------------------------------------- helpers
def _splits(name: str, x: np.ndarray, y: np.ndarray | None, test_fraction: float, seed: int, standardize: bool):
    if len(x) < 2:
        raise InvalidInputError(f"data '{name}' has {len(x)} example(s); a train/test split needs at least 2")
    splits = make_splits(name, x, y, test_fraction, seed)
    if standardize:
        from zoo.datasets.splits import standardized

        splits = standardized(splits)
    return splits


def _path(path: str, kind: str) -> Path:
    file = Path(path).expanduser()
    if not file.is_file():
        raise NotFoundError(f"no file at '{path}' ({kind}:PATH needs a .{kind} file)")
    return file


#: How NumPy's files begin: .npy arrays, and .npz archives (zip files).
MAGIC = {"npy": b"\x93NUMPY", "npz": b"PK"}


def _read_numpy(path: str, kind: str) -> Any:
    file = _path(path, kind)
    with open(file, "rb") as f:
        start = f.read(6)
    if not start:
        raise InvalidInputError(f"'{path}' is empty")
    if not any(start.startswith(magic) for magic in MAGIC.values()):
        raise InvalidInputError(
            f"'{path}' is not a NumPy .{kind} file (save it with np.{'save' if kind == 'npy' else 'savez'})"
        )
    try:
        return np.load(file, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        raise InvalidInputError(f"cannot read '{path}' as a NumPy .{kind} file: {first_line(err)}") from None


#: The value that is white in an integer image array, by dtype.
IMAGE_WHITE = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


def _features(x: np.ndarray, where: str) -> np.ndarray:
    """float32 inputs (N, D), (N, C, L) or (N, C, H, W), checked to be usable; 8- and 16-bit
    images scaled to [0, 1] as the image loaders scale them (a likelihood over pixels takes
    [0, 1]; 0…255 would train on nonsense)."""
    if x.dtype == np.bool_ or not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise InvalidInputError(f"'{where}' has dtype {x.dtype}; zoo needs real numbers (a float or integer array)")
    if not 2 <= x.ndim <= 4:
        raise InvalidInputError(
            f"'{where}' has shape {list(x.shape)}; zoo needs one row per example: (N, D) vectors, "
            "(N, C, L) 1-D signals or (N, C, H, W) images"
        )
    if x.size == 0:
        raise InvalidInputError(f"'{where}' is empty (shape {list(x.shape)})")
    white = IMAGE_WHITE.get(x.dtype) if x.ndim == 4 else None
    x = x.astype(np.float32)
    if white is not None:
        x /= white
    bad = ~np.isfinite(x)
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        raise InvalidInputError(
            f"'{where}' has {int(bad.sum())} NaN or infinite value(s), the first in row {row}; "
            "remove or impute them first"
        )
    return x


def _labels(y: np.ndarray, n: int, where: str) -> np.ndarray:
    if y.ndim != 1 or len(y) != n:
        raise InvalidInputError(f"'{where}' has shape {list(y.shape)}; labels must be ({n},), one per example")
    if not (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.floating)) or y.dtype == np.bool_:
        raise InvalidInputError(f"'{where}' has dtype {y.dtype}; labels must be integer class ids 0, 1, …")
    if not np.all(np.isfinite(y)) or np.any(y != np.round(y)) or (len(y) and (y.min() < 0 or y.max() >= 2**31)):
        # past 2³¹: past any class count, and uint64 ids past 2⁶³ would wrap to negative int64
        raise InvalidInputError(f"'{where}' must hold integer class ids 0, 1, … (below 2³¹)")
    return y.astype(np.int64)


#: Label cells that say the label is missing (compared in lower case).
MISSING_CELLS = ("", "na", "nan", "n/a", "null", "none")


def _read_csv_rows(path: str) -> list[tuple[int, list[str]]]:
    """(line number, cells) of the non-blank rows."""
    file = _path(path, "csv")
    try:
        with open(file, newline="", encoding="utf-8-sig") as f:  # -sig: a spreadsheet's BOM is not a name
            rows = [
                (i, [c.strip() for c in row]) for i, row in enumerate(csv.reader(f), 1) if any(c.strip() for c in row)
            ]
    except (UnicodeDecodeError, csv.Error) as err:
        raise InvalidInputError(f"cannot read '{path}' as CSV text: {err}") from None
    if not rows:
        raise InvalidInputError(f"'{path}' is empty")
    return rows


def _is_header(first: list[str], second: list[str] | None, label: str | int | None) -> bool:
    """Whether a CSV's first row names its columns (see the module's docstring)."""
    words = [not _is_number(c) and c.lower() not in MISSING_CELLS for c in first]
    if not any(_is_number(c) for c in first):
        return True
    if isinstance(label, str) and not _is_number(label) and label in first:
        return True
    return second is not None and any(w and _is_number(c) for w, c in zip(words, second, strict=False))


def _is_pandas_index(header: list[str] | None, body: list[tuple[int, list[str]]]) -> bool:
    """Whether the first column is the row index that pandas' to_csv writes: unnamed, 0, 1, 2, …"""
    return header is not None and header[0] == "" and [r[0] for _, r in body] == [str(i) for i in range(len(body))]


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _column(label: str | int, header: list[str] | None, width: int, path: str) -> int:
    if isinstance(label, bool) or not isinstance(label, (str, int)):
        raise InvalidInputError(f"label must be a column name or index, got {label!r}")
    if isinstance(label, int):
        if not -width <= label < width:
            raise InvalidInputError(f"'{path}' has {width} columns; label column {label} is out of range")
        return label % width
    if header is None:
        raise InvalidInputError(f"'{path}' has no header row, so label={label} names no column; pass its index")
    if label not in header:
        raise InvalidInputError(f"'{path}' has no column '{label}' (it has: {', '.join(header)})")
    return header.index(label)


def _label_ids(cells: list[str], path: str) -> np.ndarray:
    """Integer ids as written (0, 1, …), else names numbered in sorted order; numbers that are
    not ids (−1, 2.5) are refused, not numbered as names in the order of their text."""
    if all(_is_number(c) for c in cells):
        values = [float(c) for c in cells]
        wrong = next((c for c, v in zip(cells, values, strict=True) if not (v == round(v) and 0 <= v < 2**31)), None)
        if wrong is not None:
            raise InvalidInputError(f"'{path}' has the label '{wrong}'; labels are class ids 0, 1, … or names")
        return np.array(values, dtype=np.int64)
    names = sorted(set(cells))
    return np.array([names.index(c) for c in cells], dtype=np.int64)

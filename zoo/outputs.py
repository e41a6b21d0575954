"""Writing what a model produces, by the kind of data it models: images as PNG grids (see
zoo.images), vectors and 1-D signals as .npy arrays of shape (N, *input_shape), with a line
plot beside the array for signals."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from torch import Tensor

from zoo.atomic import refuse_model_file, write_output
from zoo.errors import InvalidInputError
from zoo.images import grid_png
from zoo.nets import data_kind

#: The file each kind of data is written to.
SUFFIXES = {"image": ".png", "vector": ".npy", "signal": ".npy"}


def output_suffix(shape: Sequence[int]) -> str:
    """'.png' for images, '.npy' for vectors and signals."""
    return SUFFIXES[data_kind(shape)]


def check_output(path: str | os.PathLike, shape: Sequence[int]) -> Path:
    """`path`, checked before any work is done: its suffix fits the data, its folder exists."""
    path = Path(path)
    kind, suffix = data_kind(shape), output_suffix(shape)
    if path.suffix.lower() != suffix:
        what = {"image": "a PNG grid", "vector": "a NumPy array", "signal": "a NumPy array and a line plot"}[kind]
        raise InvalidInputError(f"output '{path}' must end in {suffix}: this model's {kind}s are written as {what}")
    if not path.parent.is_dir():
        raise InvalidInputError(f"cannot write '{path}': folder '{path.parent}' does not exist")
    return refuse_model_file(path)


def output_bytes(x: Tensor) -> bytes:
    """Model outputs (N, *shape) as the bytes of their file: a grid PNG for images, an .npy
    array for vectors and signals (the trainer makes them on its thread and writes them on its
    background writer)."""
    if data_kind(tuple(x.shape[1:])) == "image":
        return grid_png(x)
    return npy_bytes(x)


def save_outputs(x: Tensor, path: str | os.PathLike) -> list[Path]:
    """Write model outputs (N, *shape): a grid PNG for images; for vectors and signals an .npy
    array, plus (for signals) a line plot PNG with the same stem. Returns the files."""
    shape = tuple(x.shape[1:])
    written = [write_output(check_output(path, shape), output_bytes(x))]
    if data_kind(shape) == "signal":
        from zoo.plots import signal_plot

        written.append(signal_plot(x.detach().float().cpu().numpy(), written[0].with_suffix(".png")))
    return written


def save_reconstruction_outputs(originals: Tensor, reconstructions: Tensor, path: str | os.PathLike) -> list[Path]:
    """Images: one PNG, originals above reconstructions. Vectors and signals: the
    reconstructions in `path` (.npy), the originals beside it in `<stem>-originals.npy`, and for
    signals a line plot of both (`<stem>.png`)."""
    shape = tuple(originals.shape[1:])
    path = check_output(path, shape)
    if data_kind(shape) == "image":
        from zoo.images import save_comparison

        return [save_comparison(originals, reconstructions, path)]
    written = [save_npy(reconstructions, path), save_npy(originals, path.with_name(f"{path.stem}-originals.npy"))]
    if data_kind(shape) == "signal":
        from zoo.plots import signal_plot

        arrays = [t.detach().float().cpu().numpy() for t in (reconstructions, originals)]
        written.append(signal_plot(arrays[0], path.with_suffix(".png"), references=arrays[1]))
    return written


def npy_bytes(x: Tensor) -> bytes:
    """A tensor as a float32 .npy file's bytes."""
    buffer = io.BytesIO()
    np.save(buffer, x.detach().float().cpu().numpy(), allow_pickle=False)
    return buffer.getvalue()


def save_npy(x: Tensor, path: str | os.PathLike) -> Path:
    """Write a tensor as a float32 .npy array atomically."""
    return write_output(path, npy_bytes(x))

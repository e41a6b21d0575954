"""Image grids as PNG: samples, and originals above reconstructions."""

from __future__ import annotations

import io
import math
import os
from pathlib import Path

import torch
from torch import Tensor

from zoo import atomic
from zoo.errors import InvalidInputError


def grid(images: Tensor, columns: int | None = None, padding: int = 2) -> Tensor:
    """(N, C, H, W) in [0, 1] → one (3, H', W') image, `columns` per row (default √N)."""
    from torchvision.utils import make_grid

    if images.dim() != 4:
        raise InvalidInputError(f"image grids need (N, C, H, W) images, got shape {list(images.shape)}")
    columns = columns or max(1, math.ceil(math.sqrt(len(images))))
    return make_grid(images.detach().float().clamp(0, 1).cpu(), nrow=columns, padding=padding, pad_value=1.0)


def save_png(image: Tensor, path: str | os.PathLike, scale: int = 1) -> Path:
    """Write a (C, H, W) image in [0, 1] as PNG atomically, enlarged `scale` times (nearest)."""
    from PIL import Image

    path = Path(path)
    if path.suffix.lower() != ".png":
        raise InvalidInputError(f"output '{path}' must end in .png")
    if not path.parent.is_dir():
        raise InvalidInputError(f"cannot write '{path}': folder '{path.parent}' does not exist")
    pixels = (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    picture = Image.fromarray(pixels.squeeze(-1) if pixels.shape[-1] == 1 else pixels)
    if scale > 1:
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    try:
        atomic.write_bytes(path, buffer.getvalue())
    except OSError as err:
        raise InvalidInputError(f"cannot write '{path}': {err.strerror or err}") from None
    return path


def save_grid(images: Tensor, path: str | os.PathLike, columns: int | None = None) -> Path:
    """Save images as one grid PNG; small images are enlarged so the grid is readable."""
    scale = max(1, math.ceil(56 / max(images.shape[-2], 1)))
    return save_png(grid(images, columns), path, scale=scale)


def save_comparison(originals: Tensor, reconstructions: Tensor, path: str | os.PathLike) -> Path:
    """Originals in the upper rows, their reconstructions in the lower rows (same column
    order), with a blank row between the two halves."""
    columns = min(len(originals), max(1, math.ceil(math.sqrt(len(originals) * 2))))
    rows = math.ceil(len(originals) / columns)
    pad = torch.ones((rows * columns - len(originals), *originals.shape[1:]))
    separator = torch.ones((columns, *originals.shape[1:]))
    stacked = torch.cat([originals.cpu(), pad, separator, reconstructions.cpu(), pad])
    return save_grid(stacked, path, columns=columns)

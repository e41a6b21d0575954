"""Image grids as PNG: samples, originals above reconstructions, and labelled rows."""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence
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


def check_png_path(path: str | os.PathLike) -> Path:
    """`path` as a Path, refused in one line unless it names a .png file in an existing folder."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise InvalidInputError(f"output '{path}' must end in .png")
    if not path.parent.is_dir():
        raise InvalidInputError(f"cannot write '{path}': folder '{path.parent}' does not exist")
    return atomic.refuse_model_file(path)


def png_bytes(image: Tensor, scale: int = 1) -> bytes:
    """A (C, H, W) image in [0, 1] as a PNG file's bytes, enlarged `scale` times (nearest)."""
    from PIL import Image

    pixels = (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    picture = Image.fromarray(pixels.squeeze(-1) if pixels.shape[-1] == 1 else pixels)
    if scale > 1:
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
    buffer = io.BytesIO()
    # zlib's fastest level: up to 5x faster than PIL's default 6, for files 10-50% larger
    # (the trainer writes a sample grid after every epoch)
    picture.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def save_png(image: Tensor, path: str | os.PathLike, scale: int = 1) -> Path:
    """Write a (C, H, W) image in [0, 1] as PNG atomically, enlarged `scale` times (nearest)."""
    return atomic.write_output(check_png_path(path), png_bytes(image, scale))


def grid_png(images: Tensor, columns: int | None = None) -> bytes:
    """Images as one grid PNG's bytes; small images are enlarged so the grid is readable."""
    scale = max(1, math.ceil(56 / max(images.shape[-2], 1)))
    picture = grid(images, columns)
    # make_grid repeats a grey channel three times; write grey grids with one (a third of the bytes)
    return png_bytes(picture[:1] if images.shape[1] == 1 else picture, scale=scale)


def save_grid(images: Tensor, path: str | os.PathLike, columns: int | None = None) -> Path:
    """Save images as one grid PNG (see `grid_png`)."""
    return atomic.write_output(check_png_path(path), grid_png(images, columns))


def save_comparison(originals: Tensor, reconstructions: Tensor, path: str | os.PathLike) -> Path:
    """Originals in the upper rows, their reconstructions in the lower rows (same column
    order), with a blank row between the two halves."""
    columns = min(len(originals), max(1, math.ceil(math.sqrt(len(originals) * 2))))
    rows = math.ceil(len(originals) / columns)
    pad = torch.ones((rows * columns - len(originals), *originals.shape[1:]))
    separator = torch.ones((columns, *originals.shape[1:]))
    stacked = torch.cat([originals.cpu(), pad, separator, reconstructions.cpu(), pad])
    return save_grid(stacked, path, columns=columns)


def save_rows(rows: Sequence[tuple[str, Tensor]], path: str | os.PathLike) -> Path:
    """One labelled row per (label, images (M, C, H, W)): the label in a left margin, the
    images side by side, enlarged like `save_grid`'s so that small images stay readable."""
    from PIL import Image, ImageDraw, ImageFont

    if not rows:
        raise InvalidInputError("no rows to draw")
    strips = [grid(images, columns=len(images)) for _, images in rows]
    scale = max(1, math.ceil(56 / max(rows[0][1].shape[-2], 1)))
    font = ImageFont.load_default()
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    margin = 8 + max(int(measure.textlength(label, font=font)) for label, _ in rows)
    width = margin + max(s.shape[-1] for s in strips) * scale
    heights = [s.shape[-2] * scale for s in strips]
    canvas = Image.new("RGB", (width, sum(heights)), "white")
    draw = ImageDraw.Draw(canvas)
    top = 0
    for (label, _), strip, height in zip(rows, strips, heights, strict=True):
        pixels = (strip * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
        picture = Image.fromarray(pixels).resize((strip.shape[-1] * scale, height), Image.NEAREST)
        canvas.paste(picture, (margin, top))
        draw.text((4, top + height // 2), label, fill="black", font=font, anchor="lm")
        top += height
    return save_png(_to_tensor(canvas), path)


def _to_tensor(picture) -> Tensor:
    import numpy as np

    return torch.from_numpy(np.asarray(picture).copy()).permute(2, 0, 1).float() / 255

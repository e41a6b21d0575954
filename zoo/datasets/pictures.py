"""PIL images → one float32 array in [0, 1], (N, C, H, W): for the image-folder and Hugging
Face loaders, which get pictures of any mode and size."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from zoo.errors import InvalidInputError


def to_array(
    images: Iterable[Any], names: list[str], size: int | None, channels: int | None, rows: np.ndarray | None = None
) -> np.ndarray:
    """Convert PIL images to grey (channels 1) or RGB (3) — by default whatever the first
    image is — resized to size×size when `size` is given; all must then agree in size.
    `rows`: the row of the array each image fills (default: their order), so that a loader
    reads its files in the order they are listed and gets them in the order it needs."""
    if size is not None and (not isinstance(size, int) or size < 1):
        raise InvalidInputError(f"size must be a positive number of pixels, got {size!r}")
    if channels not in (None, 1, 3):
        raise InvalidInputError(f"channels must be 1 or 3, got {channels!r}")
    from PIL import Image

    out, first = None, None  # filled in place: no per-image float arrays, no copy to stack them
    for i, (image, name) in enumerate(zip(images, names, strict=True)):
        if image.mode == "F" and not np.isfinite(np.asarray(image)).all():
            # converting to 8 bits would silently turn NaN and infinities into ordinary pixels
            raise InvalidInputError(f"image {name} has NaN or infinite pixel values")
        if channels is None:
            channels = 1 if image.mode in ("1", "L", "LA", "I", "I;16", "F") else 3
        image = image.convert("L" if channels == 1 else "RGB")
        if size is not None and image.size != (size, size):
            image = image.resize((size, size), Image.Resampling.BILINEAR)
        if first is None:
            first = (name, image.size)
            out = np.empty((len(names), channels, image.size[1], image.size[0]), dtype=np.float32)
        elif image.size != first[1]:
            raise InvalidInputError(
                f"images differ in size ({first[0]} is {first[1][0]}×{first[1][1]}, {name} is "
                f"{image.size[0]}×{image.size[1]}); pass the option size=N to resize them"
            )
        pixels = np.asarray(image)
        row = i if rows is None else rows[i]
        np.divide(pixels[None] if channels == 1 else pixels.transpose(2, 0, 1), 255.0, out=out[row], dtype=np.float32)
    if out is None:
        raise InvalidInputError("no images to load")
    return out

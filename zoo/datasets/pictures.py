"""PIL images → one float32 array in [0, 1], (N, C, H, W): for the image-folder and Hugging
Face loaders, which get pictures of any mode and size."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from zoo.errors import InvalidInputError

#: Modes with more than 8 bits a pixel, and the value that is white in each: converting them
#: to 8-bit "L" would clip 16-bit pixels to 255 (a white image) and floats in [0, 1] to 0.
DEEP_MODES = {"I;16": 65535.0, "I;16B": 65535.0, "I;16L": 65535.0, "I": 65535.0, "F": 1.0}
GREY_MODES = ("1", "L", "LA", *DEEP_MODES)


def to_array(
    images: Iterable[Any], names: list[str], size: int | None, channels: int | None, rows: np.ndarray | None = None
) -> np.ndarray:
    """Convert PIL images to grey (channels 1) or RGB (3) — by default whatever the first
    image is; a colour image after a grey first one is refused — resized to size×size when
    `size` is given; all must then agree in size. 16-bit and float pixels keep their depth.
    `rows`: the row of the array each image fills (default: their order), so that a loader
    reads its files in the order they are listed and gets them in the order it needs."""
    if size is not None and (not isinstance(size, int) or size < 1):
        raise InvalidInputError(f"size must be a positive number of pixels, got {size!r}")
    if channels not in (None, 1, 3):
        raise InvalidInputError(f"channels must be 1 or 3, got {channels!r}")
    from PIL import Image

    out, first = None, None  # filled in place: no per-image float arrays, no copy to stack them
    guessed = channels is None
    for i, (image, name) in enumerate(zip(images, names, strict=True)):
        if image.mode == "F" and not np.isfinite(np.asarray(image)).all():
            # converting to 8 bits would silently turn NaN and infinities into ordinary pixels
            raise InvalidInputError(f"image {name} has NaN or infinite pixel values")
        if channels is None:
            channels = 1 if image.mode in GREY_MODES else 3
        elif guessed and channels == 1 and image.mode not in GREY_MODES:
            raise InvalidInputError(
                f"images differ in colour ({first[0]} is grey, {name} is {image.mode}); "
                "pass the option channels=3 (or channels=1 for grey)"
            )
        image, white = _eight_bit_or_float(image, name, channels)
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
        if channels == 3 and pixels.ndim == 2:  # a deep grey image asked for in colour
            pixels = np.repeat(pixels[..., None], 3, axis=2)
        np.divide(pixels[None] if channels == 1 else pixels.transpose(2, 0, 1), white, out=out[row], dtype=np.float32)
    if out is None:
        raise InvalidInputError("no images to load")
    return out


def _eight_bit_or_float(image: Any, name: str, channels: int) -> tuple[Any, float]:
    """`image` as 8-bit grey or RGB, or, for a mode of more than 8 bits, as one float ("F")
    image on its own scale; and the value that is white. Deep pixels outside 0 … white are
    refused: they are not an image's intensities."""
    white = DEEP_MODES.get(image.mode)
    if white is None:
        return image.convert("L" if channels == 1 else "RGB"), 255.0
    from PIL import Image

    pixels = np.asarray(image, dtype=np.float32)
    if pixels.size and (pixels.min() < 0 or pixels.max() > white):
        raise InvalidInputError(
            f"image {name} ({image.mode}) has pixel values in {pixels.min():g} … {pixels.max():g}; "
            f"zoo reads this mode as 0 … {white:g}"
        )
    return Image.fromarray(pixels, mode="F"), white

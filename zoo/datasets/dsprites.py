"""dSprites (Matthey et al. 2017), generated from its definition instead of downloaded.

Every combination of 3 shapes (square, ellipse, heart) × 6 scales (0.5 … 1) × 40
orientations (0 … 2π) × 32 × 32 positions is a 64×64 binary image: 737,280 in all. The
ground-truth factor indices of each image are kept (`TensorData.factors`, columns
`FACTOR_NAMES`); the class label is the shape.

The full set is 12 GB as float32, so the loader draws a seeded subset of `n` factor
combinations without replacement (`n=0`: all of them, in a seeded order) and holds out
`test_fraction` of it, stratified by shape. Shapes are rasterised exactly at pixel
centres from their implicit equations, so the images are a function of the factors only.
"""

from __future__ import annotations

import math

import numpy as np

from zoo.config import check
from zoo.datasets.builtin import make_splits
from zoo.plugin import DatasetSpec

FACTOR_NAMES = ("shape", "scale", "orientation", "pos_x", "pos_y")
FACTOR_SIZES = (3, 6, 40, 32, 32)
SHAPES = ("square", "ellipse", "heart")
SCALES = np.linspace(0.5, 1.0, 6)
ORIENTATIONS = np.linspace(0.0, 2 * np.pi, 40)
POSITIONS = np.linspace(0.0, 1.0, 32)
SIZE = 64
#: Shape centres range over [MARGIN, SIZE − MARGIN] pixels; half-size at scale 1 is RADIUS.
MARGIN, RADIUS = 13.0, 9.0
DEFAULT_N = 10_000

dsprites = DatasetSpec(
    name="dsprites",
    loader="zoo.datasets.dsprites:load_dsprites",
    summary="dSprites generated from its definition (shape × scale × orientation × x × y), factors kept",
    shape=(1, SIZE, SIZE),
    num_classes=len(SHAPES),
    size=f"737,280 combinations; a seeded subset of n (default {DEFAULT_N:,}), 10% held out",
)


def load_dsprites(n: int = DEFAULT_N, seed: int = 0, test_fraction: float = 0.1):  # -> Splits
    """A seeded subset of `n` dSprites images (0: all 737,280) with shape labels and factors."""
    total = math.prod(FACTOR_SIZES)
    check(isinstance(n, int) and 0 <= n <= total, f"dsprites option n must be 0 (all) … {total}, got {n!r}")
    rng = np.random.Generator(np.random.PCG64(seed))
    rows = rng.permutation(total) if n == 0 else rng.choice(total, size=n, replace=False)
    factors = np.stack(np.unravel_index(rows, FACTOR_SIZES), axis=1).astype(np.int64)
    images = render(factors)[:, None].astype(np.float32)
    name = "dsprites" if (n, seed) == (DEFAULT_N, 0) else f"dsprites?n={n}&seed={seed}"
    return make_splits(name, images, factors[:, 0].copy(), test_fraction, seed, factors, FACTOR_NAMES)


def render(factors: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """Binary 64×64 images (uint8 0/1) for rows of factor indices (N, 5)."""
    out = np.empty((len(factors), SIZE, SIZE), dtype=np.uint8)
    centres = np.arange(SIZE, dtype=np.float64) + 0.5
    py, px = np.meshgrid(centres, centres, indexing="ij")
    for start in range(0, len(factors), chunk):
        f = factors[start : start + chunk]
        scale = SCALES[f[:, 1]][:, None, None] * RADIUS
        angle = ORIENTATIONS[f[:, 2]][:, None, None]
        cx = (MARGIN + POSITIONS[f[:, 3]] * (SIZE - 2 * MARGIN))[:, None, None]
        cy = (MARGIN + POSITIONS[f[:, 4]] * (SIZE - 2 * MARGIN))[:, None, None]
        dx, dy = px - cx, py - cy
        cos, sin = np.cos(angle), np.sin(angle)
        u = (cos * dx + sin * dy) / scale  # shape coordinates: unit half-size
        v = (-sin * dx + cos * dy) / scale
        inside = np.select(
            [f[:, 0, None, None] == 0, f[:, 0, None, None] == 1],
            [np.maximum(np.abs(u), np.abs(v)) <= 1, u**2 + (2 * v) ** 2 <= 1],
            _heart(u, v),
        )
        out[start : start + chunk] = inside
    return out


def _heart(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The heart (x² + y² − 1)³ ≤ x² y³, sized to the unit half-size, lobes up in the image."""
    x, y = 1.15 * u, -1.15 * v + 0.12
    return (x**2 + y**2 - 1) ** 3 <= x**2 * y**3

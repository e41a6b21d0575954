"""Image tasks built on a trained model's encode / decode / reconstruct / nll: interpolation
between codes, denoising, inpainting and anomaly scores (the code-space map is in zoo.plots)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from zoo.datasets.splits import TensorData
from zoo.errors import InvalidInputError
from zoo.family import Family

MASKS = ("centre", "top", "bottom", "left", "right", "random")


def label_conditions(model: Family, labels: Tensor | None) -> dict[str, Tensor]:
    """The keyword arguments that pass class labels to a conditional family (none otherwise)."""
    return {"label": labels.to(model.device)} if model.conditional and labels is not None else {}


@torch.no_grad()
def encode_all(model: Family, data: TensorData, batch_size: int = 500) -> Tensor:
    """The codes of every example of `data` (with its labels for conditional families), on the CPU."""
    codes = []
    for batch in data.batches(batch_size):
        codes.append(model.encode(batch.x.to(model.device), **label_conditions(model, batch.y)).cpu())
    return torch.cat(codes)


@torch.no_grad()
def encode_head(model: Family, data: TensorData, n: int = 2) -> Tensor:
    """The codes of the first `n` examples of `data`: enough to check what kind of codes the
    model makes before encoding a whole split."""
    head = data.head(n)
    return model.encode(head.x.to(model.device), **label_conditions(model, head.y))


def _continuous_codes(model: Family, x: Tensor) -> Tensor:
    if model.conditional:
        raise InvalidInputError(f"family '{model.name}' is conditional: interpolation needs an unconditional family")
    codes = model.encode(x)
    if not codes.is_floating_point():
        raise InvalidInputError(f"family '{model.name}' has discrete codes: there is nothing between two of them")
    return codes


@torch.no_grad()
def interpolate(model: Family, start: Tensor, end: Tensor, steps: int = 8) -> Tensor:
    """Images decoded along the straight line between the codes of `start` and `end` (N, C, H, W):
    shape (N, steps, C, H, W), the first and last being the two reconstructions."""
    a, b = _continuous_codes(model, start), _continuous_codes(model, end)
    weights = torch.linspace(0, 1, steps, device=a.device).view(1, steps, *([1] * (a.dim() - 1)))
    path = a.unsqueeze(1) * (1 - weights) + b.unsqueeze(1) * weights
    return model.decode(path.flatten(0, 1)).view(len(start), steps, *start.shape[1:])


@torch.no_grad()
def mean_codes(model: Family, x: Tensor, labels: Tensor, classes: list[int]) -> Tensor:
    """The mean code of the images of each class in `classes`."""
    codes = _continuous_codes(model, x)
    means = []
    for c in classes:
        chosen = codes[labels.to(codes.device) == c]
        if len(chosen) == 0:
            raise InvalidInputError(f"the data has no images of class {c}")
        means.append(chosen.mean(0))
    return torch.stack(means)


def add_noise(x: Tensor, std: float, seed: int = 0) -> Tensor:
    """x plus Gaussian noise of standard deviation `std`, clipped to [0, 1]."""
    generator = torch.Generator().manual_seed(seed)
    return (x + std * torch.randn(x.shape, generator=generator).to(x.device)).clamp(0, 1)


def mask(kind: str, shape: tuple[int, ...], seed: int = 0) -> Tensor:
    """A (C, H, W) mask of known pixels (1) and missing ones (0): a centre square of half the
    side, one half of the image, or a random half of the pixels."""
    if kind not in MASKS:
        raise InvalidInputError(f"unknown mask '{kind}' (known: {', '.join(MASKS)})")
    c, h, w = shape
    known = torch.ones(shape)
    if kind == "centre":
        known[:, h // 4 : h // 4 + h // 2, w // 4 : w // 4 + w // 2] = 0
    elif kind == "top":
        known[:, : h // 2] = 0
    elif kind == "bottom":
        known[:, h // 2 :] = 0
    elif kind == "left":
        known[:, :, : w // 2] = 0
    elif kind == "right":
        known[:, :, w // 2 :] = 0
    else:
        generator = torch.Generator().manual_seed(seed)
        known = (torch.rand((1, h, w), generator=generator) < 0.5).float().expand(c, h, w).clone()
    return known


@torch.no_grad()
def inpaint(model: Family, x: Tensor, known: Tensor, iterations: int = 20, **conditions: Any) -> Tensor:
    """Fill the missing pixels of `x` by repeated reconstruction: start them at grey, then
    replace them with the model's reconstruction `iterations` times, keeping known pixels."""
    known = known.to(x.device)
    current = known * x + (1 - known) * 0.5
    for _ in range(iterations):
        current = known * x + (1 - known) * model.reconstruct(current, **conditions)
    return current


@torch.no_grad()
def anomaly_scores(
    model: Family, x: Tensor, k: int = 100, batch_size: int = 100, **conditions: Any
) -> tuple[Tensor, str]:
    """A score per image, higher for images the model finds less likely, and what it is: the
    importance-sampled −log p(x) in nats where the family has a likelihood, else the summed
    squared reconstruction error."""
    if "nll" in model.capabilities():
        return model.nll(x, k=k, **conditions).per_example.float(), f"nll (nats, K={k})"
    if "reconstruct" not in model.capabilities():
        raise InvalidInputError(f"family '{model.name}' has neither a likelihood nor a reconstruction to score with")
    errors = []
    for start in range(0, len(x), batch_size):
        part = x[start : start + batch_size]
        extra = {key: value[start : start + batch_size] for key, value in conditions.items()}
        errors.append((model.reconstruct(part, **extra) - part).pow(2).flatten(1).sum(1).cpu())
    return torch.cat(errors), "squared reconstruction error"

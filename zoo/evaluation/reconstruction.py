"""Reconstruction error: MSE per value, and for images in [0, 1] PSNR and SSIM, each a mean over images."""

from __future__ import annotations

import torch
from torch import Tensor


def reconstruction_metrics(originals: Tensor, reconstructions: Tensor) -> dict[str, float]:
    """mse: mean squared error per value; on originals in [0, 1], with the reconstructions
    clamped to it, also psnr: mean over images of 10·log10(1/MSE) in dB (MSE floored at
    1e-10), and for images ssim: mean structural similarity (torchmetrics, Gaussian window
    of 11 pixels or the image size if smaller, data range 1). Data outside [0, 1] (standardised
    vectors) has no peak value for PSNR to be relative to, and is not clamped."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    x, r = originals.double().cpu(), reconstructions.double().cpu()
    unit = bool(x.min() >= 0 and x.max() <= 1)
    if unit:
        r = r.clamp(0, 1)
    per_image = (x - r).pow(2).flatten(1).mean(1)
    metrics = {"mse": per_image.mean().item()}
    if unit:
        metrics["psnr"] = (10 * torch.log10(1 / per_image.clamp_min(1e-10))).mean().item()
    if unit and x.dim() == 4:
        window = min(11, _odd_at_most(min(x.shape[-2:])))
        metrics["ssim"] = structural_similarity_index_measure(r, x, data_range=1.0, kernel_size=window).item()
    return metrics


def _odd_at_most(n: int) -> int:
    return n if n % 2 else n - 1

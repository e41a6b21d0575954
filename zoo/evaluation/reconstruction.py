"""Reconstruction error of images in [0, 1]: MSE per pixel, PSNR and SSIM, each a mean over images."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def reconstruction_metrics(originals: Tensor, reconstructions: Tensor) -> dict[str, float]:
    """mse: mean squared error per pixel; psnr: mean over images of 10·log10(1/MSE) in dB
    (MSE floored at 1e-10); ssim: mean structural similarity (torchmetrics, Gaussian window
    of 11 pixels or the image size if smaller, data range 1)."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    x, r = originals.double().cpu(), reconstructions.double().clamp(0, 1).cpu()
    per_image = (x - r).pow(2).flatten(1).mean(1)
    psnr = (10 * torch.log10(1 / per_image.clamp_min(1e-10))).mean().item()
    metrics = {"mse": per_image.mean().item(), "psnr": psnr}
    if x.dim() == 4:
        window = min(11, _odd_at_most(min(x.shape[-2:])))
        metrics["ssim"] = structural_similarity_index_measure(r, x, data_range=1.0, kernel_size=window).item()
    return metrics


def _odd_at_most(n: int) -> int:
    return n if n % 2 else n - 1


def psnr(mse: float) -> float:
    """PSNR in dB of a mean squared error on data in [0, 1]."""
    return 10 * math.log10(1 / max(mse, 1e-10))

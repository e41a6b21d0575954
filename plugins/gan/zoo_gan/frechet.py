"""Fréchet distance between two sets of features (as in FID), in the feature space of
zoo's digit classifier for the training data: the gan's held-out score."""

from __future__ import annotations

import functools

import torch
from torch import Tensor

import zoo


def frechet_distance(a: Tensor, b: Tensor) -> float:
    """‖μa − μb‖² + tr(Σa + Σb − 2(Σa Σb)^½) of features a (N, F) and b (M, F), in float64."""
    a, b = a.double(), b.double()
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.cov(a.t()), torch.cov(b.t())
    root_a = _sqrt_psd(cov_a)
    # tr((Σa Σb)^½) = tr((Σa^½ Σb Σa^½)^½), a symmetric PSD matrix: its eigenvalues' roots.
    cross = torch.linalg.eigvalsh(root_a @ cov_b @ root_a).clamp_min(0).sqrt().sum()
    return ((mu_a - mu_b).pow(2).sum() + cov_a.trace() + cov_b.trace() - 2 * cross).item()


def _sqrt_psd(matrix: Tensor) -> Tensor:
    values, vectors = torch.linalg.eigh(matrix)
    return vectors @ torch.diag(values.clamp_min(0).sqrt()) @ vectors.t()


@functools.lru_cache(maxsize=4)
def judge(data: str, device: str) -> torch.nn.Module:
    """zoo's classifier for `data` (trained once and cached on disk), kept per process."""
    try:
        return zoo.digit_classifier(data, device=device)
    except zoo.InvalidInputError as err:
        raise zoo.InvalidInputError(
            f"the gan's held-out Fréchet distance needs a classifier for '{data}': {err}; "
            "train without it with --set model.fd_samples=0 --set train.keep_best=false"
        ) from None

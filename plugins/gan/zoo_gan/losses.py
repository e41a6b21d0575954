"""Adversarial losses on critic scores: non-saturating (Goodfellow et al. 2014), hinge
(Lim & Ye 2017; Miyato et al. 2018) and WGAN-GP (Gulrajani et al. 2017)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from zoo import Critic

LOSSES = ("ns", "hinge", "wgan-gp")


def critic_loss(kind: str, real: Tensor, fake: Tensor) -> Tensor:
    """The critic's loss from its scores on real and generated images (no gradient penalty)."""
    if kind == "ns":
        return F.softplus(-real).mean() + F.softplus(fake).mean()
    if kind == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    return fake.mean() - real.mean()


def generator_loss(kind: str, fake: Tensor) -> Tensor:
    """The generator's loss from the critic's scores on its images."""
    if kind == "ns":
        return F.softplus(-fake).mean()
    return -fake.mean()


def gradient_penalty(critic: Critic, real: Tensor, fake: Tensor, alpha: Tensor | None = None) -> Tensor:
    """E[(‖∇ₓ D(x̂)‖₂ − 1)²] at x̂ = α·real + (1 − α)·fake, α ~ U(0, 1) per example."""
    if alpha is None:
        alpha = torch.rand(len(real), *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype)
    mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
    return (grad.flatten(1).norm(2, dim=1) - 1).pow(2).mean()

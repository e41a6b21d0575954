"""The VAE model: encoder and decoder parts, loss (negative ELBO with a β-weighted KL, or
Burgess et al.'s capacity-annealed KL)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from zoo import Batch, ConvLatentConfig, LatentFamily, LossOutput, StandardNormal
from zoo.config import check
from zoo.latent import build_decoder
from zoo.parts import GaussianEncoder, gaussian_kl


@dataclass
class VAEConfig(ConvLatentConfig):
    beta: float = 1.0
    #: Capacity annealing (Burgess et al. 2018) when > 0: loss = rec + gamma·|kl − C|, with the
    #: target capacity C growing linearly from 0 to `capacity_max` nats over `capacity_steps`.
    gamma: float = 0.0
    capacity_max: float = 25.0
    capacity_steps: int = 10_000

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.beta >= 0, f"beta must be ≥ 0, got {self.beta}")
        check(self.gamma >= 0, f"gamma must be ≥ 0, got {self.gamma}")
        check(
            self.gamma == 0 or self.beta == 1,
            "beta and gamma are alternatives: set beta (β-VAE) or gamma with capacity_max (annealing), not both",
        )
        check(self.capacity_max >= 0, f"capacity_max must be ≥ 0, got {self.capacity_max}")
        check(self.capacity_steps >= 1, f"capacity_steps must be ≥ 1, got {self.capacity_steps}")


class VAE(LatentFamily):
    """Kingma & Welling's VAE; β ≠ 1 gives Higgins et al.'s β-VAE.

    Trained on loss = rec + β·kl per example (nats); `nelbo` = rec + kl is logged as well,
    the negative ELBO whatever β is. With gamma > 0 the loss is Burgess et al.'s
    rec + γ·|kl − C|, the target capacity C rising linearly from 0 to capacity_max nats
    over capacity_steps training steps (counted in a buffer, so runs resume exactly)."""

    name = "vae"
    config_class = VAEConfig
    headline_metric = "nelbo"

    def __init__(self, config: VAEConfig) -> None:
        super().__init__(config)
        self.encoder = GaussianEncoder(config.input_shape, config.latent_dim, config.channels, config.hidden_dim)
        self.decoder = build_decoder(config)
        self.prior = StandardNormal(config.latent_dim)
        if config.gamma:
            self.register_buffer("capacity_step", torch.zeros((), dtype=torch.int64))

    def capacity(self) -> Tensor:
        """The target KL (nats) at the current training step."""
        progress = self.capacity_step.clamp(max=self.config.capacity_steps) / self.config.capacity_steps
        return progress * self.config.capacity_max

    def loss(self, batch: Batch) -> LossOutput:
        posterior = self.encoder(batch.x)
        z = posterior.rsample()
        rec = -self.decoder(z).log_prob(batch.x).mean()
        kl = gaussian_kl(posterior.base_dist).mean()
        terms = {"nelbo": (rec + kl).detach(), "rec": rec.detach(), "kl": kl.detach()}
        if not self.config.gamma:
            return LossOutput(rec + self.config.beta * kl, terms)
        capacity = self.capacity()
        if self.training:
            self.capacity_step += 1
        return LossOutput(rec + self.config.gamma * (kl - capacity).abs(), terms | {"capacity": capacity})

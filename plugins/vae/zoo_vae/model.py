"""The VAE model: encoder and decoder parts, loss (negative ELBO with a β-weighted KL, or
Burgess et al.'s capacity-annealed KL), with the KL warm-up and free bits that keep the
code in use (against posterior collapse)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from zoo import (
    Batch,
    GaussianLatentConfig,
    LatentFamily,
    LossOutput,
    StandardNormal,
    importance_sampled_nll,
    takes_batch,
)
from zoo.config import check
from zoo.latent import build_decoder
from zoo.likelihood import NLLEstimate
from zoo.parts import free_bits_kl, gaussian_kl_per_dim, linear_warmup


@dataclass
class VAEConfig(GaussianLatentConfig):
    beta: float = 1.0
    #: KL warm-up when > 0: the KL weight rises linearly from 0 to `beta` over this many
    #: training steps (Bowman et al. 2016; Sønderby et al. 2016), so the decoder learns to use
    #: the code before the KL pulls it to the prior.
    kl_warmup_steps: int = 0
    #: Free bits λ (Kingma et al. 2016) when > 0: the trained KL term is Σ_j max(λ, KL_j),
    #: KL_j the batch-mean KL of latent dimension j in nats, so no dimension is pushed below λ.
    free_bits: float = 0.0
    #: Capacity annealing (Burgess et al. 2018) when > 0: loss = rec + gamma·|kl − C|, with the
    #: target capacity C growing linearly from 0 to `capacity_max` nats over `capacity_steps`.
    gamma: float = 0.0
    capacity_max: float = 25.0
    capacity_steps: int = 10_000

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.beta >= 0, f"beta must be ≥ 0, got {self.beta}")
        check(self.kl_warmup_steps >= 0, f"kl_warmup_steps must be ≥ 0, got {self.kl_warmup_steps}")
        check(self.free_bits >= 0, f"free_bits must be ≥ 0, got {self.free_bits}")
        check(self.gamma >= 0, f"gamma must be ≥ 0, got {self.gamma}")
        check(
            self.gamma == 0 or self.beta == 1,
            "beta and gamma are alternatives: set beta (β-VAE) or gamma with capacity_max (annealing), not both",
        )
        check(
            self.gamma == 0 or (self.kl_warmup_steps == 0 and self.free_bits == 0),
            "gamma (capacity annealing) has its own KL schedule: kl_warmup_steps and free_bits apply to β·KL only",
        )
        check(self.capacity_max >= 0, f"capacity_max must be ≥ 0, got {self.capacity_max}")
        check(self.capacity_steps >= 1, f"capacity_steps must be ≥ 1, got {self.capacity_steps}")


class VAE(LatentFamily):
    """Kingma & Welling's VAE; β ≠ 1 gives Higgins et al.'s β-VAE.

    Trained on loss = rec + β·kl per example (nats); `nelbo` = rec + kl is logged as well,
    the negative ELBO whatever β, warm-up or free bits are. With kl_warmup_steps the weight
    β·min(1, t/N) is logged as `beta`; with free_bits the KL term trained on is
    Σ_j max(λ, KL_j), and the smallest per-dimension KL is logged as `kl_min_dim`. With
    gamma > 0 the loss is Burgess et al.'s rec + γ·|kl − C|, the target capacity C rising
    linearly from 0 to capacity_max nats over capacity_steps training steps. Schedules count
    training steps in buffers, so runs resume exactly."""

    name = "vae"
    config_class = VAEConfig
    headline_metric = "nelbo"

    def __init__(self, config: VAEConfig) -> None:
        super().__init__(config)
        self.encoder = config.gaussian_encoder()
        self.decoder = build_decoder(config)
        self.prior = StandardNormal(config.latent_dim)
        if config.gamma:
            self.register_buffer("capacity_step", torch.zeros((), dtype=torch.int64))
        if config.kl_warmup_steps:
            self.register_buffer("kl_warmup_step", torch.zeros((), dtype=torch.int64))

    @takes_batch
    def nll(self, x: Tensor, k: int = 1000, seed: int = 0) -> NLLEstimate:
        return importance_sampled_nll(self.encoder, self.prior, self.decoder, x, k=k, seed=seed)

    def capacity(self) -> Tensor:
        """The target KL (nats) at the current training step."""
        return linear_warmup(self.capacity_step, self.config.capacity_steps) * self.config.capacity_max

    def kl_weight(self) -> Tensor | float:
        """β at the current training step: β·min(1, t/kl_warmup_steps) during warm-up."""
        if not self.config.kl_warmup_steps:
            return self.config.beta
        return linear_warmup(self.kl_warmup_step, self.config.kl_warmup_steps) * self.config.beta

    def loss(self, batch: Batch) -> LossOutput:
        posterior = self.encoder(batch.x)
        z = posterior.rsample()
        rec = -self.decoder(z).log_prob(batch.x).mean()
        kl_per_dim = gaussian_kl_per_dim(posterior.base_dist)
        kl = kl_per_dim.sum(1).mean()
        terms = {"nelbo": (rec + kl).detach(), "rec": rec.detach(), "kl": kl.detach()}
        if self.config.gamma:
            capacity = self.capacity()
            if self.training:
                self.capacity_step += 1
            return LossOutput(rec + self.config.gamma * (kl - capacity).abs(), terms | {"capacity": capacity})
        if self.config.free_bits:
            terms["kl_min_dim"] = kl_per_dim.detach().mean(0).min()
            kl = free_bits_kl(kl_per_dim, self.config.free_bits)
        beta = self.kl_weight()
        if self.config.kl_warmup_steps:
            terms["beta"] = beta
            if self.training:
                self.kl_warmup_step += 1
        return LossOutput(rec + beta * kl, terms)

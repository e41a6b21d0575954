"""The IWAE model: a VAE's parts trained on the K-sample importance-weighted bound."""

from __future__ import annotations

import math
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
from zoo.parts import gaussian_kl


@dataclass
class IWAEConfig(GaussianLatentConfig):
    #: Importance samples per image in training (and in the held-out bound); 1 is a VAE.
    k: int = 5

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.k >= 1, f"k must be ≥ 1, got {self.k}")


class IWAE(LatentFamily):
    """Burda et al.'s importance-weighted autoencoder: the parts of a VAE (Gaussian posterior,
    N(0, I) prior, the config's likelihood) trained on the K-sample bound
    log (1/K) Σ_k p(x|z_k) p(z_k) / q(z_k|x), which is tighter than the ELBO (K = 1) and
    gives a better generative model at K times the decoder work per step.

    Logged per image (nats): `iwnelbo` (the negative K-sample bound, the loss), `nelbo` (the
    ordinary negative ELBO from the same samples), `rec` and `kl`."""

    name = "iwae"
    config_class = IWAEConfig
    headline_metric = "iwnelbo"

    def __init__(self, config: IWAEConfig) -> None:
        super().__init__(config)
        self.encoder = config.gaussian_encoder()
        self.decoder = build_decoder(config)
        self.prior = StandardNormal(config.latent_dim)

    @takes_batch
    def nll(self, x: Tensor, k: int = 1000, seed: int = 0) -> NLLEstimate:
        return importance_sampled_nll(self.encoder, self.prior, self.decoder, x, k=k, seed=seed)

    def loss(self, batch: Batch) -> LossOutput:
        k, n = self.config.k, len(batch.x)
        posterior = self.encoder(batch.x)
        z = posterior.rsample((k,))  # (k, n, latent_dim)
        flat = z.reshape(k * n, -1)
        log_px = self.decoder(flat).log_prob(batch.x.repeat(k, *([1] * (batch.x.dim() - 1)))).view(k, n)
        log_w = log_px + self.prior.log_prob(flat).view(k, n) - posterior.log_prob(z)
        iwnelbo = -(torch.logsumexp(log_w, dim=0) - math.log(k)).mean()
        terms = {
            "iwnelbo": iwnelbo.detach(),
            "nelbo": -log_w.mean().detach(),
            "rec": -log_px.mean().detach(),
            "kl": gaussian_kl(posterior.base_dist).mean().detach(),
        }
        return LossOutput(iwnelbo, terms)

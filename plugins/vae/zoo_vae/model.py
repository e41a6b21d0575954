"""The VAE model: encoder and decoder parts, loss (negative ELBO with a β-weighted KL)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import Bernoulli, Distribution, Independent, Normal

from zoo import Batch, Decoder, Encoder, Family, FamilyConfig, LossOutput, StandardNormal
from zoo.config import check
from zoo.nets import ConvDecoderNet, ConvEncoderNet


@dataclass
class VAEConfig(FamilyConfig):
    latent_dim: int = 16
    channels: tuple[int, ...] = (32, 64)
    hidden_dim: int = 256
    beta: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.latent_dim >= 1, f"latent_dim must be ≥ 1, got {self.latent_dim}")
        check(len(self.channels) >= 1 and min(self.channels) >= 1, "channels must be positive widths")
        check(self.hidden_dim >= 0, f"hidden_dim must be ≥ 0, got {self.hidden_dim}")
        check(self.beta >= 0, f"beta must be ≥ 0, got {self.beta}")


class GaussianEncoder(Encoder):
    """x → N(μ(x), diag σ(x)²); σ through softplus so it stays positive without blowing up."""

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        self.trunk = ConvEncoderNet(config.input_shape, config.channels)
        self.hidden = _hidden_layer(self.trunk.features, config.hidden_dim)
        self.head = torch.nn.Linear(config.hidden_dim or self.trunk.features, 2 * config.latent_dim)

    def forward(self, x: Tensor) -> Distribution:
        mu, raw_scale = self.head(self.hidden(self.trunk(x))).chunk(2, dim=1)
        return Independent(Normal(mu, F.softplus(raw_scale) + 1e-4), 1)


class BernoulliDecoder(Decoder):
    """z → independent Bernoulli pixels (logits); its mean is the image in [0, 1]."""

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        self.hidden = _hidden_layer(config.latent_dim, config.hidden_dim)
        self.net = ConvDecoderNet(config.hidden_dim or config.latent_dim, config.input_shape, config.channels)

    def forward(self, z: Tensor) -> Distribution:
        logits = self.net(self.hidden(z))
        return Independent(Bernoulli(logits=logits, validate_args=False), 3)


class VAE(Family):
    """Kingma & Welling's VAE; β ≠ 1 gives Higgins et al.'s β-VAE.

    Trained on loss = rec + β·kl per image (nats); `nelbo` = rec + kl is logged as well,
    the negative ELBO whatever β is."""

    name = "vae"
    config_class = VAEConfig
    headline_metric = "nelbo"

    def __init__(self, config: VAEConfig) -> None:
        super().__init__(config)
        self.encoder = GaussianEncoder(config)
        self.decoder = BernoulliDecoder(config)
        self.prior = StandardNormal(config.latent_dim)

    def loss(self, batch: Batch) -> LossOutput:
        posterior = self.encoder(batch.x)
        z = posterior.rsample()
        rec = -self.decoder(z).log_prob(batch.x).mean()
        kl = gaussian_kl(posterior.base_dist).mean()
        total = rec + self.config.beta * kl
        return LossOutput(total, {"nelbo": (rec + kl).detach(), "rec": rec.detach(), "kl": kl.detach()})

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, **conditions) -> Tensor:
        return self.decoder(self.prior.sample(n, generator)).mean

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        return self.decoder(self.encoder(x).mean).mean

    @torch.no_grad()
    def encode(self, x: Tensor) -> Tensor:
        return self.encoder(x).mean

    @torch.no_grad()
    def decode(self, z: Tensor) -> Tensor:
        return self.decoder(z).mean


def _hidden_layer(features: int, width: int) -> torch.nn.Module:
    """A fully connected layer between the conv trunk and the code; none when width is 0."""
    if width == 0:
        return torch.nn.Identity()
    return torch.nn.Sequential(torch.nn.Linear(features, width), torch.nn.SiLU())


def gaussian_kl(q: Normal) -> Tensor:
    """KL(N(μ, σ²) ‖ N(0, 1)) summed over latent dimensions, per example."""
    return (0.5 * (q.loc.pow(2) + q.scale.pow(2) - 1) - q.scale.log()).sum(1)

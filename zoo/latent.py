"""What latent-variable families built from zoo's parts share: the config of their encoder
and decoder (conv for images and 1-D signals, MLP for vectors), the decoder its likelihood
names, and sample/reconstruct/encode/decode written once from the parts (`self.encoder`,
`self.decoder`, `self.prior`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import torch
from torch import Tensor
from torch.distributions import Distribution

from zoo.config import check
from zoo.family import Family, FamilyConfig, check_codes, check_unit_interval, takes_batch
from zoo.parts import LIKELIHOODS, Decoder, GaussianEncoder, likelihood_for

if TYPE_CHECKING:
    from zoo.datasets.splits import Splits


@dataclass
class ConvLatentConfig(FamilyConfig):
    """An encoder/decoder pair around a `latent_dim` code, shaped by `input_shape` (see
    zoo.nets): convolutions for images (C, H, W) and 1-D signals (C, L), an MLP for vectors (D,)."""

    latent_dim: int = 16
    #: Widths of the stride-2 conv levels; for vectors, the widths of the MLP layers.
    channels: tuple[int, ...] = (32, 64)
    #: Width of a fully connected layer between the trunk and the code; 0 for none.
    hidden_dim: int = 256
    #: p(x|z): bernoulli (values in [0, 1]), gaussian (real values, learned scale per value), or
    #: auto: bernoulli for images, gaussian for vectors and 1-D signals.
    likelihood: Literal["auto", "bernoulli", "gaussian"] = "auto"

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.latent_dim >= 1, f"latent_dim must be ≥ 1, got {self.latent_dim}")
        check(len(self.channels) >= 1 and min(self.channels) >= 1, "channels must be positive widths")
        check(self.hidden_dim >= 0, f"hidden_dim must be ≥ 0, got {self.hidden_dim}")
        likelihood_for(self.likelihood, self.input_shape)  # refuses unknown names and shapes

    @property
    def resolved_likelihood(self) -> str:
        """'bernoulli' or 'gaussian': what `likelihood` means at this input shape."""
        return likelihood_for(self.likelihood, self.input_shape)


def build_decoder(config: ConvLatentConfig, condition_dim: int = 0) -> Decoder:
    """The decoder a latent config describes: its likelihood over the config's input shape."""
    cls = LIKELIHOODS[config.resolved_likelihood]
    return cls(config.latent_dim, config.input_shape, config.channels, config.hidden_dim, condition_dim)


@dataclass
class GaussianLatentConfig(ConvLatentConfig):
    """A conv pair whose encoder gives a diagonal Gaussian posterior (vae, iwae, cvae)."""

    #: How the encoder's head becomes σ (see zoo.parts.POSTERIOR_SCALES): softplus (default,
    #: bounded growth), exp (unbounded log-variance) or clamp (log-variance within logvar_range).
    posterior_scale: Literal["softplus", "exp", "clamp"] = "softplus"
    #: The log-variance range of posterior_scale "clamp".
    logvar_range: tuple[float, float] = (-10.0, 10.0)

    def __post_init__(self) -> None:
        super().__post_init__()
        low, high = self.logvar_range
        check(low < high, f"logvar_range must be (low, high) with low < high, got {list(self.logvar_range)}")

    def gaussian_encoder(self, condition_dim: int = 0) -> GaussianEncoder:
        """The encoder this config describes (conditional on a vector of `condition_dim`)."""
        return GaussianEncoder(
            self.input_shape,
            self.latent_dim,
            self.channels,
            self.hidden_dim,
            condition_dim,
            scale=self.posterior_scale,
            logvar_range=self.logvar_range,
        )


def check_likelihood_data(config: GaussianLatentConfig, data: Splits) -> None:
    """Refuse data outside [0, 1] for a Bernoulli likelihood, in one line."""
    if likelihood_for(config.likelihood, config.input_shape) == "bernoulli":
        check_unit_interval(
            data,
            "model.likelihood is bernoulli, which takes values in [0, 1]: set model.likelihood=gaussian, "
            "or scale the data to [0, 1]",
        )


class LatentFamily(Family):
    """A family with an encoder (posterior or point code), a decoder (likelihood) and a prior.
    Codes are posterior means; outputs (images, vectors, signals) are the decoder's means."""

    def check_data(self, data: Splits) -> None:
        check_likelihood_data(self.config, data)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return self.decode(self.prior.sample(n, generator))

    @takes_batch
    def reconstruct(self, x: Tensor) -> Tensor:
        """x (N, *input_shape) decoded from its code: the decoder's mean."""
        return self.decode(self.encode(x))

    @takes_batch
    def encode(self, x: Tensor) -> Tensor:
        """Codes (N, latent_dim) of x (N, *input_shape): the posterior means."""
        code = self.encoder(x)
        return code.mean if isinstance(code, Distribution) else code

    @torch.no_grad()
    def decode(self, z: Tensor) -> Tensor:
        """Outputs for codes z of shape (N, latent_dim)."""
        check_codes(z, (self.config.latent_dim,), f"{self.name}.decode")
        return self.decoder(z).mean

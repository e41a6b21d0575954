"""The parts every generative model is made of. Families compose them.

Distributions are `torch.distributions` objects so that log-likelihoods, means and samples
come with one well-known interface: an Encoder returns the posterior q(z|x), a Decoder the
likelihood p(x|z), both batched over the first dimension with the event over the rest.

Below the contracts are the concrete parts the first-party families share (Gaussian and point
encoders; Bernoulli and Gaussian decoders), conditional on a vector (a one-hot label) when
asked. Their trunks follow the input shape (zoo.nets): 2-D convolutions for images (C, H, W),
1-D convolutions for signals (C, L), an MLP for vectors (D,).
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.distributions import Bernoulli, Distribution, Independent, Normal

from zoo.errors import InvalidInputError
from zoo.nets import data_kind, decoder_net, encoder_net, hidden_layer


class Encoder(nn.Module, abc.ABC):
    """x → posterior over codes: a Distribution (Gaussian, categorical) or a point code."""

    @abc.abstractmethod
    def forward(self, x: Tensor) -> Distribution | Tensor: ...


class Decoder(nn.Module, abc.ABC):
    """z → likelihood over x: a Distribution whose `.mean` is the expected input."""

    @abc.abstractmethod
    def forward(self, z: Tensor) -> Distribution: ...


class Prior(nn.Module, abc.ABC):
    """A distribution over codes: scores codes and draws new ones."""

    @abc.abstractmethod
    def log_prob(self, z: Tensor) -> Tensor:
        """log p(z) per example, shape (N,)."""

    @abc.abstractmethod
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n codes on the prior's device."""


class Critic(nn.Module, abc.ABC):
    """x → realness score per example, shape (N,): for GANs and adversarial autoencoders."""

    @abc.abstractmethod
    def forward(self, x: Tensor) -> Tensor: ...


class StandardNormal(Prior):
    """N(0, I) over codes of shape `shape`."""

    def __init__(self, *shape: int) -> None:
        super().__init__()
        self.shape = tuple(shape)
        # A buffer, so the prior follows the model across devices and dtypes.
        self.register_buffer("_anchor", torch.zeros(()), persistent=False)

    def log_prob(self, z: Tensor) -> Tensor:
        log_density = -0.5 * (z.pow(2) + math.log(2 * math.pi))
        return log_density.flatten(1).sum(1)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        device = self._anchor.device
        z = torch.randn((n, *self.shape), generator=generator, device=generator.device if generator else device)
        return z.to(device=device, dtype=self._anchor.dtype)


class _ConvHead(nn.Module):
    """Trunk (conv or MLP, by input shape) → optional fully connected layer → linear head with `outputs_per_dim`
    numbers per code dimension, with an optional condition vector (e.g. a one-hot label)
    joined to the trunk's features before the hidden layer."""

    outputs_per_dim = 1

    def __init__(
        self,
        input_shape: Sequence[int],
        latent_dim: int,
        channels: Sequence[int],
        hidden_dim: int = 0,
        condition_dim: int = 0,
    ) -> None:
        super().__init__()
        self.trunk = encoder_net(input_shape, channels)
        features = self.trunk.features + condition_dim
        self.hidden = hidden_layer(features, hidden_dim)
        self.head = nn.Linear(hidden_dim or features, self.outputs_per_dim * latent_dim)
        self.condition_dim = condition_dim

    def _head(self, x: Tensor, condition: Tensor | None) -> Tensor:
        h = self.trunk(x)
        if self.condition_dim:
            h = torch.cat([h, _required(condition, self.condition_dim)], dim=1)
        return self.head(self.hidden(h))


#: How a Gaussian encoder turns its second head output h into the posterior's σ:
#: "softplus": σ = softplus(h) + 1e-4 (grows linearly in h, so one large Adam step cannot
#: make σ² astronomically large); "exp": σ = exp(h / 2), h the log-variance, unbounded (the
#: classic parameterisation; a few hot steps can push the KL to 1e10 or inf);
#: "clamp": the same log-variance clamped to `logvar_range` (no gradient outside it).
POSTERIOR_SCALES = ("softplus", "exp", "clamp")


class GaussianEncoder(_ConvHead, Encoder):
    """x → N(μ(x), diag σ(x)²) over `latent_dim` codes, σ from the head by `scale` (one of
    POSTERIOR_SCALES; softplus by default, chosen by measurement: bench/stability.py)."""

    outputs_per_dim = 2

    def __init__(
        self,
        input_shape: Sequence[int],
        latent_dim: int,
        channels: Sequence[int],
        hidden_dim: int = 0,
        condition_dim: int = 0,
        scale: str = "softplus",
        logvar_range: tuple[float, float] = (-10.0, 10.0),
    ) -> None:
        super().__init__(input_shape, latent_dim, channels, hidden_dim, condition_dim)
        if scale not in POSTERIOR_SCALES:
            raise InvalidInputError(f"posterior scale must be one of {', '.join(POSTERIOR_SCALES)}, got '{scale}'")
        self.scale = scale
        self.logvar_range = (float(logvar_range[0]), float(logvar_range[1]))

    def forward(self, x: Tensor, condition: Tensor | None = None) -> Distribution:
        mu, raw = self._head(x, condition).chunk(2, dim=1)
        if self.scale == "softplus":
            sigma = F.softplus(raw) + 1e-4
        else:
            logvar = raw.clamp(*self.logvar_range) if self.scale == "clamp" else raw
            sigma = torch.exp(0.5 * logvar)
        # Unchecked: an exp head's σ can under- or overflow to 0 or inf, which must reach the
        # trainer's guard as a non-finite KL, not stop the run with a distribution error.
        return Independent(Normal(mu, sigma, validate_args=False), 1)


class PointEncoder(_ConvHead, Encoder):
    """x → a `latent_dim` code: the encoder of deterministic autoencoders."""

    def forward(self, x: Tensor, condition: Tensor | None = None) -> Tensor:
        return self._head(x, condition)


class _DecoderNet(Decoder):
    """z (plus an optional condition vector) → optional fully connected layer → a trunk that
    mirrors the encoder's → one unbounded number per input value."""

    def __init__(
        self,
        latent_dim: int,
        output_shape: Sequence[int],
        channels: Sequence[int],
        hidden_dim: int = 0,
        condition_dim: int = 0,
    ) -> None:
        super().__init__()
        self.condition_dim = condition_dim
        self.event_dims = len(output_shape)
        self.hidden = hidden_layer(latent_dim + condition_dim, hidden_dim)
        self.net = decoder_net(hidden_dim or latent_dim + condition_dim, output_shape, channels)

    def logits(self, z: Tensor, condition: Tensor | None = None) -> Tensor:
        """The decoder's raw outputs: Bernoulli logits, or the Gaussian's mean."""
        if self.condition_dim:
            z = torch.cat([z, _required(condition, self.condition_dim)], dim=1)
        return self.net(self.hidden(z))

    @abc.abstractmethod
    def likelihood(self, logits: Tensor) -> Distribution:
        """p(x|z) from the raw outputs `logits(z)`."""

    def forward(self, z: Tensor, condition: Tensor | None = None) -> Distribution:
        return self.likelihood(self.logits(z, condition))


class BernoulliDecoder(_DecoderNet):
    """z → independent Bernoulli values (logits); its mean is the input in [0, 1]. The
    likelihood for images, and for other data scaled to [0, 1]."""

    def likelihood(self, logits: Tensor) -> Distribution:
        return Independent(Bernoulli(logits=logits, validate_args=False), self.event_dims)


class GaussianDecoder(_DecoderNet):
    """z → independent Gaussians N(μ(z), σ²) with a learned scale per input value (shared by
    all examples), so that −log p(x|z) is in nats on real-valued data (standardised features,
    signals). σ = softplus(·) + `min_scale`, starting at 1: it cannot collapse to 0 and make
    the likelihood unbounded."""

    def __init__(
        self,
        latent_dim: int,
        output_shape: Sequence[int],
        channels: Sequence[int],
        hidden_dim: int = 0,
        condition_dim: int = 0,
        min_scale: float = 1e-2,
    ) -> None:
        super().__init__(latent_dim, output_shape, channels, hidden_dim, condition_dim)
        self.min_scale = min_scale
        start = torch.tensor(1.0 - min_scale)
        self.raw_scale = nn.Parameter(torch.full(tuple(output_shape), (start.exp() - 1).log().item()))

    def scale(self) -> Tensor:
        return F.softplus(self.raw_scale) + self.min_scale

    def likelihood(self, mean: Tensor) -> Distribution:
        return Independent(Normal(mean, self.scale().expand_as(mean), validate_args=False), self.event_dims)


#: Likelihoods the first-party families offer, by config name.
LIKELIHOODS = {"bernoulli": BernoulliDecoder, "gaussian": GaussianDecoder}


def likelihood_for(choice: str, input_shape: Sequence[int]) -> str:
    """The likelihood a config's `likelihood` names; 'auto' is Bernoulli for images (pixels in
    [0, 1]) and Gaussian for vectors and 1-D signals (real values, typically standardised)."""
    if choice == "auto":
        return "bernoulli" if data_kind(input_shape) == "image" else "gaussian"
    if choice not in LIKELIHOODS:
        raise InvalidInputError(f"likelihood must be auto, {', '.join(LIKELIHOODS)}; got '{choice}'")
    return choice


def gaussian_kl_per_dim(q: Normal) -> Tensor:
    """KL(N(μ, σ²) ‖ N(0, 1)) of each latent dimension, per example: shape (N, latent_dim)."""
    return 0.5 * (q.loc.pow(2) + q.scale.pow(2) - 1) - q.scale.log()


def gaussian_kl(q: Normal) -> Tensor:
    """KL(N(μ, σ²) ‖ N(0, 1)) summed over latent dimensions, per example."""
    return gaussian_kl_per_dim(q).sum(1)


def free_bits_kl(kl_per_dim: Tensor, floor: float) -> Tensor:
    """Kingma et al. (2016)'s free bits: Σ_j max(λ, E_batch KL_j), the KL term to train on
    so that a dimension whose batch-mean KL is under λ nats feels no pull to the prior (and
    is not switched off: posterior collapse). λ = 0 is the plain batch-mean KL."""
    return kl_per_dim.mean(0).clamp(min=floor).sum()


def linear_warmup(step: Tensor, steps: int) -> Tensor:
    """A factor rising linearly from 0 at `step` 0 to 1 at `steps` (and 1 after)."""
    return step.clamp(max=steps).float() / steps


def _required(condition: Tensor | None, width: int) -> Tensor:
    if condition is None or condition.shape[-1] != width:
        got = "none" if condition is None else f"width {condition.shape[-1]}"
        raise InvalidInputError(f"this part is conditional: it needs a condition of width {width}, got {got}")
    return condition

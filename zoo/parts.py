"""The parts every generative model is made of. Families compose them.

Distributions are `torch.distributions` objects so that log-likelihoods, means and samples
come with one well-known interface: an Encoder returns the posterior q(z|x), a Decoder the
likelihood p(x|z), both batched over the first dimension with the event over the rest.
"""

from __future__ import annotations

import abc

import torch
from torch import Tensor, nn
from torch.distributions import Distribution


class Encoder(nn.Module, abc.ABC):
    """x → posterior over codes: a Distribution (Gaussian, categorical) or a point code."""

    @abc.abstractmethod
    def forward(self, x: Tensor) -> Distribution | Tensor: ...


class Decoder(nn.Module, abc.ABC):
    """z → likelihood over x: a Distribution whose `.mean` is the expected image."""

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
        log_density = -0.5 * (z.pow(2) + torch.log(torch.tensor(2 * torch.pi, device=z.device)))
        return log_density.flatten(1).sum(1)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        device = self._anchor.device
        z = torch.randn((n, *self.shape), generator=generator, device=generator.device if generator else device)
        return z.to(device=device, dtype=self._anchor.dtype)

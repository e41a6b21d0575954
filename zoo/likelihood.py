"""Importance-sampled negative log-likelihood for latent-variable models, from their parts.

    log p(x) ≈ log (1/K) Σ_k p(x|z_k) p(z_k) / q(z_k|x),   z_k ~ q(z|x)

(Burda et al. 2016). The estimate is a lower bound on log p(x) that tightens as K grows; with
K = 1000 it is the usual way to compare VAE-type models on held-out data. It needs only an
encoder that returns the posterior q(z|x) as a torch Distribution, a `Prior` and a decoder
that returns p(x|z): any family built from zoo's parts can be scored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from zoo.devices import seeded
from zoo.errors import InvalidInputError
from zoo.parts import Decoder, Encoder, Prior


@dataclass(frozen=True)
class NLLEstimate:
    """Mean negative log-likelihood (nats per example) over the data, its standard error
    over examples, and the per-example values."""

    mean: float
    stderr: float
    k: int
    per_example: Tensor


@torch.no_grad()
def importance_sampled_nll(
    encoder: Encoder,
    prior: Prior,
    decoder: Decoder,
    x: Tensor,
    condition: Tensor | None = None,
    *,
    k: int = 1000,
    batch_size: int = 100,
    images_per_pass: int = 4096,
    seed: int = 0,
) -> NLLEstimate:
    """−log p(x) (or −log p(x|condition) for conditional parts) per example, estimated with
    `k` importance samples from the encoder's posterior; `batch_size` examples at a time, at
    most `images_per_pass` decoded at once. Seeded; the global RNG stream is left untouched."""
    if k < 1 or batch_size < 1:
        raise InvalidInputError(f"k and batch_size must be ≥ 1, got k={k}, batch_size={batch_size}")
    if len(x) == 0:
        raise InvalidInputError("no examples to score")
    extra = () if condition is None else (condition,)
    values = []
    with seeded(seed):
        for start in range(0, len(x), batch_size):
            xb = x[start : start + batch_size]
            cb = tuple(c[start : start + batch_size] for c in extra)
            values.append(-_log_likelihood(encoder, prior, decoder, xb, cb, k, images_per_pass))
    per_example = torch.cat(values).double().cpu()
    stderr = per_example.std().item() / math.sqrt(len(per_example)) if len(per_example) > 1 else float("nan")
    return NLLEstimate(per_example.mean().item(), stderr, k, per_example)


def _log_likelihood(
    encoder: Encoder,
    prior: Prior,
    decoder: Decoder,
    x: Tensor,
    condition: tuple[Tensor, ...],
    k: int,
    images_per_pass: int,
) -> Tensor:
    posterior = encoder(x, *condition)
    n = len(x)
    per_pass = max(1, images_per_pass // n)
    chunks = []
    for start in range(0, k, per_pass):
        m = min(per_pass, k - start)
        z = posterior.sample((m,))  # (m, n, ...)
        flat = z.reshape(m * n, *z.shape[2:])
        repeated = tuple(c.repeat(m, *([1] * (c.dim() - 1))) for c in condition)
        log_px = decoder(flat, *repeated).log_prob(x.repeat(m, *([1] * (x.dim() - 1)))).view(m, n)
        log_w = log_px + prior.log_prob(flat).view(m, n) - posterior.log_prob(z)
        chunks.append(torch.logsumexp(log_w.double(), dim=0))
    return torch.logsumexp(torch.stack(chunks), dim=0) - math.log(k)

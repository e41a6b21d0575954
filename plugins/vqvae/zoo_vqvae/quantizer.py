"""A vector quantiser whose codebook follows the encoder by exponential moving averages
(van den Oord et al. 2017, appendix A.1), with dead codes re-seeded from the batch."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class Quantized(NamedTuple):
    """Straight-through quantised features (N, D, H, W), their codes (N, H, W) and the
    commitment loss ‖z − sg(e)‖² (mean over elements)."""

    features: Tensor
    codes: Tensor
    commitment: Tensor


class EMAQuantizer(nn.Module):
    """Nearest-codeword quantisation of (N, D, H, W) features into `num_codes` codewords.

    The codebook is not trained by gradients: in training mode each forward moves it
    towards the mean of the features assigned to each code (decay `decay`). A code whose
    moving-average assignment count per batch falls below `dead_threshold` is re-seeded
    with a feature vector from the batch, drawn with probability proportional to its
    squared quantisation error, so every code keeps being used where it helps."""

    def __init__(self, num_codes: int, dim: int, decay: float = 0.99, dead_threshold: float = 1.0) -> None:
        super().__init__()
        self.num_codes, self.dim = num_codes, dim
        self.decay, self.dead_threshold = decay, dead_threshold
        codebook = torch.randn(num_codes, dim)
        self.register_buffer("codebook", codebook)
        # A count of 1 per code with its codeword as the sum: an unused code keeps its
        # codeword as both averages decay (their ratio is constant).
        self.register_buffer("cluster_size", torch.ones(num_codes))
        self.register_buffer("embed_sum", codebook.clone())

    def nearest(self, z: Tensor) -> Tensor:
        """Codes (N, H, W) of features (N, D, H, W); no update."""
        flat = z.permute(0, 2, 3, 1).reshape(-1, self.dim)
        distances = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ self.codebook.t() + self.codebook.pow(2).sum(1)
        return distances.argmin(1).view(z.shape[0], *z.shape[2:])

    def lookup(self, codes: Tensor) -> Tensor:
        """Features (N, D, H, W) of codes (N, H, W)."""
        return F.embedding(codes, self.codebook).permute(0, 3, 1, 2)

    def forward(self, z: Tensor) -> Quantized:
        codes = self.nearest(z)
        quantized = self.lookup(codes)
        if self.training:
            self._update(z.detach(), codes)
        commitment = (z - quantized.detach()).pow(2).mean()
        return Quantized(z + (quantized - z).detach(), codes, commitment)

    @torch.no_grad()
    def _update(self, z: Tensor, codes: Tensor) -> None:
        flat = z.permute(0, 2, 3, 1).reshape(-1, self.dim).float()
        index = codes.flatten()
        counts = code_counts(index, self.num_codes).to(flat.dtype)
        sums = torch.zeros_like(self.embed_sum).index_add_(0, index, flat)
        _average_over_processes(counts, sums)
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.embed_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        dead = self.cluster_size < self.dead_threshold
        # A CPU's host reads `dead` at no cost and draws a vector for each dead code, when there
        # are any. Reading it from an accelerator would make every step wait for the device:
        # there a vector is drawn for every code, every step, and the dead codes take theirs.
        draws = int(dead.sum()) if dead.device.type == "cpu" else self.num_codes
        if draws:
            self._reseed(dead, flat, index, draws)
        self.codebook.copy_(self.embed_sum / self.cluster_size.clamp_min(1e-5).unsqueeze(1))

    def _reseed(self, dead: Tensor, flat: Tensor, index: Tensor, draws: int) -> None:
        """Re-seed the `dead` codes with `draws` (≥ their number) vectors drawn from the batch
        `flat`, whose codes are `index`: the i-th dead code takes the i-th. Like k-means++ seeding,
        vectors far from their codeword are likelier picks, so new codes go where the codebook
        is poor (not onto the many identical background vectors). No value is read on the host."""
        error = (flat - self.codebook[index]).pow(2).sum(1)
        weights = torch.where(error.sum() > 0, error, torch.ones_like(error))
        picks = torch.multinomial(weights, draws, replacement=True)
        slot = (dead.cumsum(0) - 1).clamp_min(0)  # which draw each dead code takes
        self.embed_sum.copy_(torch.where(dead.unsqueeze(1), flat[picks[slot]], self.embed_sum))
        self.cluster_size.masked_fill_(dead, 1.0)
        _same_as_first_process(self.embed_sum)  # re-seeded from each process's own batch


def _distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def _average_over_processes(*tensors: Tensor) -> None:
    """Data-parallel training: every process updates the codebook with the statistics of the
    whole global batch (per-process averages, so thresholds keep their per-batch meaning)."""
    if _distributed():
        for tensor in tensors:
            torch.distributed.all_reduce(tensor)
            tensor /= torch.distributed.get_world_size()


def _same_as_first_process(tensor: Tensor) -> None:
    if _distributed():
        torch.distributed.broadcast(tensor, src=0)


def code_counts(codes: Tensor, num_codes: int) -> Tensor:
    """How often each of `num_codes` codes occurs in `codes` (int64): torch.bincount's
    figures without its host-device sync on GPUs (it reads the largest code to size its
    output), which every training step would pay."""
    flat = codes.flatten()
    return torch.zeros(num_codes, dtype=torch.long, device=flat.device).index_add_(0, flat, torch.ones_like(flat))


def codebook_stats(counts: Tensor) -> dict[str, Tensor]:
    """Perplexity exp(H(p)) of the code frequencies `counts` (K,), the fraction of codes used
    and the number of dead (unused) codes."""
    p = counts.float() / counts.sum().clamp_min(1)
    entropy = -(p * p.clamp_min(1e-12).log()).sum()
    used = counts > 0
    return {"perplexity": entropy.exp(), "usage": used.float().mean(), "dead_codes": (~used).sum().float()}

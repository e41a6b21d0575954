"""Sample-quality metrics between generated and real images, computed on features (N, F):
the Fréchet distance (FID's formula) and Kynkäänniemi et al.'s (2019) k-NN precision and recall.

zoo computes them in the feature space of its own classifier for the dataset (see
zoo.classifier), not Inception's: the figures compare zoo models on the same dataset and
classifier version, not with published FIDs.
"""

from __future__ import annotations

import torch
from torch import Tensor

from zoo.family import Family

#: Neighbours k of the k-NN precision and recall; each manifold needs more points than k.
NEIGHBOURS = 3
#: Rows of the distance matrix held at once by precision and recall (1024 × n doubles).
ROWS = 1024


@torch.no_grad()
def draw(model: Family, n: int, seed: int = 0, batch_size: int = 500) -> Tensor:
    """n samples of `model`, `batch_size` at a time from one seeded generator on its device."""
    generator = torch.Generator(model.device).manual_seed(seed)
    return torch.cat([model.sample(min(batch_size, n - s), generator=generator) for s in range(0, n, batch_size)])


def frechet_distance(a: Tensor, b: Tensor) -> float:
    """‖μa − μb‖² + tr(Σa + Σb − 2(Σa Σb)^½) of the Gaussians fitted to features a (N, F)
    and b (M, F), in float64."""
    a, b = a.double(), b.double()
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.cov(a.t()), torch.cov(b.t())
    root_a = _sqrt_psd(cov_a)
    # tr((Σa Σb)^½) = tr((Σa^½ Σb Σa^½)^½), a symmetric PSD matrix: its eigenvalues' roots.
    cross = torch.linalg.eigvalsh(root_a @ cov_b @ root_a).clamp_min(0).sqrt().sum()
    return ((mu_a - mu_b).pow(2).sum() + cov_a.trace() + cov_b.trace() - 2 * cross).item()


def _sqrt_psd(matrix: Tensor) -> Tensor:
    values, vectors = torch.linalg.eigh(matrix)
    return vectors @ torch.diag(values.clamp_min(0).sqrt()) @ vectors.t()


def precision_recall(real: Tensor, fake: Tensor, k: int = NEIGHBOURS) -> tuple[float, float]:
    """Precision: the fraction of fake points inside the real manifold (the union of balls
    around real points reaching their k-th nearest real neighbour); recall: the fraction of
    real points inside the fake manifold. Both in [0, 1]; higher is better."""
    real, fake = real.double(), fake.double()
    return _coverage(real, fake, k), _coverage(fake, real, k)


def density_coverage(real: Tensor, fake: Tensor, k: int = NEIGHBOURS) -> tuple[float, float]:
    """Naeem et al. (2020). Density: how many real k-NN balls hold a fake point, on average,
    over k (about 1 for fakes distributed like the reals; it can exceed 1). Coverage: the
    fraction of real points whose ball holds at least one fake point, in [0, 1]. Coverage
    exposes fakes that all fall in one place, which precision does not: in the digits
    classifier's features, uniform noise lands in one spot inside a few real balls and scores
    precision 1.0 and density 1.0, but coverage 0.008 (training images: 0.88)."""
    real, fake = real.double(), fake.double()
    radii = _radii(real, k)
    held, covered = 0.0, torch.zeros(len(real), dtype=torch.bool, device=real.device)
    for rows in fake.split(ROWS):
        inside = torch.cdist(rows, real) <= radii
        held += inside.sum().item()
        covered |= inside.any(dim=0)
    return held / (k * len(fake)), covered.double().mean().item()


def _coverage(manifold: Tensor, queries: Tensor, k: int) -> float:
    """Fraction of `queries` within the k-NN radius of at least one point of `manifold`."""
    radii = _radii(manifold, k)
    inside = torch.cat([(torch.cdist(rows, manifold) <= radii).any(dim=1) for rows in queries.split(ROWS)])
    return inside.double().mean().item()


def _radii(manifold: Tensor, k: int) -> Tensor:
    """The distance of each point to its k-th nearest neighbour, itself excluded (distance 0
    sorts first). Rows go in chunks: all pairs at once is n² doubles, 80 GB for 100,000."""
    if len(manifold) <= k:
        raise ValueError(f"need more than k={k} points to estimate a manifold, got {len(manifold)}")
    return torch.cat([torch.cdist(rows, manifold).kthvalue(k + 1, dim=1).values for rows in manifold.split(ROWS)])

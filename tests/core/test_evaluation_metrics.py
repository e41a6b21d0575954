"""The metric implementations against cases with known answers."""

from __future__ import annotations

import math

import pytest
import torch

from zoo.evaluation.disentanglement import beta_vae_score, mutual_information_gap
from zoo.evaluation.probe import pixel_probe_accuracy, probe_accuracy
from zoo.evaluation.reconstruction import reconstruction_metrics
from zoo.evaluation.samples import density_coverage, frechet_distance, precision_recall


def gaussian(n: int, mean: list[float], std: list[float], seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, len(mean), generator=generator, dtype=torch.float64) * torch.tensor(std) + torch.tensor(mean)


def test_frechet_distance_of_a_set_with_itself_is_zero():
    a = gaussian(2000, [0.0] * 8, [1.0] * 8, seed=0)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)


def test_frechet_distance_of_shifted_gaussians_matches_the_closed_form():
    # Diagonal covariances: ‖μa − μb‖² + Σ (σa − σb)² = (1 + 4) + (1 + 0 + 0.25) = 6.25.
    a = gaussian(200_000, [0.0, 0.0, 0.0], [1.0, 1.0, 1.0], seed=1)
    b = gaussian(200_000, [1.0, 2.0, 0.0], [2.0, 1.0, 1.5], seed=2)
    assert frechet_distance(a, b) == pytest.approx(6.25, abs=0.05)
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-6)


def test_precision_and_recall_separate_quality_from_coverage():
    real = gaussian(1000, [0.0, 0.0], [1.0, 1.0], seed=3)
    same = gaussian(1000, [0.0, 0.0], [1.0, 1.0], seed=4)
    collapsed = gaussian(1000, [0.0, 0.0], [0.1, 0.1], seed=5)  # good images, one mode only
    far = gaussian(1000, [50.0, 50.0], [1.0, 1.0], seed=6)
    precision, recall = precision_recall(real, same)
    assert precision > 0.9 and recall > 0.9
    precision, recall = precision_recall(real, collapsed)
    assert precision > 0.99 and recall < 0.2
    assert precision_recall(real, far) == (0.0, 0.0)


def test_reconstruction_metrics_of_known_errors():
    x = torch.rand(16, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 0.8
    perfect = reconstruction_metrics(x, x)
    assert perfect["mse"] == 0 and perfect["ssim"] == pytest.approx(1.0)
    shifted = reconstruction_metrics(x, x + 0.1)  # every pixel off by 0.1: MSE 0.01, PSNR 20 dB
    assert shifted["mse"] == pytest.approx(0.01) and shifted["psnr"] == pytest.approx(20.0)
    noisy = reconstruction_metrics(x, (x + 0.2 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))))
    assert noisy["ssim"] < shifted["ssim"] < 1.0


def test_reconstruction_of_data_outside_the_unit_interval_has_its_own_mse_and_no_psnr():
    """Standardised vectors: no peak for PSNR, and clamping to [0, 1] would count wrong errors."""
    x = torch.randn(50, 30, generator=torch.Generator().manual_seed(0))
    metrics = reconstruction_metrics(x, x + 0.5)
    assert metrics == {"mse": pytest.approx(0.25)}
    images = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert set(reconstruction_metrics(images, images)) == {"mse"}


def test_probe_reads_separable_codes_and_not_random_labels():
    codes = torch.cat([gaussian(200, [4.0 * c, 0.0], [1.0, 1.0], seed=c) for c in range(3)])
    labels = torch.arange(3).repeat_interleave(200)
    train, test = torch.arange(600) % 2 == 0, torch.arange(600) % 2 == 1
    separable = probe_accuracy(codes[train], labels[train], codes[test], labels[test])
    assert separable["linear"] > 0.95 and separable["knn"] > 0.95
    shuffled = labels[torch.randperm(600, generator=torch.Generator().manual_seed(0))]
    chance = probe_accuracy(codes[train], shuffled[train], codes[test], shuffled[test])
    assert chance["linear"] < 0.45 and chance["knn"] < 0.45


def test_the_pixel_baseline_is_cached_by_the_data_and_recomputed_when_the_cache_is_bad(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path))
    x = torch.cat([gaussian(100, [3.0 * c, 0.0], [1.0, 1.0], seed=c) for c in range(3)]).float()
    y = torch.arange(3).repeat_interleave(100)
    train, test = torch.arange(300) % 2 == 0, torch.arange(300) % 2 == 1
    args = (x[train], y[train], x[test], y[test])
    first = pixel_probe_accuracy(*args)
    assert first == probe_accuracy(*args)
    (cached,) = (tmp_path / "probes").iterdir()
    cached.write_text('{"linear": 0.123, "knn": 0.456}')  # what is on disk is what comes back
    assert pixel_probe_accuracy(*args) == {"linear": 0.123, "knn": 0.456}
    cached.write_text("not json")
    assert pixel_probe_accuracy(*args) == first
    pixel_probe_accuracy(x[test], y[test], x[train], y[train])  # other data, another entry
    assert len(list((tmp_path / "probes").iterdir())) == 2


def factors_grid(n: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.stack([torch.randint(size, (n,), generator=generator) for size in (3, 6, 10, 8)], dim=1)


def test_disentanglement_is_high_for_codes_that_are_the_factors_and_low_for_noise():
    factors = factors_grid(4000, seed=0)
    noise = torch.randn(4000, 4, generator=torch.Generator().manual_seed(1))
    axis_aligned = factors.double() + 0.01 * noise
    assert beta_vae_score(axis_aligned, factors) > 0.95
    assert mutual_information_gap(axis_aligned, factors) > 0.8
    assert beta_vae_score(noise, factors) < 0.4  # chance is 1/4
    assert mutual_information_gap(noise, factors) < 0.05


def test_mig_drops_when_factors_are_mixed_across_dimensions():
    factors = factors_grid(4000, seed=2)
    scaled = factors.double() / torch.tensor([3.0, 6.0, 10.0, 8.0])
    angle = math.pi / 4
    rotation = torch.eye(4, dtype=torch.float64)
    rotation[:2, :2] = torch.tensor([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    assert mutual_information_gap(scaled @ rotation.T, factors) < mutual_information_gap(scaled, factors) - 0.2


def test_coverage_exposes_fakes_that_all_fall_in_one_place_where_precision_does_not():
    """Uniform noise, in the digits classifier's features, lands in one spot inside a few
    real balls: precision 1.0. Coverage counts the real points near some fake one."""
    real = gaussian(1000, [0.0, 0.0], [1.0, 1.0], seed=3)
    same = gaussian(1000, [0.0, 0.0], [1.0, 1.0], seed=4)
    one_spot = real[:1].repeat(1000, 1) + 1e-6  # every fake at (nearly) one real point
    density, coverage = density_coverage(real, same)
    assert 0.8 < density < 1.2 and coverage > 0.8  # Naeem et al.: 1 − 2⁻ᵏ = 0.875 expected, for k = 3
    assert precision_recall(real, one_spot)[0] == 1.0
    density, coverage = density_coverage(real, one_spot)
    assert coverage < 0.01
    assert density_coverage(real, gaussian(1000, [50.0, 50.0], [1.0, 1.0], seed=6)) == (0.0, 0.0)


def test_precision_recall_and_coverage_in_chunks_equal_all_pairs_at_once(monkeypatch):
    from zoo.evaluation import samples

    real, fake = gaussian(700, [0.0] * 4, [1.0] * 4, seed=7), gaussian(500, [0.2] * 4, [1.2] * 4, seed=8)
    whole = samples.precision_recall(real, fake), samples.density_coverage(real, fake)
    monkeypatch.setattr(samples, "ROWS", 64)
    assert (samples.precision_recall(real, fake), samples.density_coverage(real, fake)) == whole

import pytest
import torch

import zoo
from zoo.errors import InvalidInputError


@pytest.fixture
def model():
    torch.manual_seed(0)
    return zoo.create("ae", latent_dim=4, channels=(8, 16), hidden_dim=32)


def test_loss_is_reconstruction_error_with_finite_gradients(model):
    x = torch.rand(6, 1, 28, 28).round()
    out = model.loss(zoo.Batch(x))
    assert set(out.terms) == {"rec", "mse"}
    assert out.total.item() == pytest.approx(out.terms["rec"].item())
    assert out.terms["mse"].item() == pytest.approx((model.reconstruct(x) - x).pow(2).mean().item(), rel=1e-5)
    out.total.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_denoising_corrupts_inputs_in_training_only():
    noisy = zoo.create("ae", latent_dim=4, channels=(8,), hidden_dim=0, noise_std=0.5, mask_prob=0.5)
    x = torch.full((4, 1, 28, 28), 0.5)
    corrupted = noisy.corrupt(x)
    assert corrupted.min() >= 0 and corrupted.max() <= 1
    assert (corrupted == 0).float().mean() > 0.4  # about half the pixels dropped
    torch.manual_seed(0)
    noisy.train()
    trained = noisy.loss(zoo.Batch(x)).total
    noisy.eval()
    assert noisy.loss(zoo.Batch(x)).total != trained  # eval sees the clean input…
    assert noisy.loss(zoo.Batch(x)).total == noisy.loss(zoo.Batch(x)).total  # …deterministically


def test_after_epoch_fits_the_sampling_gaussian_to_the_training_codes():
    data = zoo.load_dataset("digits").train
    model = zoo.create("ae", input_shape=(1, 8, 8), latent_dim=3, channels=(8,), hidden_dim=0).eval()
    model.after_epoch(data)
    codes = model.encode(data.x).double()
    assert torch.allclose(model.latent_mean.double(), codes.mean(0), atol=1e-5)
    cov = model.latent_scale_tril.double() @ model.latent_scale_tril.double().T
    assert torch.allclose(cov, torch.cov(codes.T), rtol=1e-3, atol=1e-6)
    draws = model.latent_mean + torch.randn(20000, 3, generator=torch.Generator().manual_seed(0)) @ (
        model.latent_scale_tril.T
    )
    assert torch.allclose(torch.cov(draws.T.double()), cov, rtol=0.1, atol=1e-3)
    a = model.sample(5, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, model.sample(5, generator=torch.Generator().manual_seed(2))) and a.shape == (5, 1, 8, 8)


def test_trained_samples_come_from_the_fitted_gaussian_not_the_unit_one(short_run):
    model = short_run("ae").model
    assert not torch.allclose(model.latent_scale_tril, torch.eye(len(model.latent_mean)))
    codes = model.encode(zoo.load_dataset("mnist-5k").train.x)
    assert torch.allclose(model.latent_mean, codes.mean(0), atol=1e-4)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"noise_std": -1}, "noise_std must be ≥ 0"),
        ({"mask_prob": 1.0}, "mask_prob must be in"),
        ({"loss": "l1"}, "must be one of"),
    ],
)
def test_invalid_configs_are_refused(overrides, message):
    with pytest.raises(InvalidInputError, match=message):
        zoo.create("ae", **overrides)


def test_ae_on_vectors_uses_the_gaussian_likelihood_and_refuses_bce():
    x = torch.randn(6, 10)
    model = zoo.create("ae", input_shape=(10,), channels=(16,), hidden_dim=0, latent_dim=3).eval()
    out = model.loss(zoo.Batch(x))
    logits = model.decoder.logits(model.encoder(x))
    expected = -torch.distributions.Normal(logits, model.decoder.scale()).log_prob(x).sum(1).mean()
    assert out.total.item() == pytest.approx(expected.item(), rel=1e-5)
    assert out.terms["mse"].item() == pytest.approx((model.reconstruct(x) - x).pow(2).mean().item(), rel=1e-5)
    squared = zoo.create("ae", input_shape=(10,), channels=(16,), hidden_dim=0, latent_dim=3, loss="mse")
    assert not squared.decoder.raw_scale.requires_grad  # squared error leaves the scale alone
    with pytest.raises(InvalidInputError, match="loss bce needs values in \\[0, 1\\] and likelihood bernoulli"):
        zoo.create("ae", input_shape=(10,), loss="bce")

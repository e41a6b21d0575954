"""The importance-sampled NLL on a model whose likelihood is known in closed form:
z ~ N(0, 1), x | z ~ N(z, 1), so x ~ N(0, 2) and the exact posterior is N(x/2, 1/2)."""

import math

import pytest
import torch
from torch.distributions import Independent, Normal

import zoo
from zoo.likelihood import importance_sampled_nll
from zoo.parts import Decoder, Encoder, StandardNormal


class Posterior(Encoder):
    def __init__(self, exact: bool) -> None:
        super().__init__()
        self.exact = exact

    def forward(self, x):
        loc = x / 2 if self.exact else torch.zeros_like(x)
        return Independent(Normal(loc, torch.full_like(x, math.sqrt(0.5) if self.exact else 1.0)), 1)


class Likelihood(Decoder):
    def forward(self, z):
        return Independent(Normal(z, torch.ones_like(z)), 1)


def exact_nll(x):
    return -Normal(0.0, math.sqrt(2.0)).log_prob(x).sum(1)


def test_exact_posterior_gives_the_exact_nll_with_any_k():
    x = torch.linspace(-3, 3, 50)[:, None]
    estimate = importance_sampled_nll(Posterior(True), StandardNormal(1), Likelihood(), x, k=3, batch_size=7)
    assert torch.allclose(estimate.per_example, exact_nll(x).double(), atol=1e-5)
    assert estimate.mean == pytest.approx(exact_nll(x).mean().item(), abs=1e-5)
    assert estimate.stderr == pytest.approx(exact_nll(x).std().item() / math.sqrt(50), rel=1e-4)


def test_a_poor_posterior_converges_from_above_as_k_grows_and_is_seeded():
    x = torch.linspace(-2, 2, 20)[:, None]
    parts = (Posterior(False), StandardNormal(1), Likelihood())
    truth = exact_nll(x).mean().item()
    one = importance_sampled_nll(*parts, x.repeat(100, 1), k=1).mean  # the ELBO: E KL(q ‖ p(z|x)) ≈ 0.51 above
    many = importance_sampled_nll(*parts, x, k=2000, images_per_pass=1000)
    assert one > truth + 0.3 and abs(many.mean - truth) < 0.02
    again = importance_sampled_nll(*parts, x, k=2000, images_per_pass=1000)
    assert torch.equal(many.per_example, again.per_example)


def test_model_parts_of_a_vae_give_a_finite_nll_no_higher_than_its_elbo():
    torch.manual_seed(0)
    model = zoo.create("vae", input_shape=(1, 8, 8), latent_dim=3, channels=(8,), hidden_dim=0).eval()
    x = zoo.load_dataset("digits").test.x[:20]
    elbo = importance_sampled_nll(model.encoder, model.prior, model.decoder, x, k=1, seed=1).mean
    nll = importance_sampled_nll(model.encoder, model.prior, model.decoder, x, k=200, seed=1).mean
    assert math.isfinite(nll) and nll < elbo

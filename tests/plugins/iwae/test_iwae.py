import math

import pytest
import torch

import zoo
from zoo.errors import InvalidInputError


def test_k_sample_bound_is_tighter_than_the_elbo_and_k_1_is_the_elbo():
    torch.manual_seed(0)
    model = zoo.create("iwae", latent_dim=4, channels=(8,), hidden_dim=16, k=50)
    x = torch.rand(8, 1, 28, 28).round()
    out = model.loss(zoo.Batch(x))
    assert out.terms["iwnelbo"] < out.terms["nelbo"]  # log-mean-exp ≥ mean by Jensen
    assert out.total.item() == pytest.approx(out.terms["iwnelbo"].item())
    out.total.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    single = zoo.create("iwae", model.config_dict() | {"k": 1})
    single.load_state_dict(model.state_dict())
    out = single.loss(zoo.Batch(x))
    assert out.terms["iwnelbo"].item() == pytest.approx(out.terms["nelbo"].item(), rel=1e-6)


def test_k_must_be_positive():
    with pytest.raises(InvalidInputError, match="k must be ≥ 1"):
        zoo.create("iwae", k=0)


def test_held_out_iw_bound_beats_the_elbo_of_the_same_trained_model(short_run):
    metrics = short_run("iwae").metrics
    assert metrics["iwnelbo"] < metrics["nelbo"] - 0.2
    assert math.isfinite(metrics["kl"])

"""β-VAE trade-off and Burgess et al.'s capacity annealing."""

import pytest
import torch

import zoo
from tests.conftest import TINY
from tests.core.test_trainer import InterruptAt, assert_same_weights
from zoo.errors import InvalidInputError
from zoo.recipes import load_recipe

ANNEALED = ["model.gamma=50", "model.capacity_max=10", "model.capacity_steps=60", "train.log_every=1"]


def test_capacity_rises_linearly_to_its_maximum_and_the_loss_is_gamma_times_the_gap():
    model = zoo.create("vae", latent_dim=4, channels=(8,), hidden_dim=0, gamma=10.0, capacity_max=5.0, capacity_steps=4)
    x = torch.rand(3, 1, 28, 28)
    seen = []
    for _ in range(6):
        torch.manual_seed(0)
        out = model.loss(zoo.Batch(x))
        seen.append(out.terms["capacity"].item())
        expected = out.terms["rec"] + 10.0 * (out.terms["kl"] - out.terms["capacity"]).abs()
        assert out.total.item() == pytest.approx(expected.item(), rel=1e-5)
    assert seen == pytest.approx([0, 1.25, 2.5, 3.75, 5, 5])
    model.eval()
    model.loss(zoo.Batch(x))
    assert model.capacity_step.item() == 6  # evaluation does not advance the schedule


def test_beta_and_gamma_are_alternatives():
    with pytest.raises(InvalidInputError, match="beta and gamma are alternatives"):
        zoo.create("vae", beta=4.0, gamma=100.0)


@pytest.fixture(scope="module")
def annealed(tmp_path_factory):
    """A tiny capacity-annealed run on digits (44 steps)."""
    return zoo.train("vae", overrides=[*TINY, *ANNEALED], out=str(tmp_path_factory.mktemp("annealed")))


def test_annealed_run_resumes_bit_exactly_with_its_capacity_step(annealed, tmp_path):
    full = annealed
    assert full.model.capacity_step.item() == full.steps
    overrides = [*TINY, *ANNEALED]
    stopped = zoo.train("vae", overrides=overrides, out=str(tmp_path), reporter=InterruptAt(30))  # mid epoch 2
    assert stopped.interrupted
    resumed = zoo.train(resume=stopped.path)
    assert resumed.model.capacity_step.item() == full.steps
    assert_same_weights(full.path, resumed.path)
    assert resumed.metrics == full.metrics


def test_beta_4_trades_reconstruction_for_a_smaller_kl_on_the_same_seed(short_run):
    one, four = short_run("vae"), short_run("vae", "model.beta=4")
    assert four.metrics["kl"] < 0.7 * one.metrics["kl"]
    assert four.metrics["rec"] > one.metrics["rec"] + 1


def test_dsprites_recipe_is_burgess_annealing_and_trains_on_a_small_subset(tmp_path):
    recipe = load_recipe("vae", "dsprites")
    assert recipe.data == "dsprites" and recipe.model["gamma"] > 0 and recipe.model["capacity_max"] == 25
    run = zoo.train(
        "vae",
        "dsprites",
        data="dsprites?n=400",
        out=str(tmp_path),
        overrides=["train.epochs=1", "model.channels=[8, 8, 8, 8]", "model.hidden_dim=32", "train.sample_grid=0"],
    )
    assert run.model.config.input_shape == (1, 64, 64) and run.steps == 360 // 64
    assert zoo.load(run.path).capacity_step.item() == run.steps

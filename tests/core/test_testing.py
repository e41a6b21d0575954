"""The conformance kit passes families that keep the contracts (single-stage, conditional,
two objectives, two stages) and names the check that fails for ones that break them."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import zoo
from zoo.plugin import FamilySpec
from zoo.registry import families
from zoo.testing import CHECKS, check_family


@dataclass
class ToyConfig(zoo.FamilyConfig):
    latent_dim: int = 4
    num_classes: int = 10


class ToyAE(zoo.Family):
    """A linear autoencoder with a N(0, I) code distribution, for kit tests."""

    name = "kit-ae"
    config_class = ToyConfig

    def __init__(self, config: ToyConfig) -> None:
        super().__init__(config)
        pixels = math.prod(config.input_shape)
        self.enc = nn.Linear(pixels, config.latent_dim)
        self.dec = nn.Linear(config.latent_dim + self.label_width(), pixels)

    def label_width(self) -> int:
        return 0

    def logits(self, z, label=None):
        return self.dec(z)

    def loss(self, batch):
        target = batch.x.flatten(1)
        logits = self.logits(self.enc(target), batch.y)
        rec = F.binary_cross_entropy_with_logits(logits, target, reduction="none").sum(1).mean()
        return zoo.LossOutput(rec, {"rec": rec.detach()})

    def encode(self, x, **conditions):
        return self.enc(x.flatten(1))

    def decode(self, z, label=None):
        return torch.sigmoid(self.logits(z, label)).view(-1, *self.config.input_shape)

    def reconstruct(self, x, **conditions):
        return self.decode(self.encode(x), **conditions)

    def sample(self, n, generator=None, **conditions):
        z = torch.randn(n, self.config.latent_dim, generator=generator)
        return self.decode(z)


class ToyConditional(ToyAE):
    """A label-conditional linear autoencoder: the decoder sees a one-hot label."""

    name = "kit-conditional"
    conditional = True

    def label_width(self) -> int:
        return self.config.num_classes

    def logits(self, z, label=None):
        return self.dec(torch.cat([z, F.one_hot(label, self.config.num_classes).float()], 1))

    def sample(self, n, generator=None, label=None):
        z = torch.randn(n, self.config.latent_dim, generator=generator)
        if label is None:
            label = torch.randint(self.config.num_classes, (n,), generator=generator)
        elif isinstance(label, int):
            label = torch.full((n,), label)
        return self.decode(z, label)


class ToyGAN(zoo.Family):
    """A linear GAN: critic and generator objectives, sampling only; headline: pixel-mean gap."""

    name = "kit-gan"
    config_class = ToyConfig
    headline_metric = "mean_gap"

    def __init__(self, config: ToyConfig) -> None:
        super().__init__(config)
        pixels = math.prod(config.input_shape)
        self.generator = nn.Linear(config.latent_dim, pixels)
        self.critic = nn.Linear(pixels, 1)

    def fake(self, n, generator=None):
        z = torch.randn(n, self.config.latent_dim, generator=generator, device=self.generator.weight.device)
        return torch.sigmoid(self.generator(z))

    def critic_loss(self, batch):
        real, fake = self.critic(batch.x.flatten(1)), self.critic(self.fake(len(batch.x)).detach())
        loss = F.softplus(-real).mean() + F.softplus(fake).mean()
        return zoo.LossOutput(loss, {"critic": loss.detach()})

    def generator_loss(self, batch):
        # non-saturating GAN loss plus feature (here: pixel mean) matching, so that it learns in a few steps
        fake = self.fake(len(batch.x))
        loss = F.softplus(-self.critic(fake)).mean() + (fake.mean(0) - batch.x.flatten(1).mean(0)).pow(2).sum()
        return zoo.LossOutput(loss, {"generator": loss.detach()})

    def objectives(self, stage="main"):
        return [
            zoo.Objective("critic", self.critic.parameters, self.critic_loss),
            zoo.Objective("generator", self.generator.parameters, self.generator_loss),
        ]

    def evaluate(self, batch, stage="main"):
        gap = (self.fake(len(batch.x)).mean(0) - batch.x.flatten(1).mean(0)).pow(2).sum()
        return {"mean_gap": gap, **self.critic_loss(batch).terms, **self.generator_loss(batch).terms}

    def sample(self, n, generator=None, **conditions):
        return self.fake(n, generator).view(n, *self.config.input_shape)


class ToyTwoStage(ToyAE):
    """An autoencoder, then a diagonal Gaussian prior fitted to its codes in a second stage."""

    name = "kit-two-stage"
    stages = ("main", "prior")

    def __init__(self, config: ToyConfig) -> None:
        super().__init__(config)
        self.prior_mean = nn.Parameter(torch.full((config.latent_dim,), 3.0))
        self.prior_log_std = nn.Parameter(torch.zeros(config.latent_dim))

    def prior_loss(self, batch):
        codes = self.encode(batch.x).detach()
        prior = torch.distributions.Normal(self.prior_mean, self.prior_log_std.exp(), validate_args=False)
        nll = -prior.log_prob(codes).sum(1).mean()
        return zoo.LossOutput(nll, {"nll": nll.detach()})

    def objectives(self, stage="main"):
        if stage == "prior":
            return [zoo.Objective("prior", lambda: [self.prior_mean, self.prior_log_std], self.prior_loss)]
        return [zoo.Objective("main", lambda: [*self.enc.parameters(), *self.dec.parameters()], self.loss)]

    def sample(self, n, generator=None, **conditions):
        z = torch.randn(n, self.config.latent_dim, generator=generator)
        return self.decode(self.prior_mean + self.prior_log_std.exp() * z)


@pytest.fixture
def registered():
    """Register toy families in-process for one test."""
    names = []

    def register(cls):
        zoo.register(cls)
        names.append(cls.name)
        return cls.name

    yield register
    for name in names:
        families.unregister(name)


@pytest.mark.parametrize("cls", [ToyAE, ToyConditional, ToyGAN, ToyTwoStage], ids=lambda c: c.name)
def test_families_that_keep_the_contracts_pass_every_check(registered, cls):
    report = check_family(registered(cls))
    assert report.passed == list(CHECKS)
    assert report.config["input_shape"] == [1, 8, 8]  # shaped for the kit's default data, digits
    assert "ships no recipes" in report.notes[0]
    assert report.seconds < 30


class OutOfRange(ToyAE):
    """Reconstructions as logits rather than images."""

    name = "kit-out-of-range"

    def reconstruct(self, x, **conditions):
        return self.logits(self.encode(x)).view_as(x) * 10


class RandomWidth(ToyAE):
    """Its architecture depends on the RNG, not only on its config."""

    name = "kit-random-width"

    def __init__(self, config):
        super().__init__(config)
        self.register_buffer("extra", torch.zeros(int(torch.randint(3, 100, ()))))


class IdleParameter(ToyAE):
    """Has a parameter that no loss uses."""

    name = "kit-idle"

    def __init__(self, config):
        super().__init__(config)
        self.unused = nn.Parameter(torch.zeros(3))


class GlobalNoise(ToyAE):
    """Samples with the global RNG, ignoring the generator it is given."""

    name = "kit-global-noise"

    def sample(self, n, generator=None, **conditions):
        return self.decode(torch.randn(n, self.config.latent_dim))


class Unlearning(ToyAE):
    """Trains on the negated loss, so the held-out loss goes up."""

    name = "kit-unlearning"

    def loss(self, batch):
        out = super().loss(batch)
        return zoo.LossOutput(-out.total, out.terms)

    def evaluate(self, batch, stage="main"):
        return {"loss": super().loss(batch).total}


class NaNTerm(ToyAE):
    """Logs a NaN term."""

    name = "kit-nan-term"

    def loss(self, batch):
        out = super().loss(batch)
        return zoo.LossOutput(out.total, {"rec": out.total.detach(), "bad": torch.tensor(float("nan"))})


class HostRead(ToyAE):
    """Reads its loss on the host each step (a GPU would wait for the device every step)."""

    name = "kit-host-read"

    def loss(self, batch):
        out = super().loss(batch)
        return out if out.total < 1e6 else zoo.LossOutput(out.total.clamp(max=1e6), out.terms)


@pytest.mark.parametrize(
    ("cls", "check", "why"),
    [
        (OutOfRange, "uses", r"reconstruct\(x\) has values in \[.*\], outside \[0, 1\]"),
        (RandomWidth, "config_round_trip", r"does not take the original's weights: extra is \[\d+\], not \[\d+\]"),
        (IdleParameter, "loss_and_gradients", "no gradient reaches unused"),
        (GlobalNoise, "determinism", r"sample\(n, generator\) draws from the global RNG"),
        (Unlearning, "training", "held-out loss of stage 'main' went from .* to .*; training should lower it"),
        (NaNTerm, "loss_and_gradients", "terms: 'bad' is nan"),
        (
            HostRead,
            "sync_free_steps",
            r"objective 'main' of stage 'main' does not run on torch's meta device \(shapes, no values\): "
            r"RuntimeError: Tensor.item\(\) cannot be called on meta tensors. A step that reads",
        ),
    ],
    ids=lambda v: v.name if isinstance(v, type) else "",
)
def test_a_broken_contract_fails_with_the_check_and_the_reason(registered, cls, check, why):
    name = registered(cls)
    with pytest.raises(AssertionError, match=f"family '{name}' fails the '{check}' check: .*{why}"):
        check_family(name)


def test_caller_overrides_and_data_shape_the_model_and_a_subset_of_checks_runs(registered):
    report = check_family(registered(ToyAE), {"latent_dim": 2}, data="mnist-5k", checks=["declaration", "uses"])
    assert report.passed == ["declaration", "uses"]
    assert report.config["latent_dim"] == 2 and report.config["input_shape"] == [1, 28, 28]
    with pytest.raises(ValueError, match="unknown checks"):
        check_family("kit-ae", checks=["speed"])
    with pytest.raises(ValueError, match=r"overrides \['latnt_dim'\] name no field of the config; its fields: "):
        check_family("kit-ae", {"latnt_dim": 2})  # the caller's typo, not a failure of the family


def test_unknown_family_fails_the_declaration_check():
    with pytest.raises(AssertionError, match="family 'nope' fails the 'declaration' check: NotFoundError"):
        check_family("nope")


class WithRecipes(ToyAE):
    """A toy whose recipes package holds one good and one broken recipe."""

    name = "kit-recipes"


def test_a_recipe_that_does_not_validate_fails_the_recipes_check(tmp_path, monkeypatch):
    package = tmp_path / "kit_recipes"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "good.yaml").write_text("data: digits\nmodel: {latent_dim: 2}\n")
    (package / "bad.yaml").write_text("data: digits\nmodel: {latent_dm: 2}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    zoo.register(FamilySpec("kit-recipes", WithRecipes, "toy", recipes="kit_recipes", default_recipe="good"))
    try:
        report = check_family("kit-recipes", checks=["declaration", "uses"])
        assert report.config["latent_dim"] == 2  # the recipe that builds; the broken one is left to 'recipes'
        with pytest.raises(AssertionError, match="'recipes' check: recipe 'bad' does not validate: unknown key"):
            check_family("kit-recipes")
        (package / "good.yaml").write_text("data: digits\nmodel: {latent_dm: 2}\n")  # now the default breaks
        with pytest.raises(
            AssertionError, match="fails the 'recipes' check: InvalidInputError: unknown key 'model.latent_dm'"
        ):
            check_family("kit-recipes", {"latent_dim": 2})
    finally:
        families.unregister("kit-recipes")

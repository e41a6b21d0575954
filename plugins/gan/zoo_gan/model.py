"""The GAN model: generator and critic parts, the two objectives, and a held-out score."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor, nn

import zoo
from zoo import Batch, Critic, Family, FamilyConfig, LossOutput, Objective, StandardNormal
from zoo.classifier import DigitClassifier, classify, confidently_classified, embed
from zoo.config import check
from zoo.evaluation.samples import draw
from zoo.nets import ConvDecoderNet, ConvEncoderNet
from zoo_gan.frechet import judge
from zoo_gan.losses import LOSSES, critic_loss, generator_loss, gradient_penalty


@dataclass
class GANConfig(FamilyConfig):
    latent_dim: int = 64
    #: Widths of the critic's stride-2 levels; the generator mirrors them.
    channels: tuple[int, ...] = (32, 64)
    #: ns (non-saturating), hinge or wgan-gp.
    loss: str = "ns"
    gp_weight: float = 10.0
    #: Spectral normalisation of every critic layer (Miyato et al. 2018).
    spectral_norm: bool = False
    #: Batch normalisation in the generator, before each activation (Radford et al.'s DCGAN).
    batch_norm: bool = False
    #: Critic steps per generator step.
    n_critic: int = 1
    #: Samples for the held-out Fréchet distance `fd` after each epoch; 0 turns it off.
    fd_samples: int = 1000

    def __post_init__(self) -> None:
        super().__post_init__()
        check(
            len(self.input_shape) == 3,
            f"family 'gan' takes images (C, H, W), not shape {list(self.input_shape)}; "
            "for vectors and 1-D signals use ae, vae, cvae or iwae",
        )
        check(self.latent_dim >= 1, f"latent_dim must be ≥ 1, got {self.latent_dim}")
        check(len(self.channels) >= 1 and min(self.channels) >= 1, "channels must be positive widths")
        check(self.loss in LOSSES, f"loss must be one of {', '.join(LOSSES)}, got '{self.loss}'")
        check(self.gp_weight >= 0, f"gp_weight must be ≥ 0, got {self.gp_weight}")
        check(self.n_critic >= 1, f"n_critic must be ≥ 1, got {self.n_critic}")
        check(self.fd_samples == 0 or self.fd_samples >= 2, f"fd_samples must be 0 or ≥ 2, got {self.fd_samples}")


class Generator(nn.Module):
    """z → image in [0, 1]: a linear layer, then stride-2 transposed convolutions, batch
    normalised with `batch_norm`. Sampling uses the running statistics (eval mode); the
    trainer's EMA averages them along with the weights."""

    def __init__(self, config: GANConfig) -> None:
        super().__init__()
        self.net = ConvDecoderNet(config.latent_dim, config.input_shape, config.channels, config.batch_norm)

    def forward(self, z: Tensor) -> Tensor:
        return torch.sigmoid(self.net(z))


class ConvCritic(Critic):
    """x → realness score: stride-2 convolutions and a linear head, spectrally normalised
    when asked."""

    def __init__(self, config: GANConfig) -> None:
        super().__init__()
        self.trunk = ConvEncoderNet(config.input_shape, config.channels)
        self.head = nn.Linear(self.trunk.features, 1)
        if config.spectral_norm:
            for module in list(self.modules()):
                if isinstance(module, (nn.Conv2d, nn.Linear)):
                    nn.utils.parametrizations.spectral_norm(module)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.trunk(x)).squeeze(1)


class GAN(Family):
    """Goodfellow et al.'s GAN with DCGAN-style nets. Two objectives per step: the critic's
    (every step) and the generator's (every `n_critic` steps), each with its own optimiser
    (`train.optimizers.critic`, `train.optimizers.generator`). The held-out score `fd` is
    the Fréchet distance between samples and the test split in the features of zoo's
    classifier for the data; with `train.keep_best` the run keeps the epoch where it is lowest.
    The same classifier's verdict on the samples is logged beside it (`confident`, `classes`)."""

    name = "gan"
    config_class = GANConfig
    headline_metric = "fd"

    def __init__(self, config: GANConfig) -> None:
        super().__init__(config)
        self.generator = Generator(config)
        self.critic = ConvCritic(config)
        self.prior = StandardNormal(config.latent_dim)

    # training -----------------------------------------------------------------------
    def objectives(self, stage: str = "main") -> list[Objective]:
        return [
            Objective("critic", self.critic.parameters, self.critic_loss),
            Objective("generator", self.generator.parameters, self.generator_loss, every=self.config.n_critic),
        ]

    def _fakes(self, n: int) -> Tensor:
        return self.generator(self.prior.sample(n))

    def critic_loss(self, batch: Batch) -> LossOutput:
        with torch.no_grad():
            fake = self._fakes(len(batch.x))
        real_scores, fake_scores = self.critic(batch.x), self.critic(fake)
        adversarial = critic_loss(self.config.loss, real_scores, fake_scores)
        terms = {"adversarial": adversarial.detach(), "real": real_scores.mean().detach()}
        total = adversarial
        if self.config.loss == "wgan-gp":
            penalty = gradient_penalty(self.critic, batch.x, fake)
            total = total + self.config.gp_weight * penalty
            terms["gp"] = penalty.detach()
        return LossOutput(total, {**terms, "fake": fake_scores.mean().detach()})

    def generator_loss(self, batch: Batch) -> LossOutput:
        loss = generator_loss(self.config.loss, self.critic(self._fakes(len(batch.x))))
        return LossOutput(loss, {})

    @torch.no_grad()
    def evaluate(self, batch: Batch, stage: str = "main") -> dict[str, Tensor]:
        """Both players' losses on test images against fresh samples (no gradient penalty)."""
        real_scores, fake_scores = self.critic(batch.x), self.critic(self._fakes(len(batch.x)))
        return {
            "critic": critic_loss(self.config.loss, real_scores, fake_scores),
            "generator": generator_loss(self.config.loss, fake_scores),
        }

    @torch.no_grad()
    def evaluate_split(self, batches: Iterable[Batch], stage: str = "main", data: str = "") -> dict[str, float]:
        """Means over the split, and, judged by zoo's classifier for `data` on `fd_samples`
        samples (fixed noise): `fd`, their Fréchet distance to the split in its features;
        `confident`, the fraction it labels with probability ≥ 0.9; `classes`, how many
        classes those cover."""
        real: list[Tensor] = []

        def kept() -> Iterator[Batch]:
            for batch in batches:
                real.append(batch.x)
                yield batch

        metrics = super().evaluate_split(kept(), stage, data)
        if self.config.fd_samples and data:
            classifier = judge(data, str(self.device))
            features = self._sample_features(classifier)
            metrics["fd"] = zoo.frechet_distance(embed(classifier, torch.cat(real)), features)
            metrics.update(confidently_classified(*classify(classifier, features)))
        return metrics

    @torch.no_grad()
    def frechet_distance(self, images: Tensor, data: str) -> float:
        """Fréchet distance between `fd_samples` samples and `images` in the features of
        zoo's classifier for `data`."""
        classifier = judge(data, str(self.device))
        return zoo.frechet_distance(embed(classifier, images), self._sample_features(classifier))

    def _sample_features(self, classifier: DigitClassifier) -> Tensor:
        """The classifier's features of `fd_samples` samples drawn from fixed noise."""
        return embed(classifier, draw(self, self.config.fd_samples, seed=0))

    def check_data(self, data: zoo.Splits) -> None:
        zoo.check_unit_interval(data, "the generator's sigmoid outputs are images in [0, 1]: scale the data to them")

    # uses ---------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return self.generator(self.prior.sample(n, generator))

    @torch.no_grad()
    def decode(self, z: Tensor) -> Tensor:
        """Images for latent vectors z (N, latent_dim)."""
        zoo.check_codes(z, (self.config.latent_dim,), f"{self.name}.decode")
        return self.generator(z)

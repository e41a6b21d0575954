"""The CVAE model: q(z|x, y) and p(x|z, y) with the label joined as a one-hot vector,
a standard-normal prior p(z), loss the negative conditional ELBO with a β-weighted KL."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from zoo import (
    Batch,
    Family,
    GaussianLatentConfig,
    InvalidInputError,
    LossOutput,
    Splits,
    StandardNormal,
    check_codes,
    importance_sampled_nll,
    takes_batch,
)
from zoo.config import check
from zoo.latent import build_decoder, check_likelihood_data
from zoo.likelihood import NLLEstimate
from zoo.parts import gaussian_kl


@dataclass
class CVAEConfig(GaussianLatentConfig):
    beta: float = 1.0
    #: Filled in from the training data by the trainer.
    num_classes: int = 10

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.beta >= 0, f"beta must be ≥ 0, got {self.beta}")
        check(self.num_classes >= 2, f"num_classes must be ≥ 2 (a labelled dataset), got {self.num_classes}")


class CVAE(Family):
    """Sohn et al.'s conditional VAE with class labels: the encoder and the decoder both see
    the label, so the code carries style and the label carries the class. Trained on
    loss = rec + β·kl per image (nats); `nelbo` is −log p(x|y)'s bound.

    `sample(n, label=7)` draws sevens (label: an int or an (n,) tensor; None draws labels
    uniformly); `reconstruct`, `encode` and `decode` take the images' labels as `label`."""

    name = "cvae"
    config_class = CVAEConfig
    conditional = True
    headline_metric = "nelbo"

    def __init__(self, config: CVAEConfig) -> None:
        super().__init__(config)
        c = config
        self.encoder = c.gaussian_encoder(c.num_classes)
        self.decoder = build_decoder(c, c.num_classes)
        self.prior = StandardNormal(c.latent_dim)

    def check_data(self, data: Splits) -> None:
        """Bernoulli data in [0, 1], and class ids the one-hot condition holds: checked once
        here, as the training loss does not check each batch's (on a GPU, that would wait for
        the GPU at every step)."""
        check_likelihood_data(self.config, data)
        for name, part in (("train", data.train), ("test", data.test)):
            if part.y is None or not len(part.y):
                continue
            low, top = (int(v) for v in torch.aminmax(part.y))
            if low < 0 or top >= self.config.num_classes:
                raise InvalidInputError(
                    f"data '{data.name}' has class id {low if low < 0 else top} in its {name} split; "
                    f"model.num_classes is {self.config.num_classes}"
                )

    def condition(self, label: int | Tensor | None, n: int, checked: bool = True) -> Tensor:
        """One-hot rows (n, num_classes) for `label` (an int or an (n,) tensor of class ids);
        `checked=False` skips the range check of tensor labels (data `check_data` passed)."""
        if label is None:
            raise InvalidInputError(f"family '{self.name}' is conditional: pass the class labels as label=")
        if isinstance(label, int) and not 0 <= label < self.config.num_classes:  # before torch's int64
            raise InvalidInputError(f"labels must be in 0..{self.config.num_classes - 1}, got [{label}]")
        labels = torch.as_tensor(label, device=self.device)
        if labels.is_floating_point() or labels.dtype == torch.bool:  # .long() would truncate 7.9 to 7
            raise InvalidInputError(f"labels must be integer class ids, got {labels.dtype}")
        labels = labels.long()
        if labels.dim() == 0:
            labels = labels.expand(n)
        if labels.shape != (n,):
            raise InvalidInputError(f"label must be an int or {n} class ids, got shape {list(labels.shape)}")
        if checked and len(labels) and (labels.min() < 0 or labels.max() >= self.config.num_classes):
            wrong = labels.unique().tolist()
            raise InvalidInputError(f"labels must be in 0..{self.config.num_classes - 1}, got {wrong}")
        return F.one_hot(labels, self.config.num_classes).to(next(self.parameters()).dtype)

    def loss(self, batch: Batch) -> LossOutput:
        if batch.y is None:
            raise InvalidInputError(f"family '{self.name}' trains on labelled data; this dataset has no labels")
        condition = self.condition(batch.y, len(batch.x), checked=False)
        posterior = self.encoder(batch.x, condition)
        rec = -self.decoder(posterior.rsample(), condition).log_prob(batch.x).mean()
        kl = gaussian_kl(posterior.base_dist).mean()
        total = rec + self.config.beta * kl
        return LossOutput(total, {"nelbo": (rec + kl).detach(), "rec": rec.detach(), "kl": kl.detach()})

    @takes_batch
    def nll(self, x: Tensor, k: int = 1000, seed: int = 0, label: Tensor | None = None) -> NLLEstimate:
        """−log p(x | label) per example (nats), importance-sampled."""
        condition = self.condition(label, len(x))
        return importance_sampled_nll(self.encoder, self.prior, self.decoder, x, condition, k=k, seed=seed)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, label: int | Tensor | None = None) -> Tensor:
        z = self.prior.sample(n, generator)
        if label is None:
            device = generator.device if generator is not None else self.device
            label = torch.randint(self.config.num_classes, (n,), generator=generator, device=device)
        return self.decoder(z, self.condition(label, n)).mean

    @takes_batch
    def reconstruct(self, x: Tensor, label: Tensor | None = None) -> Tensor:
        condition = self.condition(label, len(x))
        return self.decoder(self.encoder(x, condition).mean, condition).mean

    @takes_batch
    def encode(self, x: Tensor, label: Tensor | None = None) -> Tensor:
        return self.encoder(x, self.condition(label, len(x))).mean

    @torch.no_grad()
    def decode(self, z: Tensor, label: int | Tensor | None = None) -> Tensor:
        check_codes(z, (self.config.latent_dim,), f"{self.name}.decode")
        return self.decoder(z, self.condition(label, len(z))).mean

"""The AE model: point encoder, decoder (Bernoulli logits for images, a Gaussian mean for
vectors and signals), optional input corruption, and the Gaussian over codes that `sample`
draws from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from zoo import Batch, ConvLatentConfig, LatentFamily, LossOutput, TensorData
from zoo.config import check
from zoo.latent import build_decoder
from zoo.parts import PointEncoder

#: Images per forward pass when the latent Gaussian is fitted.
FIT_BATCH = 500


@dataclass
class AEConfig(ConvLatentConfig):
    #: Reconstruction loss: bce (Bernoulli cross-entropy, values in [0, 1]), mse (squared error),
    #: or auto: the negative log-likelihood of the decoder's likelihood (bce for images).
    loss: Literal["auto", "bce", "mse"] = "auto"
    #: Denoising training: Gaussian noise of this std added to the inputs (clamped to [0, 1]
    #: with a Bernoulli likelihood) …
    noise_std: float = 0.0
    #: … and each input pixel zeroed with this probability. The target stays the clean image.
    mask_prob: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.noise_std >= 0, f"noise_std must be ≥ 0, got {self.noise_std}")
        check(0 <= self.mask_prob < 1, f"mask_prob must be in [0, 1), got {self.mask_prob}")
        check(
            self.loss != "bce" or self.resolved_likelihood == "bernoulli",
            "loss bce needs values in [0, 1] and likelihood bernoulli; use loss mse or auto for real-valued data",
        )


class AE(LatentFamily):
    """A deterministic autoencoder: x → code → x̂, trained on reconstruction error alone
    (Bernoulli cross-entropy, squared error with loss: mse, or with loss: auto the decoder's
    negative log-likelihood — Gaussian with a learned scale for vectors and signals). Denoising when noise_std or
    mask_prob > 0: inputs are corrupted in training, targets stay clean.

    `sample` draws codes from a full-covariance Gaussian fitted to the codes of the training
    images (refitted by the trainer after every epoch, kept in buffers) and decodes them; an
    autoencoder has no prior of its own, so these samples are rougher than a VAE's.
    The headline metric is the test mean squared error per pixel (`mse`)."""

    name = "ae"
    config_class = AEConfig
    headline_metric = "mse"

    def __init__(self, config: AEConfig) -> None:
        super().__init__(config)
        self.encoder = PointEncoder(config.input_shape, config.latent_dim, config.channels, config.hidden_dim)
        self.decoder = build_decoder(config)
        self.bernoulli = config.resolved_likelihood == "bernoulli"
        if not self.bernoulli and config.loss == "mse":
            self.decoder.raw_scale.requires_grad_(False)  # squared error does not use the scale
        self.register_buffer("latent_mean", torch.zeros(config.latent_dim))
        self.register_buffer("latent_scale_tril", torch.eye(config.latent_dim))

    def corrupt(self, x: Tensor) -> Tensor:
        """The input a denoising autoencoder sees in training (x itself when not denoising)."""
        if self.config.noise_std:
            x = x + self.config.noise_std * torch.randn_like(x)
            x = x.clamp(0, 1) if self.bernoulli else x
        if self.config.mask_prob:
            x = x * (torch.rand_like(x) >= self.config.mask_prob)
        return x

    def loss(self, batch: Batch) -> LossOutput:
        inputs = self.corrupt(batch.x) if self.training else batch.x
        logits = self.decoder.logits(self.encoder(inputs))
        recon = torch.sigmoid(logits) if self.bernoulli else logits
        mse = (recon - batch.x).pow(2).mean()
        if self.config.loss == "mse":
            rec = (recon - batch.x).pow(2).flatten(1).sum(1).mean()
        elif self.bernoulli:  # bce, or auto with a Bernoulli likelihood
            rec = F.binary_cross_entropy_with_logits(logits, batch.x, reduction="none").flatten(1).sum(1).mean()
        else:
            rec = -self.decoder.likelihood(logits).log_prob(batch.x).mean()
        return LossOutput(rec, {"rec": rec.detach(), "mse": mse.detach()})

    @torch.no_grad()
    def after_epoch(self, train: TensorData, stage: str = "main") -> None:
        """Fit the sampling Gaussian to the codes of the clean training images."""
        batches = (train.x[i : i + FIT_BATCH].to(self.device) for i in range(0, len(train), FIT_BATCH))
        codes = torch.cat([self.encoder(x) for x in batches]).double()
        mean = codes.mean(0)
        centred = codes - mean
        cov = centred.T @ centred / max(len(codes) - 1, 1)
        jitter = 1e-6 * cov.diagonal().mean().clamp(min=1e-12)
        eye = torch.eye(len(mean), dtype=cov.dtype, device=cov.device)
        self.latent_mean.copy_(mean)
        self.latent_scale_tril.copy_(torch.linalg.cholesky(cov + jitter * eye))

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        device = generator.device if generator is not None else self.device
        eps = torch.randn((n, self.config.latent_dim), generator=generator, device=device).to(self.latent_mean)
        return self.decode(self.latent_mean + eps @ self.latent_scale_tril.T)

"""The VQ-VAE model: a conv encoder to a grid of D-dim features, an EMA vector quantiser,
a conv decoder, and a gated PixelCNN prior over the code grid fitted in a second stage."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo import (
    Batch,
    FamilyConfig,
    InvalidInputError,
    LatentFamily,
    LossOutput,
    Objective,
    Splits,
    check_unit_interval,
    takes_batch,
)
from zoo.config import check
from zoo.nets import ConvEncoderNet, spatial_sizes, upsampling_net
from zoo_vqvae.pixelcnn import PixelCNNPrior
from zoo_vqvae.quantizer import EMAQuantizer, code_counts, codebook_stats


@dataclass
class VQVAEConfig(FamilyConfig):
    #: Codebook size K and codeword dimension D.
    num_codes: int = 128
    code_dim: int = 16
    #: Widths of the stride-2 levels: 28×28 with two levels gives a 7×7 code grid.
    channels: tuple[int, ...] = (32, 64)
    res_blocks: int = 1
    #: Weight of the commitment loss ‖z − sg(e)‖² (β in the paper).
    commitment: float = 0.25
    #: EMA decay of the codebook; codes used less than `dead_threshold` times a batch
    #: (moving average) are re-seeded from the batch (0 turns that off).
    codebook_decay: float = 0.99
    dead_threshold: float = 1.0
    prior_channels: int = 64
    prior_layers: int = 8
    #: Softmax temperature when sampling codes from the prior.
    temperature: float = 1.0
    #: Draw each code from the prior's k likeliest only; 0 draws from all of them.
    top_k: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        check(
            len(self.input_shape) == 3,
            f"family 'vqvae' takes images (C, H, W), not shape {list(self.input_shape)}; "
            "for vectors and 1-D signals use ae, vae, cvae or iwae",
        )
        check(self.num_codes >= 2, f"num_codes must be ≥ 2, got {self.num_codes}")
        check(self.code_dim >= 1, f"code_dim must be ≥ 1, got {self.code_dim}")
        check(len(self.channels) >= 1 and min(self.channels) >= 1, "channels must be positive widths")
        check(self.res_blocks >= 0, f"res_blocks must be ≥ 0, got {self.res_blocks}")
        check(self.commitment >= 0, f"commitment must be ≥ 0, got {self.commitment}")
        check(0 < self.codebook_decay < 1, f"codebook_decay must be in (0, 1), got {self.codebook_decay}")
        check(self.dead_threshold >= 0, f"dead_threshold must be ≥ 0, got {self.dead_threshold}")
        check(self.prior_channels >= 1 and self.prior_layers >= 1, "prior_channels and prior_layers must be ≥ 1")
        check(self.temperature > 0, f"temperature must be > 0, got {self.temperature}")
        check(self.top_k >= 0, f"top_k must be ≥ 0 (0: no cut), got {self.top_k}")


class ResBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.SiLU(), nn.Conv2d(channels, channels, 3, padding=1), nn.SiLU(), nn.Conv2d(channels, channels, 1)
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.net(x)


class VQVAE(LatentFamily):
    """van den Oord et al.'s VQ-VAE. Stage `main` trains encoder and decoder on
    reconstruction + β·commitment (the codebook follows by EMA); stage `prior` fits the PixelCNN to the
    codes of the frozen encoder, so that `sample` draws codes from it."""

    name = "vqvae"
    config_class = VQVAEConfig
    stages = ("main", "prior")
    settings = ("temperature", "top_k")
    headline_metric = "mse"

    def __init__(self, config: VQVAEConfig) -> None:
        super().__init__(config)
        width = config.channels[-1]
        trunk = ConvEncoderNet(config.input_shape, config.channels, flatten=False)
        self.encoder = nn.Sequential(
            trunk, *(ResBlock(width) for _ in range(config.res_blocks)), nn.SiLU(), nn.Conv2d(width, config.code_dim, 1)
        )
        self.quantizer = EMAQuantizer(config.num_codes, config.code_dim, config.codebook_decay, config.dead_threshold)
        self.decoder = nn.Sequential(
            nn.Conv2d(config.code_dim, width, 3, padding=1),
            *(ResBlock(width) for _ in range(config.res_blocks)),
            nn.SiLU(),
            upsampling_net(config.input_shape, config.channels),
        )
        levels = len(config.channels)
        grid = (spatial_sizes(config.input_shape[1], levels)[-1], spatial_sizes(config.input_shape[2], levels)[-1])
        self.prior = PixelCNNPrior(
            config.num_codes,
            grid,
            config.prior_channels,
            config.prior_layers,
            temperature=config.temperature,
            top_k=config.top_k,
        )

    # training -----------------------------------------------------------------------
    def objectives(self, stage: str = "main") -> list[Objective]:
        if stage == "prior":
            return [Objective("prior", self.prior.parameters, self.prior_loss)]
        return [Objective("main", self._autoencoder_parameters, self.loss)]

    def _autoencoder_parameters(self) -> Iterator[nn.Parameter]:
        return itertools.chain(self.encoder.parameters(), self.decoder.parameters())

    def loss(self, batch: Batch) -> LossOutput:
        """Binary cross-entropy per pixel (a Bernoulli likelihood: sharper and faster to fit
        than MSE on sigmoid outputs) + β·commitment; the MSE per pixel is logged."""
        quantized = self.quantizer(self.encoder(batch.x))
        logits = self.decoder(quantized.features)
        bce = F.binary_cross_entropy_with_logits(logits, batch.x)
        mse = (torch.sigmoid(logits) - batch.x).pow(2).mean()
        total = bce + self.config.commitment * quantized.commitment
        counts = code_counts(quantized.codes, self.config.num_codes)
        terms = {"mse": mse.detach(), "bce": bce.detach(), "commitment": quantized.commitment.detach()}
        return LossOutput(total, {**terms, **codebook_stats(counts)})

    def prior_loss(self, batch: Batch) -> LossOutput:
        """−log p(codes) of the frozen encoder's codes, nats per image."""
        nll = -self.prior.log_prob(self.encode(batch.x)).mean()
        return LossOutput(nll, {"prior_nll": nll.detach()})

    @torch.no_grad()
    def evaluate(self, batch: Batch, stage: str = "main") -> dict[str, Tensor]:
        out = self.loss(batch)
        metrics = {"loss": out.total, **out.terms}
        if stage == "prior":  # the stage's own objective is its 'loss'
            metrics["loss"] = metrics["prior_nll"] = self.prior_loss(batch).total
        return metrics

    @torch.no_grad()
    def evaluate_split(self, batches: Iterable[Batch], stage: str = "main", data: str = "") -> dict[str, float]:
        """Means over the split, with perplexity and usage of the codebook over the whole split
        (not per batch: usage is the fraction of codes that any test image uses)."""
        counts = torch.zeros(self.config.num_codes, dtype=torch.long, device=self.device)

        def counted() -> Iterator[Batch]:
            for batch in batches:
                counts.add_(code_counts(self.encode(batch.x), self.config.num_codes))
                yield batch

        metrics = super().evaluate_split(counted(), stage, data)
        return {**metrics, **{k: v.item() for k, v in codebook_stats(counts).items()}}

    def check_data(self, data: Splits) -> None:
        check_unit_interval(data, "the vqvae's cross-entropy and sigmoid outputs take images in [0, 1]: scale them")

    # uses ---------------------------------------------------------------------------
    # sample (codes drawn from the PixelCNN prior, decoded) and reconstruct come from LatentFamily.
    @takes_batch
    def encode(self, x: Tensor) -> Tensor:
        """The code grid (N, H', W') of int64 codebook indices."""
        return self.quantizer.nearest(self.encoder(x))

    @torch.no_grad()
    def decode(self, z: Tensor) -> Tensor:
        """Images for code grids z (N, H', W') of int64 codebook indices, as `encode` gives."""
        grid = ", ".join(map(str, self.prior.grid))
        if not isinstance(z, Tensor) or z.dtype != torch.int64 or tuple(z.shape[1:]) != self.prior.grid:
            got = f"{z.dtype} {list(z.shape)}" if isinstance(z, Tensor) else type(z).__name__
            raise InvalidInputError(f"{self.name}.decode takes int64 code grids of shape (N, {grid}), got {got}")
        if z.numel() and (z.min() < 0 or z.max() >= self.config.num_codes):
            raise InvalidInputError(f"{self.name}.decode takes codebook indices in 0..{self.config.num_codes - 1}")
        return torch.sigmoid(self.decoder(self.quantizer.lookup(z)))

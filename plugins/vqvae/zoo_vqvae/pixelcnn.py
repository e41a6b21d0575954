"""A gated PixelCNN (van den Oord et al. 2016) over a grid of discrete codes: the learned
prior of the VQ-VAE. Vertical and horizontal stacks without a blind spot; each code is
predicted from the codes above it and to its left."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo import Prior


class MaskedConv2d(nn.Conv2d):
    """A convolution whose kernel sees only the rows above (vertical) or the columns to the
    left (horizontal) of its centre; `include_centre` also lets it see the centre row/column."""

    def __init__(self, channels_in: int, channels_out: int, kernel: int, vertical: bool, include_centre: bool) -> None:
        size = (kernel, kernel) if vertical else (1, kernel)
        super().__init__(channels_in, channels_out, size, padding=(size[0] // 2, size[1] // 2))
        mask = torch.ones(size)
        centre = kernel // 2
        if vertical:
            mask[centre + (1 if include_centre else 0) :, :] = 0
        else:
            mask[:, centre + (1 if include_centre else 0) :] = 0
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


class GatedLayer(nn.Module):
    """One gated layer: tanh ⊙ sigmoid on both stacks, the vertical feeding the horizontal,
    a residual connection on the horizontal stack."""

    def __init__(self, channels: int, kernel: int) -> None:
        super().__init__()
        self.vertical = MaskedConv2d(channels, 2 * channels, kernel, vertical=True, include_centre=True)
        self.horizontal = MaskedConv2d(channels, 2 * channels, kernel, vertical=False, include_centre=True)
        self.vertical_to_horizontal = nn.Conv2d(2 * channels, 2 * channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)

    def forward(self, v: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        v_features = self.vertical(v)
        h_features = self.horizontal(h) + self.vertical_to_horizontal(v_features)
        return _gate(v_features), h + self.out(_gate(h_features))


def _gate(x: Tensor) -> Tensor:
    value, gate = x.chunk(2, dim=1)
    return torch.tanh(value) * torch.sigmoid(gate)


class PixelCNNPrior(Prior):
    """p(codes) = Π p(code_ij | codes above and to the left), categorical over `num_codes`.
    `sample` divides the logits by `temperature` and, with `top_k`, draws each code from the
    k likeliest only (Fan et al. 2018's top-k sampling): fewer stray strokes, less variety."""

    def __init__(
        self,
        num_codes: int,
        grid: tuple[int, int],
        channels: int = 64,
        layers: int = 8,
        kernel: int = 3,
        temperature: float = 1.0,
        top_k: int = 0,
    ) -> None:
        super().__init__()
        self.num_codes, self.grid, self.temperature, self.top_k = num_codes, tuple(grid), temperature, top_k
        self.embed = nn.Embedding(num_codes, channels)
        # The first convolutions exclude the centre, so no code sees itself.
        self.first_vertical = MaskedConv2d(channels, channels, kernel, vertical=True, include_centre=False)
        self.first_horizontal = MaskedConv2d(channels, channels, kernel, vertical=False, include_centre=False)
        self.layers = nn.ModuleList(GatedLayer(channels, kernel) for _ in range(layers))
        self.head = nn.Sequential(
            nn.ELU(), nn.Conv2d(channels, channels, 1), nn.ELU(), nn.Conv2d(channels, num_codes, 1)
        )

    def logits(self, codes: Tensor) -> Tensor:
        """(N, H, W) codes → (N, num_codes, H, W) logits of each code given the ones before it."""
        x = self.embed(codes).permute(0, 3, 1, 2)
        v, h = self.first_vertical(x), self.first_horizontal(x)
        for layer in self.layers:
            v, h = layer(v, h)
        return self.head(h)

    def log_prob(self, z: Tensor) -> Tensor:
        return -F.cross_entropy(self.logits(z), z, reduction="none").flatten(1).sum(1)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n code grids, drawn one position at a time in raster order."""
        device = self.embed.weight.device
        codes = torch.zeros((n, *self.grid), dtype=torch.long, device=device)
        for i in range(self.grid[0]):
            for j in range(self.grid[1]):
                logits = self.logits(codes)[:, :, i, j].float()
                if self.top_k:
                    kth = logits.topk(min(self.top_k, self.num_codes), dim=1).values[:, -1:]
                    logits = logits.masked_fill(logits < kth, float("-inf"))
                probs = (logits / self.temperature).softmax(1)
                if generator is not None:
                    probs = probs.to(generator.device)
                codes[:, i, j] = torch.multinomial(probs, 1, generator=generator).squeeze(1).to(device)
        return codes

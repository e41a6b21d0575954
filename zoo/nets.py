"""Convolutional trunks that families share, sized by the input shape.

Each level halves the spatial size (kernel 4, stride 2, padding 1); the decoder mirrors
the encoder and picks output padding per level so that any size comes back exactly
(28 → 14 → 7 → 14 → 28, 8 → 4 → 2 → 4 → 8, 7 → 3 → 7).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import Tensor, nn

from zoo.errors import InvalidInputError


def spatial_sizes(size: int, levels: int) -> list[int]:
    """Sizes after 0..levels halvings, e.g. 28, 3 → [28, 14, 7, 3]."""
    sizes = [size]
    for _ in range(levels):
        sizes.append((sizes[-1] - 2) // 2 + 1)
    if sizes[-1] < 1:
        raise InvalidInputError(f"an input of size {size} is too small for {levels} stride-2 levels")
    return sizes


class ConvEncoderNet(nn.Module):
    """(N, C, H, W) → (N, features): stride-2 convolutions then a flatten (or, with
    flatten=False, the (N, *out_shape) feature map, for spatial codes)."""

    def __init__(self, input_shape: Sequence[int], channels: Sequence[int], flatten: bool = True) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise InvalidInputError(f"convolutional nets need (C, H, W) inputs, got {list(input_shape)}")
        c, h, w = input_shape
        layers: list[nn.Module] = []
        for out in channels:
            layers += [nn.Conv2d(c, out, 4, 2, 1), nn.SiLU()]
            c = out
        self.net = nn.Sequential(*layers, nn.Flatten() if flatten else nn.Identity())
        self.out_shape = (c, spatial_sizes(h, len(channels))[-1], spatial_sizes(w, len(channels))[-1])
        self.features = math.prod(self.out_shape)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class ConvDecoderNet(nn.Module):
    """(N, features) → (N, C, H, W) unbounded outputs: a linear layer then transposed convs
    that mirror ConvEncoderNet(input_shape, channels)."""

    def __init__(self, in_features: int, output_shape: Sequence[int], channels: Sequence[int]) -> None:
        super().__init__()
        _, h, w = output_shape
        self.start_shape = (channels[-1], spatial_sizes(h, len(channels))[-1], spatial_sizes(w, len(channels))[-1])
        self.linear = nn.Sequential(nn.Linear(in_features, math.prod(self.start_shape)), nn.SiLU())
        self.net = upsampling_net(output_shape, channels)

    def forward(self, h: Tensor) -> Tensor:
        return self.net(self.linear(h).view(-1, *self.start_shape))


def hidden_layer(features: int, width: int) -> nn.Module:
    """A fully connected layer between a conv trunk and a code; none when width is 0."""
    if width == 0:
        return nn.Identity()
    return nn.Sequential(nn.Linear(features, width), nn.SiLU())


def upsampling_net(output_shape: Sequence[int], channels: Sequence[int]) -> nn.Sequential:
    """(N, channels[-1], h_L, w_L) → (N, *output_shape) unbounded outputs: transposed convs
    that mirror ConvEncoderNet(output_shape, channels), SiLU between them."""
    c_out, h, w = output_shape
    hs, ws = spatial_sizes(h, len(channels)), spatial_sizes(w, len(channels))
    widths = list(reversed(channels))
    layers: list[nn.Module] = []
    for level, c_in in enumerate(widths):
        target = len(channels) - level - 1
        last = target == 0
        pad = (hs[target] - 2 * hs[target + 1], ws[target] - 2 * ws[target + 1])
        out = c_out if last else widths[level + 1]
        layers.append(nn.ConvTranspose2d(c_in, out, 4, 2, 1, output_padding=pad))
        if not last:
            layers.append(nn.SiLU())
    return nn.Sequential(*layers)

"""The trunks that families share, chosen by the input shape.

    (C, H, W)  an image: stride-2 2-D convolutions
    (C, L)     a 1-D signal (channels × length): the same with 1-D convolutions
    (D,)       a vector: a multilayer perceptron whose layer widths are `channels`

Each conv level halves the spatial size (kernel 4, stride 2, padding 1); the decoder mirrors
the encoder and picks output padding per level so that any size comes back exactly
(28 → 14 → 7 → 14 → 28, 8 → 4 → 2 → 4 → 8, 7 → 3 → 7).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import Tensor, nn

from zoo.errors import InvalidInputError

#: What an input shape holds, by its number of dimensions.
KINDS = {1: "vector", 2: "signal", 3: "image"}


def data_kind(shape: Sequence[int]) -> str:
    """'vector' for (D,), 'signal' for (C, L), 'image' for (C, H, W)."""
    kind = KINDS.get(len(shape))
    if kind is None:
        raise InvalidInputError(
            f"inputs must be vectors (D), 1-D signals (C, L) or images (C, H, W), got shape {list(shape)}"
        )
    return kind


def spatial_sizes(size: int, levels: int) -> list[int]:
    """Sizes after 0..levels halvings, e.g. 28, 3 → [28, 14, 7, 3]."""
    sizes = [size]
    for _ in range(levels):
        sizes.append((sizes[-1] - 2) // 2 + 1)
    if sizes[-1] < 1:
        raise InvalidInputError(f"an input of size {size} is too small for {levels} stride-2 levels")
    return sizes


def _conv_layers(input_shape: Sequence[int]) -> tuple[type[nn.Module], type[nn.Module]]:
    """(Conv, ConvTranspose) classes for (C, L) or (C, H, W) inputs."""
    if len(input_shape) == 2:
        return nn.Conv1d, nn.ConvTranspose1d
    if len(input_shape) == 3:
        return nn.Conv2d, nn.ConvTranspose2d
    raise InvalidInputError(f"convolutional nets need (C, L) or (C, H, W) inputs, got {list(input_shape)}")


class ConvEncoderNet(nn.Module):
    """(N, C, H, W) or (N, C, L) → (N, features): stride-2 convolutions then a flatten (or,
    with flatten=False, the (N, *out_shape) feature map, for spatial codes)."""

    def __init__(self, input_shape: Sequence[int], channels: Sequence[int], flatten: bool = True) -> None:
        super().__init__()
        conv, _ = _conv_layers(input_shape)
        c, *spatial = input_shape
        layers: list[nn.Module] = []
        for out in channels:
            layers += [conv(c, out, 4, 2, 1), nn.SiLU()]
            c = out
        self.net = nn.Sequential(*layers, nn.Flatten() if flatten else nn.Identity())
        self.out_shape = (c, *(spatial_sizes(s, len(channels))[-1] for s in spatial))
        self.features = math.prod(self.out_shape)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class ConvDecoderNet(nn.Module):
    """(N, features) → (N, *output_shape) unbounded outputs: a linear layer then transposed
    convs that mirror ConvEncoderNet(output_shape, channels); with batch_norm, batch
    normalisation before every activation (DCGAN's generator)."""

    def __init__(
        self, in_features: int, output_shape: Sequence[int], channels: Sequence[int], batch_norm: bool = False
    ) -> None:
        super().__init__()
        _conv_layers(output_shape)
        self.start_shape = (channels[-1], *(spatial_sizes(s, len(channels))[-1] for s in output_shape[1:]))
        features = math.prod(self.start_shape)
        norm = [nn.BatchNorm1d(features)] if batch_norm else []
        self.linear = nn.Sequential(nn.Linear(in_features, features), *norm, nn.SiLU())
        self.net = upsampling_net(output_shape, channels, batch_norm)

    def forward(self, h: Tensor) -> Tensor:
        return self.net(self.linear(h).view(-1, *self.start_shape))


class MLPEncoderNet(nn.Module):
    """(N, D) → (N, channels[-1]): fully connected layers of widths `channels`, SiLU after each."""

    def __init__(self, input_shape: Sequence[int], channels: Sequence[int]) -> None:
        super().__init__()
        if len(input_shape) != 1:
            raise InvalidInputError(f"MLP nets need vector (D) inputs, got {list(input_shape)}")
        widths = [input_shape[0], *channels]
        layers: list[nn.Module] = []
        for a, b in zip(widths, widths[1:], strict=False):
            layers += [nn.Linear(a, b), nn.SiLU()]
        self.net = nn.Sequential(*layers)
        self.features = widths[-1]

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class MLPDecoderNet(nn.Module):
    """(N, features) → (N, D) unbounded outputs: layers of widths reversed(`channels`), mirroring
    MLPEncoderNet(output_shape, channels), then a linear output layer."""

    def __init__(self, in_features: int, output_shape: Sequence[int], channels: Sequence[int]) -> None:
        super().__init__()
        if len(output_shape) != 1:
            raise InvalidInputError(f"MLP nets need vector (D) outputs, got {list(output_shape)}")
        widths = [in_features, *reversed(channels)]
        layers: list[nn.Module] = []
        for a, b in zip(widths, widths[1:], strict=False):
            layers += [nn.Linear(a, b), nn.SiLU()]
        self.net = nn.Sequential(*layers, nn.Linear(widths[-1], output_shape[0]))

    def forward(self, h: Tensor) -> Tensor:
        return self.net(h)


def encoder_net(input_shape: Sequence[int], channels: Sequence[int]) -> ConvEncoderNet | MLPEncoderNet:
    """The flattening trunk for this input shape: an MLP for vectors, convolutions otherwise."""
    if data_kind(input_shape) == "vector":
        return MLPEncoderNet(input_shape, channels)
    return ConvEncoderNet(input_shape, channels)


def decoder_net(
    in_features: int, output_shape: Sequence[int], channels: Sequence[int]
) -> ConvDecoderNet | MLPDecoderNet:
    """The mirror of encoder_net(output_shape, channels)."""
    if data_kind(output_shape) == "vector":
        return MLPDecoderNet(in_features, output_shape, channels)
    return ConvDecoderNet(in_features, output_shape, channels)


def hidden_layer(features: int, width: int) -> nn.Module:
    """A fully connected layer between a trunk and a code; none when width is 0."""
    if width == 0:
        return nn.Identity()
    return nn.Sequential(nn.Linear(features, width), nn.SiLU())


def upsampling_net(output_shape: Sequence[int], channels: Sequence[int], batch_norm: bool = False) -> nn.Sequential:
    """(N, channels[-1], *spatial_L) → (N, *output_shape) unbounded outputs: transposed convs
    that mirror ConvEncoderNet(output_shape, channels), SiLU between them (after batch
    normalisation with batch_norm)."""
    _, transposed = _conv_layers(output_shape)
    norm = nn.BatchNorm2d if len(output_shape) == 3 else nn.BatchNorm1d
    c_out, *spatial = output_shape
    sizes = [spatial_sizes(s, len(channels)) for s in spatial]
    widths = list(reversed(channels))
    layers: list[nn.Module] = []
    for level, c_in in enumerate(widths):
        target = len(channels) - level - 1
        last = target == 0
        pad = tuple(s[target] - 2 * s[target + 1] for s in sizes)
        out = c_out if last else widths[level + 1]
        layers.append(transposed(c_in, out, 4, 2, 1, output_padding=pad))
        if not last:
            layers += [norm(out), nn.SiLU()] if batch_norm else [nn.SiLU()]
    return nn.Sequential(*layers)

"""Convolutions computed as window gathers and matrix multiplies: the `train.matmul_conv`
speed option.

The convolutions of zoo's image models are small (tens to hundreds of channels, 3×3 to
28×28 pixels). On a CPU, oneDNN's kernels run them far below the machine's matmul rate,
above all their backward passes and in bfloat16, where AMX makes a matmul several times
faster than in float32. Here a convolution and each of its two gradients is one gather
of k×k windows into the rows of a matrix (a strided copy, never a scatter-add) and one
matmul. The trick for the input gradient: the adjoint of a stride-s convolution is a
stride-1 convolution of the output gradient over s×s space-to-depth blocks, with the
kernel flipped. A transposed convolution is that adjoint, so it reuses the same pieces.

Swapping a layer changes its class, not its parameters: the state dict, the weights file
and the function computed stay the same, up to floating-point rounding. The swapped layers
compute this way under autocast (bf16, fp16) only: in float32, where a CPU has no faster
matmul units to gain from, oneDNN's kernels are the faster ones.

Which layers are swapped depends on the CPU (`_faster_here`), as measured on the default vae
recipe's nets: with AMX every layer with two or more channels in and out gains; without it
(AVX-512 bf16 only) the transposed convolutions gain and oneDNN's convolutions stay faster.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _pad(t: torch.Tensor, top: int, bottom: int, left: int, right: int) -> torch.Tensor:
    """Zero-pad (or, with negative amounts, crop) the H and W of an NHWC tensor."""
    return F.pad(t, (0, 0, left, right, top, bottom))


def _windows(t: torch.Tensor, out_h: int, out_w: int, k: int, step: int) -> torch.Tensor:
    """The k×k windows of NHWC `t`, `step` apart, as rows laid out (kh, kw, channel)."""
    n, _, _, c = t.shape
    sn, sh, sw, sc = t.stride()
    windows = t.as_strided((n, out_h, out_w, k, k, c), (sn, step * sh, step * sw, sh, sw, sc))
    return windows.reshape(n * out_h * out_w, k * k * c)


def _conv_rows(x: torch.Tensor, k: int, s: int, p: int) -> torch.Tensor:
    """The windows a k×k, stride-s, padding-p convolution of NHWC x (N, H, W, C) reads."""
    _, h, w, _ = x.shape
    out_h, out_w = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    padded = _pad(x, p, s * (out_h - 1) + k - h - p, p, s * (out_w - 1) + k - w - p)
    return _windows(padded, out_h, out_w, k, s)


def _conv(
    x: torch.Tensor, rows: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, s: int, p: int
) -> torch.Tensor:
    """NHWC x (N, H, W, C), whose windows are `rows`, convolved with weight (O, C, k, k)."""
    n, h, w, c = x.shape
    o, _, k, _ = weight.shape
    matrix = weight.permute(2, 3, 1, 0).reshape(k * k * c, o)
    out = rows @ matrix if bias is None else torch.addmm(bias, rows, matrix)
    return out.view(n, (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1, o)


def _conv_adjoint(g: torch.Tensor, weight: torch.Tensor, s: int, p: int, h: int, w: int) -> torch.Tensor:
    """The gradient of `_conv` with respect to its (N, h, w, C) input, given the output's
    gradient g (N, Ho, Wo, O); also a transposed convolution of g."""
    n, out_h, out_w, o = g.shape
    _, c, k, _ = weight.shape
    q = k // s  # kernel taps per space-to-depth block, along each axis
    blocks_h, blocks_w = out_h + q - 1, out_w + q - 1
    rows = _windows(_pad(g, q - 1, q - 1, q - 1, q - 1), blocks_h, blocks_w, q, 1)
    # the kernel flipped: its q×q taps' blocks in reverse order (flipping the 6-d view itself
    # is a copy 8-10× slower, for a weight not in channels_last)
    taps = weight.view(o, c, q, s, q, s).permute(2, 4, 0, 3, 5, 1).reshape(q * q, o * s * s * c)
    flipped = taps.flip(0).reshape(q * q * o, s * s * c)
    blocks = (rows @ flipped).view(n, blocks_h, blocks_w, s, s, c)
    padded = blocks.permute(0, 1, 3, 2, 4, 5).reshape(n, blocks_h * s, blocks_w * s, c)
    short_h, short_w = h + p - blocks_h * s, w + p - blocks_w * s  # > 0: rows no window reaches
    if short_h > 0 or short_w > 0:
        padded = _pad(padded, 0, max(short_h, 0), 0, max(short_w, 0))
    return padded[:, p : p + h, p : p + w]


def _weight_grad(rows: torch.Tensor, g: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    o, c, k, _ = shape
    return (g.reshape(-1, o).t() @ rows).view(o, k, k, c).permute(0, 3, 1, 2)


def _gradients(ctx, g: torch.Tensor, input_grad, weight_grad) -> tuple[torch.Tensor | None, ...]:
    """What autograd asks of a backward pass over (x, weight, bias, *geometry): each of the
    three gradients only where needed, None for the geometry arguments."""
    need_x, need_weight, need_bias = ctx.needs_input_grad[:3]
    geometry = (None,) * (len(ctx.needs_input_grad) - 3)
    bias_grad = g.reshape(-1, g.shape[-1]).sum(0) if need_bias else None
    return (input_grad() if need_x else None, weight_grad() if need_weight else None, bias_grad, *geometry)


class _Conv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, s, p):
        rows = _conv_rows(x, weight.shape[-1], s, p)
        ctx.save_for_backward(rows, weight)
        ctx.geometry = (s, p, x.shape[1], x.shape[2])
        return _conv(x, rows, weight, bias, s, p)

    @staticmethod
    def backward(ctx, g):
        rows, weight = ctx.saved_tensors
        s, p, h, w = ctx.geometry
        g = g.contiguous()
        return _gradients(
            ctx, g, lambda: _conv_adjoint(g, weight, s, p, h, w), lambda: _weight_grad(rows, g, weight.shape)
        )


class _ConvTranspose(torch.autograd.Function):
    """weight (C_in, C_out, k, k) is that of the convolution whose adjoint this is."""

    @staticmethod
    def forward(ctx, x, weight, bias, s, p, h, w):
        ctx.save_for_backward(x, weight)
        ctx.geometry = (s, p)
        out = _conv_adjoint(x, weight, s, p, h, w)
        return out if bias is None else out + bias

    @staticmethod
    def backward(ctx, g):
        x, weight = ctx.saved_tensors
        s, p = ctx.geometry
        g = g.contiguous()
        rows = _conv_rows(g, weight.shape[-1], s, p)
        return _gradients(
            ctx, g, lambda: _conv(g, rows, weight, None, s, p), lambda: _weight_grad(rows, x, weight.shape)
        )


def conv2d(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, stride: int = 1, padding: int = 0
) -> torch.Tensor:
    """`F.conv2d` (groups 1, dilation 1, square kernel a multiple of the stride) as gathers
    and matmuls, in the inputs' dtype; NCHW in and out (the output channels-last in memory)."""
    nhwc = x.permute(0, 2, 3, 1).contiguous()
    return _Conv.apply(nhwc, weight, bias, stride, padding).permute(0, 3, 1, 2)


def conv_transpose2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int = 1,
    padding: int = 0,
    output_padding: int = 0,
) -> torch.Tensor:
    """`F.conv_transpose2d` under the same conditions, likewise."""
    k = weight.shape[-1]
    h, w = ((size - 1) * stride - 2 * padding + k + output_padding for size in x.shape[2:])
    nhwc = x.permute(0, 2, 3, 1).contiguous()
    return _ConvTranspose.apply(nhwc, weight, bias, stride, padding, h, w).permute(0, 3, 1, 2)


def _in_autocast_dtype(function, module: nn.Conv2d | nn.ConvTranspose2d, x: torch.Tensor, *geometry: int):
    """`function` on x and the module's parameters cast as autocast would cast them."""
    device = x.device.type
    dtype = torch.get_autocast_dtype(device)
    bias = None if module.bias is None else module.bias.to(dtype)
    with torch.autocast(device, enabled=False):
        return function(x.to(dtype), module.weight.to(dtype), bias, *geometry)


class MatmulConv2d(nn.Conv2d):
    """An `nn.Conv2d` that, under autocast, is computed by `conv2d`. In float32 torch's own
    kernels are faster, so they run."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.is_autocast_enabled(x.device.type):
            return super().forward(x)
        return _in_autocast_dtype(conv2d, self, x, self.stride[0], self.padding[0])


class MatmulConvTranspose2d(nn.ConvTranspose2d):
    """An `nn.ConvTranspose2d` that, under autocast, is computed by `conv_transpose2d`."""

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        if output_size is not None or not torch.is_autocast_enabled(x.device.type):
            return super().forward(x, output_size)
        return _in_autocast_dtype(conv_transpose2d, self, x, self.stride[0], self.padding[0], self.output_padding[0])


_SWAPS = {nn.Conv2d: MatmulConv2d, nn.ConvTranspose2d: MatmulConvTranspose2d}


def supported(module: nn.Module) -> bool:
    """Whether `module` is a convolution this module can compute."""
    if type(module) not in _SWAPS or isinstance(module.padding, str):
        return False
    (k, kw), (s, sw), (p, pw) = module.kernel_size, module.stride, module.padding
    extra_h, extra_w = getattr(module, "output_padding", (0, 0))  # transposed convolutions only
    return (
        (k, s, p, extra_h) == (kw, sw, pw, extra_w)
        and k % s == 0
        and p < k
        and module.groups == 1
        and module.dilation == (1, 1)
        and module.padding_mode == "zeros"
    )


def _faster_here(module: nn.Conv2d | nn.ConvTranspose2d, amx: bool) -> bool:
    """Whether the matmul form beat oneDNN for such a layer on a CPU with (`amx`) or without
    AMX tiles. With AMX, every layer but those with a single input or output channel, where
    the matmul is too thin. Without, the transposed convolutions only, one-channel ones
    included: oneDNN's are slow there, its convolutions are not (README, Performance)."""
    if amx:
        return min(module.in_channels, module.out_channels) > 1
    return isinstance(module, nn.ConvTranspose2d)


def use_matmul_convolutions(model: nn.Module, amx: bool | None = None) -> int:
    """Switch every supported convolution of `model` that the matmul form computes faster on
    a CPU with or without AMX (`amx`; by default, this machine's answer) to that form, in
    place; returns how many were switched."""
    amx = torch.cpu._is_amx_tile_supported() if amx is None else amx
    switched = 0
    for module in model.modules():
        if supported(module) and _faster_here(module, amx):
            module.__class__ = _SWAPS[type(module)]
            switched += 1
    return switched

import copy
import itertools

import pytest
import torch
from torch import nn

import zoo
from tests.conftest import TINY
from tests.core.test_trainer import NanAfter, eval_records, weights
from zoo.errors import InvalidInputError
from zoo.matmul_conv import (
    MatmulConv2d,
    MatmulConvTranspose2d,
    conv2d,
    conv_transpose2d,
    supported,
    use_matmul_convolutions,
)
from zoo.registry import families


def layers(kind, k, s):
    """Every layer of this kernel and stride over paddings, output paddings and channel counts."""
    for p, c_in, c_out in itertools.product(range(k), (2, 3), (2, 5)):
        if kind == "conv":
            yield nn.Conv2d(c_in, c_out, k, s, p)
        else:
            yield from (nn.ConvTranspose2d(c_in, c_out, k, s, p, output_padding=e) for e in range(s))


def output_and_grads(function, x, layer, g):
    y = function(x, layer)
    return [y, *torch.autograd.grad(y, [x, layer.weight, layer.bias], g)]


def torch_layer(x, layer):
    return layer(x)


def matmul_layer(x, layer):
    if isinstance(layer, nn.ConvTranspose2d):
        return conv_transpose2d(x, layer.weight, layer.bias, layer.stride[0], layer.padding[0], layer.output_padding[0])
    return conv2d(x, layer.weight, layer.bias, layer.stride[0], layer.padding[0])


@pytest.mark.parametrize("kind", ["conv", "transposed"])
@pytest.mark.parametrize(("k", "s"), [(1, 1), (3, 1), (2, 2), (4, 2), (4, 4)])
def test_matmul_convolutions_compute_torch_outputs_and_all_three_gradients(kind, k, s):
    torch.manual_seed(0)
    checked = 0
    for layer in layers(kind, k, s):
        layer = layer.double()
        for size in (5, 6, 7, 9):
            x = torch.randn(2, layer.in_channels, size, size, dtype=torch.double, requires_grad=True)
            if kind == "conv" and size + 2 * layer.padding[0] < k:
                continue
            expected_y = layer(x)
            if expected_y.shape[-1] < 1:
                continue
            g = torch.randn_like(expected_y)
            expected, got = output_and_grads(torch_layer, x, layer, g), output_and_grads(matmul_layer, x, layer, g)
            for a, b in zip(expected, got, strict=True):
                assert a.shape == b.shape
                assert (a - b).abs().max().item() < 1e-10
            checked += 1
    assert checked >= 16


def test_swapped_layers_compute_with_matmuls_under_autocast_and_with_torch_in_float32():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(8, 32, 4, 2, 1), nn.SiLU(), nn.ConvTranspose2d(32, 8, 4, 2, 1))
    swapped = copy.deepcopy(net)
    assert use_matmul_convolutions(swapped, amx=True) == 2
    x = torch.randn(16, 8, 14, 14)
    assert torch.equal(net(x), swapped(x))  # float32: torch's kernels themselves
    with torch.autocast("cpu", dtype=torch.bfloat16):
        a, b = net(x), swapped(x)
        by_hand = matmul_layer(
            torch.nn.functional.silu(matmul_layer(x.bfloat16(), net[0].bfloat16())), net[2].bfloat16()
        )
    assert a.dtype == b.dtype == torch.bfloat16
    assert torch.equal(b, by_hand)
    assert ((a.float() - b.float()).norm() / a.float().norm()).item() < 1e-2
    b.float().square().mean().backward()
    assert all(p.grad.dtype == torch.float32 and torch.isfinite(p.grad).all() for p in swapped.parameters())


@pytest.mark.parametrize(
    ("amx", "switched"),
    [
        (True, [5, 6]),  # every supported layer but those with one channel in or out
        (False, [6, 7]),  # the transposed convolutions only, one-channel ones included
        (None, [5, 6] if torch.cpu._is_amx_tile_supported() else [6, 7]),  # this machine's kind
    ],
)
def test_only_supported_layers_faster_on_the_cpu_are_switched_and_the_state_dict_is_unchanged(amx, switched):
    net = nn.Sequential(
        nn.Conv2d(1, 8, 4, 2, 1),  # one input channel
        nn.Conv2d(8, 8, 3, 2, 1),  # kernel not a multiple of the stride
        nn.Conv2d(8, 8, 3, 1, 1, groups=2),
        nn.Conv2d(8, 8, 3, 1, 2, dilation=2),
        nn.Conv2d(8, 8, 3, 1, 1, padding_mode="reflect"),
        nn.Conv2d(8, 16, 4, 2, 1),
        nn.ConvTranspose2d(16, 8, 4, 2, 1),
        nn.ConvTranspose2d(8, 1, 4, 2, 1),  # one output channel
    )
    assert [i for i, m in enumerate(net) if supported(m)] == [0, 5, 6, 7]
    before = {k: v.clone() for k, v in net.state_dict().items()}
    assert use_matmul_convolutions(net, amx) == len(switched)
    assert [i for i, m in enumerate(net) if type(m) in (MatmulConv2d, MatmulConvTranspose2d)] == switched
    after = net.state_dict()
    assert after.keys() == before.keys() and all(torch.equal(before[k], after[k]) for k in before)


def test_training_with_matmul_convolutions_and_fused_adam_learns_the_same_model(tmp_path):
    bf16 = [*TINY, "train.precision=bf16"]
    plain = zoo.train("vae", overrides=bf16, out=str(tmp_path / "plain"))
    fast = zoo.train(
        "vae", overrides=[*bf16, "train.matmul_conv=true", "train.optimizer.fused=true"], out=str(tmp_path / "fast")
    )
    assert fast.metrics["nelbo"] == pytest.approx(plain.metrics["nelbo"], rel=1e-3)
    assert [r["nelbo"] for r in eval_records(fast.path)] == pytest.approx(
        [r["nelbo"] for r in eval_records(plain.path)], rel=1e-3
    )
    assert eval_records(fast.path)[-1]["nelbo"] < eval_records(fast.path)[0]["nelbo"]
    a, b = weights(plain.path), weights(fast.path)
    assert a.keys() == b.keys()
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-3
    assert type(zoo.load(fast.path).encoder.trunk.net[2]) is nn.Conv2d  # a loaded model computes as torch does


class OneChannelConv(zoo.Family):
    """A single convolution from one input channel, driven to output zero."""

    name = "one-channel-conv"
    config_class = zoo.FamilyConfig

    def __init__(self, config):
        super().__init__(config)
        self.conv = nn.Conv2d(config.input_shape[0], 4, 4, 2, 1)

    def loss(self, batch):
        energy = self.conv(batch.x).float().square().mean()
        return zoo.LossOutput(energy, {"energy": energy.detach()})


def test_matmul_conv_trains_a_model_whose_convolutions_are_all_left_to_onednn_on_this_cpu(tmp_path):
    """One input channel: oneDNN's kernel on a CPU with AMX, a convolution on one without."""
    zoo.register(OneChannelConv)
    try:
        overrides = ["data=digits", "train.epochs=4", "train.matmul_conv=true", "train.precision=bf16"]
        run = zoo.train("one-channel-conv", overrides=overrides, out=str(tmp_path))
        held_out = [r["energy"] for r in eval_records(run.path)]
        assert held_out[-1] < 0.8 * held_out[0]  # 0.024 after the first epoch, 0.017 after the fourth
    finally:
        families.unregister("one-channel-conv")


def test_matmul_conv_on_a_model_without_convolutions_is_refused_before_a_run_folder_exists(tmp_path):
    zoo.register(NanAfter)
    try:
        with pytest.raises(InvalidInputError, match="train.matmul_conv: the model has no convolution it applies to"):
            overrides = ["data=digits", "train.matmul_conv=true", "train.precision=bf16"]
            zoo.train("nan-after", overrides=overrides, out=str(tmp_path))
        assert not any(tmp_path.iterdir())
    finally:
        families.unregister("nan-after")


def test_fused_is_refused_for_an_optimizer_without_it(tmp_path):
    with pytest.raises(InvalidInputError, match="optimizer 'lamb': .*unexpected keyword argument 'fused'"):
        overrides = [*TINY, "train.optimizer.name=lamb", "train.optimizer.fused=true"]
        zoo.train("vae", overrides=overrides, out=str(tmp_path))


def test_matmul_conv_in_float32_is_refused_with_what_to_set(tmp_path):
    with pytest.raises(InvalidInputError, match="train.matmul_conv speeds up bf16 and fp16 training only, and train"):
        zoo.train("vae", overrides=[*TINY, "train.matmul_conv=true"], out=str(tmp_path))

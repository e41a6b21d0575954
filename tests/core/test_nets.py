"""Parts follow the input shape: MLPs for vectors, 1-D convolutions for signals, 2-D for
images; decoders give back exactly the input shape, and the likelihood follows the data."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import zoo
from zoo.errors import InvalidInputError
from zoo.nets import data_kind, decoder_net, encoder_net
from zoo.parts import BernoulliDecoder, GaussianDecoder


@pytest.mark.parametrize(
    ("shape", "layer"),
    [((30,), nn.Linear), ((1, 64), nn.Conv1d), ((3, 37), nn.Conv1d), ((2, 7), nn.Conv1d), ((1, 28, 28), nn.Conv2d)],
)
def test_trunks_mirror_each_other_at_any_size(shape, layer):
    encoder, decoder = encoder_net(shape, (8, 16)), decoder_net(5, shape, (8, 16))
    assert any(isinstance(m, layer) for m in encoder.modules())
    x = torch.randn(4, *shape)
    assert encoder(x).shape == (4, encoder.features)
    assert decoder(torch.randn(4, 5)).shape == (4, *shape)


def test_data_kinds_and_unsupported_shapes():
    assert [data_kind(s) for s in [(5,), (2, 9), (1, 8, 8)]] == ["vector", "signal", "image"]
    with pytest.raises(InvalidInputError, match="vectors \\(D\\), 1-D signals \\(C, L\\) or images"):
        zoo.create("vae", input_shape=(1, 2, 8, 8))


def test_likelihood_auto_is_bernoulli_for_images_and_gaussian_otherwise():
    image = zoo.create("vae", input_shape=(1, 8, 8), channels=(4,), hidden_dim=0)
    vector = zoo.create("vae", input_shape=(6,), channels=(4,), hidden_dim=0)
    forced = zoo.create("vae", input_shape=(6,), channels=(4,), hidden_dim=0, likelihood="bernoulli")
    assert isinstance(image.decoder, BernoulliDecoder) and isinstance(forced.decoder, BernoulliDecoder)
    assert isinstance(vector.decoder, GaussianDecoder)
    # σ starts at 1, so the untrained −log p(x|z) of x = mean is D·log √(2π) nats.
    z = torch.zeros(1, vector.config.latent_dim)
    likelihood = vector.decoder(z)
    assert likelihood.log_prob(likelihood.mean).item() == pytest.approx(
        -6 * 0.5 * torch.log(torch.tensor(2 * torch.pi)).item(), rel=1e-5
    )


def test_gaussian_scale_has_a_floor():
    decoder = GaussianDecoder(2, (3,), (4,))
    with torch.no_grad():
        decoder.raw_scale.fill_(-100.0)
    assert torch.allclose(decoder.scale(), torch.full((3,), 1e-2))


@pytest.mark.parametrize("family", ["vqvae", "gan"])
def test_image_only_families_refuse_vectors_with_one_line(family):
    with pytest.raises(InvalidInputError, match=f"family '{family}' takes images \\(C, H, W\\), not shape \\[30\\]"):
        zoo.create(family, input_shape=(30,))

"""The uses of a family (sample, reconstruct, encode, decode, nll) from Python: data they
cannot take and uses a family lacks are refused with one clear line, not with an error
from deep inside torch."""

import pytest
import torch

import zoo
from zoo.errors import InvalidInputError, UnsupportedError

SHAPE = (1, 8, 8)


@pytest.fixture(scope="module")
def vae():
    torch.manual_seed(0)
    return zoo.create("vae", input_shape=SHAPE, latent_dim=4, channels=(8,), hidden_dim=16).eval()


@pytest.mark.parametrize(
    ("family", "use", "message"),
    [
        ("gan", "encode", "family 'gan' has no encode(); of the uses, it has sample, decode"),
        ("gan", "reconstruct", "family 'gan' has no reconstruct(); of the uses, it has sample, decode"),
        ("ae", "nll", "family 'ae' has no nll(); of the uses, it has sample, reconstruct, encode, decode"),
    ],
)
def test_a_use_the_family_lacks_is_refused_by_name(family, use, message):
    model = zoo.create(family, input_shape=SHAPE, latent_dim=4)
    with pytest.raises(UnsupportedError) as err:
        getattr(model, use)(torch.rand(2, *SHAPE))
    assert str(err.value) == message
    assert isinstance(err.value, NotImplementedError)  # what Python code catches for a missing method


@pytest.mark.parametrize(
    ("x", "message"),
    [
        (torch.rand(2, 1, 28, 28), "vae.encode takes a batch of shape (N, 1, 8, 8), got [2, 1, 28, 28]"),
        (torch.rand(2, 3, 8, 8), "vae.encode takes a batch of shape (N, 1, 8, 8), got [2, 3, 8, 8]"),
        (torch.rand(1, 8, 8), "vae.encode takes a batch of shape (N, 1, 8, 8), got [1, 8, 8]"),
        ([[0.5]], "vae.encode takes a tensor of shape (N, 1, 8, 8), got list"),
        (
            torch.zeros(2, *SHAPE, dtype=torch.uint8),
            "vae.encode takes floating-point data (images in [0, 1]), got torch.uint8",
        ),
        (
            torch.rand(2, *SHAPE).double(),
            "vae.encode takes torch.float32 data, as the model's weights are, got torch.float64",
        ),
        (torch.rand(2, *SHAPE, device="meta"), "vae.encode takes data on cpu, where the model is, got meta"),
    ],
)
def test_data_the_model_cannot_take_is_refused_in_one_line(vae, x, message):
    with pytest.raises(InvalidInputError) as err:
        vae.encode(x)
    assert str(err.value) == message


def test_every_use_that_takes_data_checks_it(vae):
    wrong = torch.rand(2, 1, 28, 28)
    for use in ("reconstruct", "encode", "nll"):
        with pytest.raises(InvalidInputError, match=rf"^vae\.{use} takes a batch of shape \(N, 1, 8, 8\)"):
            getattr(vae, use)(wrong)


def test_checked_uses_still_work_in_float32_under_autocast_and_without_gradients(vae):
    x = torch.rand(3, *SHAPE, requires_grad=True)
    codes = vae.encode(x)
    assert codes.shape == (3, 4) and not codes.requires_grad  # uses run under torch.no_grad
    assert vae.reconstruct(x).shape == (3, *SHAPE)
    assert vae.nll(x, k=4).per_example.shape == (3,)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # float32 data into float32 weights under autocast
        assert vae.encode(x).dtype == torch.bfloat16
    assert zoo.create("vae", input_shape=SHAPE, latent_dim=4).double().encode(x.double()).dtype == torch.float64
    assert vae.encode.__name__ == "encode" and "posterior means" in vae.encode.__doc__


@pytest.mark.parametrize(
    ("family", "z", "message"),
    [
        ("vae", torch.randn(2, 5), "vae.decode takes floating codes of shape (N, 4), got torch.float32 [2, 5]"),
        (
            "vae",
            torch.zeros(2, 4, dtype=torch.long),
            "vae.decode takes floating codes of shape (N, 4), got torch.int64 [2, 4]",
        ),
        ("gan", torch.randn(4), "gan.decode takes floating codes of shape (N, 4), got torch.float32 [4]"),
        (
            "vqvae",
            torch.zeros(1, 2, 2, dtype=torch.long),
            "vqvae.decode takes int64 code grids of shape (N, 4, 4), got torch.int64 [1, 2, 2]",
        ),
        (
            "vqvae",
            torch.rand(1, 4, 4),
            "vqvae.decode takes int64 code grids of shape (N, 4, 4), got torch.float32 [1, 4, 4]",
        ),
        ("vqvae", torch.full((1, 4, 4), 128), "vqvae.decode takes codebook indices in 0..127"),
        ("vqvae", torch.full((1, 4, 4), -1), "vqvae.decode takes codebook indices in 0..127"),
    ],
)
def test_codes_a_decoder_cannot_take_are_refused_in_one_line(family, z, message):
    settings = {"channels": (8,)} if family == "vqvae" else {"latent_dim": 4}
    model = zoo.create(family, input_shape=SHAPE, **settings)
    with pytest.raises(InvalidInputError) as err:
        model.decode(z)
    assert str(err.value) == message


def test_sample_of_an_unconditional_family_refuses_keywords_it_does_not_take(vae):
    """A misspelt `generator=` used to be swallowed, and the draw was not seeded."""
    with pytest.raises(TypeError, match="generater"):
        vae.sample(2, generater=torch.Generator().manual_seed(0))
    with pytest.raises(TypeError, match="label"):
        vae.sample(2, label=3)
    one, again = (vae.sample(2, generator=torch.Generator().manual_seed(0)) for _ in range(2))
    assert torch.equal(one, again)


def test_a_family_without_a_loss_says_so_in_one_line():
    class Lossless(zoo.Family):
        name = "lossless"

    model = Lossless(zoo.FamilyConfig(input_shape=SHAPE))
    with pytest.raises(
        UnsupportedError, match=r"^family 'lossless' \(Lossless\) defines no loss\(batch\), so it cannot train$"
    ):
        model.loss(zoo.Batch(torch.rand(2, *SHAPE)))

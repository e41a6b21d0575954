"""The VAE on non-image data: the built-in breast-cancer vectors (MLP parts) and 1-D signals
that the test writes (1-D conv parts), both with a Gaussian likelihood, so the held-out
−ELBO is in nats and is compared with the best model that ignores all structure: an
independent Gaussian per input value fitted to the training split."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import zoo
import zoo.testing
from zoo import modelfile
from zoo.trainer import evaluate

#: Held-out −ELBO (nats per example) the default breast-cancer recipe must beat; an
#: independent Gaussian per feature scores ≈ 39.8 and the untrained model ≈ 45.
VECTOR_NELBO = 25.0
#: Held-out −ELBO the signal VAE must beat; an independent Gaussian per value scores ≈ +139
#: (128 values, variance ≈ 0.5 each), the untrained model ≈ +151, the noise floor is ≈ −113
#: (σ = 0.1 per value). 280 steps reach ≈ −11.
SIGNAL_NELBO = 0.0
SIGNAL_OVERRIDES = [
    "model.channels=[16, 32]",
    "model.hidden_dim=64",
    "model.latent_dim=4",
    "train.epochs=20",
    "train.batch_size=32",
    "train.optimizer.lr=1e-2",
    "train.sample_grid=8",
]


def diagonal_gaussian_nll(splits: zoo.Splits) -> float:
    """−log p(test) under independent Gaussians per input value fitted to the training split."""
    train, test = splits.train.x.flatten(1).double(), splits.test.x.flatten(1).double()
    normal = torch.distributions.Normal(train.mean(0), train.std(0))
    return -normal.log_prob(test).sum(1).mean().item()


def untrained_nelbo(run: zoo.Run, splits: zoo.Splits) -> float:
    torch.manual_seed(0)
    model = type(run.model)(run.model.config)
    return evaluate(model, splits.test, 500, 0)["nelbo"]


def write_sinusoids(path, n: int = 600, length: int = 64, noise: float = 0.1, seed: int = 0) -> None:
    """Two-channel (sin, cos) waves of 1, 2 or 4 cycles (the class) at random phases, plus noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, size=n)
    phase = rng.uniform(0, 2 * np.pi, size=(n, 1))
    t = np.linspace(0, 2 * np.pi, length, endpoint=False)[None]
    angle = np.array([1, 2, 4])[y][:, None] * t + phase
    x = np.stack([np.sin(angle), np.cos(angle)], axis=1) + noise * rng.normal(size=(n, 2, length))
    np.savez(path, x=x.astype(np.float32), y=y)


@pytest.fixture(scope="module")
def vector_run(tmp_path_factory) -> zoo.Run:
    return zoo.train("vae", "breast-cancer", out=str(tmp_path_factory.mktemp("runs")))


@pytest.fixture(scope="module")
def signal_data(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("signals") / "waves.npz"
    write_sinusoids(path)
    return f"npz:{path}"


@pytest.fixture(scope="module")
def signal_run(tmp_path_factory, signal_data) -> zoo.Run:
    return zoo.train(
        "vae", "breast-cancer", data=signal_data, overrides=SIGNAL_OVERRIDES, out=str(tmp_path_factory.mktemp("runs"))
    )


def test_vae_learns_the_breast_cancer_vectors_with_mlp_parts(vector_run):
    splits = zoo.load_dataset("breast-cancer")
    model = vector_run.model
    assert model.config.input_shape == (30,) and model.config.resolved_likelihood == "gaussian"
    assert not any(isinstance(m, (nn.Conv1d, nn.Conv2d)) for m in model.modules())
    baseline, untrained = diagonal_gaussian_nll(splits), untrained_nelbo(vector_run, splits)
    nelbo = vector_run.metrics["nelbo"]
    print(f"breast-cancer held-out -ELBO {nelbo:.2f} nats; diagonal Gaussian {baseline:.2f}, untrained {untrained:.2f}")
    assert untrained > baseline > VECTOR_NELBO
    assert nelbo < VECTOR_NELBO
    # The importance-sampled bound agrees: −log p(x) ≤ −ELBO, and far below the baseline.
    nll = zoo.importance_sampled_nll(model.encoder, model.prior, model.decoder, splits.test.x, k=200)
    assert nll.mean < nelbo + 0.5 and nll.mean < VECTOR_NELBO


def test_vae_learns_1d_signals_with_1d_convolutions(signal_run, signal_data):
    splits = zoo.load_dataset(signal_data)
    model = signal_run.model
    assert model.config.input_shape == (2, 64)
    assert any(isinstance(m, nn.Conv1d) for m in model.modules())
    baseline, untrained = diagonal_gaussian_nll(splits), untrained_nelbo(signal_run, splits)
    nelbo = signal_run.metrics["nelbo"]
    print(f"sinusoids held-out -ELBO {nelbo:.2f} nats; diagonal Gaussian {baseline:.2f}, untrained {untrained:.2f}")
    assert untrained > baseline > SIGNAL_NELBO
    assert nelbo < SIGNAL_NELBO
    samples = sorted((signal_run.path / "samples").glob("epoch-*.npy"))
    assert len(samples) == 20 and np.load(samples[-1]).shape == (8, 2, 64)


def test_zoo_sample_writes_npy_of_the_input_shape(cli, vector_run, tmp_path):
    out = tmp_path / "s.npy"
    result = cli("sample", str(vector_run.path), "-n", "10", "--seed", "3", "-o", str(out))
    assert result.exit_code == 0, result.output
    samples = np.load(out)
    assert samples.shape == (10, 30) and samples.dtype == np.float32 and np.isfinite(samples).all()
    generator = torch.Generator().manual_seed(3)
    assert np.array_equal(samples, vector_run.model.sample(10, generator=generator).numpy())
    # Samples look like the data: standardised features, not all alike.
    assert 0.2 < samples.std(0).mean() < 3
    wrong = cli("sample", str(vector_run.path), "-o", str(tmp_path / "s.png"))
    assert wrong.exit_code == 2 and "must end in .npy" in wrong.output and not (tmp_path / "s.png").exists()


def test_the_default_output_of_a_vector_model_is_samples_npy(cli, vector_run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = cli("sample", str(vector_run.path), "-n", "5")
    assert result.exit_code == 0, result.output
    assert np.load(tmp_path / "samples.npy").shape == (5, 30) and not (tmp_path / "samples.png").exists()


def test_zoo_reconstruct_writes_reconstructions_and_originals(cli, vector_run, tmp_path):
    out = tmp_path / "r.npy"
    result = cli("reconstruct", str(vector_run.path), "-n", "12", "-o", str(out))
    assert result.exit_code == 0, result.output
    reconstructions, originals = np.load(out), np.load(tmp_path / "r-originals.npy")
    assert reconstructions.shape == originals.shape == (12, 30)
    assert np.array_equal(originals, zoo.load_dataset("breast-cancer").test.x[:12].numpy())
    # Reconstructions are much closer to their inputs than the inputs are to the mean.
    assert ((reconstructions - originals) ** 2).mean() < 0.5 * (originals**2).mean()


def test_signal_outputs_come_with_a_line_plot(cli, signal_run, tmp_path):
    result = cli("sample", str(signal_run.path), "-n", "6", "-o", str(tmp_path / "s.npy"))
    assert result.exit_code == 0, result.output
    assert np.load(tmp_path / "s.npy").shape == (6, 2, 64)
    with Image.open(tmp_path / "s.png") as plot:
        assert plot.format == "PNG" and plot.width > 300
    result = cli("reconstruct", str(signal_run.path), "-n", "4", "-o", str(tmp_path / "r.npy"))
    assert result.exit_code == 0, result.output
    assert np.load(tmp_path / "r.npy").shape == np.load(tmp_path / "r-originals.npy").shape == (4, 2, 64)
    assert (tmp_path / "r.png").is_file()


def test_save_load_gives_identical_outputs_for_a_vector_model(vector_run, tmp_path):
    model = vector_run.model
    loaded = zoo.load(modelfile.save(model, tmp_path / "saved"))
    x = zoo.load_dataset("breast-cancer").test.x[:20]
    assert type(loaded) is type(model) and loaded.config == model.config
    assert torch.equal(model.encode(x), loaded.encode(x))
    assert torch.equal(model.reconstruct(x), loaded.reconstruct(x))
    one, other = (m.sample(8, generator=torch.Generator().manual_seed(1)) for m in (model, loaded))
    assert torch.equal(one, other)
    # The learned per-feature scale of the likelihood (it starts at 1) travels too.
    assert torch.equal(loaded.decoder.scale(), model.decoder.scale())
    assert abs(model.decoder.scale().mean().item() - 1.0) > 0.05


def test_the_conformance_kit_passes_on_signals(signal_data):
    overrides = {"channels": [8, 16], "hidden_dim": 32, "latent_dim": 4}
    report = zoo.testing.check_family("vae", overrides, data=signal_data, epochs=2)
    assert report.passed == list(zoo.testing.CHECKS), report


def test_the_model_card_of_a_vector_model_samples_to_npy(vector_run, tmp_path):
    folder = vector_run.model.save_pretrained(tmp_path / "card", repo_id="alice/cancer-vae")
    card = (folder / "README.md").read_text()
    assert "zoo sample alice/cancer-vae -n 64 -o samples.npy" in card and "samples.png" not in card

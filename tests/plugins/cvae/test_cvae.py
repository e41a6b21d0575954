import pytest
import torch

import zoo
from tests.conftest import assert_one_line_error
from zoo.classifier import digit_classifier
from zoo.errors import InvalidInputError


@pytest.fixture
def model():
    torch.manual_seed(0)
    return zoo.create("cvae", latent_dim=4, channels=(8,), hidden_dim=16, num_classes=10)


def test_cvae_is_conditional_and_needs_labels(model):
    assert type(model).conditional and not zoo.family_class("vae").conditional
    x = torch.rand(4, 1, 28, 28)
    with pytest.raises(InvalidInputError, match="labelled data"):
        model.loss(zoo.Batch(x))
    with pytest.raises(InvalidInputError, match="pass the class labels"):
        model.reconstruct(x)
    with pytest.raises(InvalidInputError, match=r"labels must be in 0\.\.9"):
        model.sample(2, label=10)
    with pytest.raises(InvalidInputError, match=r"labels must be in 0\.\.9, got \[99999999999999999999\]"):
        model.sample(2, label=99999999999999999999)  # past int64: refused, not an overflow
    with pytest.raises(InvalidInputError, match="labels must be integer class ids, got torch.float32"):
        model.sample(2, label=torch.tensor([7.9, 0.5]))  # not truncated to 7 and 0
    out = model.loss(zoo.Batch(x, torch.tensor([0, 1, 2, 3])))
    assert out.terms["nelbo"] == pytest.approx(out.terms["rec"] + out.terms["kl"])


def test_the_label_changes_the_decoded_image_and_uniform_labels_are_seeded(model):
    z = torch.randn(3, 4)
    assert not torch.equal(model.decode(z, label=1), model.decode(z, label=2))
    a = model.sample(5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, model.sample(5, generator=torch.Generator().manual_seed(0)))
    assert model.sample(5, label=torch.arange(5)).shape == (5, 1, 28, 28)


def test_trainer_fills_num_classes_from_the_data(short_run):
    assert short_run("cvae").model.config.num_classes == 10


def test_label_k_samples_are_classified_as_k(short_run):
    """The mnist-5k judge labels `label=k` samples of a 2-epoch cvae as k about 55% of the
    time (chance, for a model that ignores the label: 10%; the default recipe: see bench/)."""
    model = short_run("cvae").model
    judge = digit_classifier("mnist-5k")
    generator = torch.Generator().manual_seed(0)
    hits = [(judge(model.sample(50, generator, label=k)).argmax(1) == k).float().mean().item() for k in range(10)]
    assert sum(hits) / 10 >= 0.4, hits


def test_cli_label_draws_the_class_and_is_refused_for_unconditional_families(short_run, cli, tmp_path):
    result = cli("sample", str(short_run("cvae").path), "--label", "7", "-n", "8", "-o", str(tmp_path / "7.png"))
    assert result.exit_code == 0 and "of class 7" in result.output
    refused = cli("sample", str(short_run("vae").path), "--label", "7", "-o", str(tmp_path / "no.png"))
    assert refused.exit_code == 2
    assert_one_line_error(refused.stderr, "not conditional", "--label")
    for label in ("12", "99999999999999999999"):
        out_of_range = cli("sample", str(short_run("cvae").path), "--label", label, "-o", str(tmp_path / "no.png"))
        assert out_of_range.exit_code == 2
        assert_one_line_error(out_of_range.stderr, "0..9", label)


def test_class_ids_past_num_classes_and_bernoulli_data_outside_the_unit_interval_are_refused_once(tmp_path):
    """Checked before training (and scoring), not in each step's loss: on a GPU that check
    would wait for the GPU at every step."""
    import numpy as np

    x = np.random.default_rng(0).random((200, 1, 8, 8)).astype(np.float32)
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(200) % 4)
    data = f"npz:{tmp_path / 'd.npz'}"
    with pytest.raises(InvalidInputError, match=r"has class id 3 in its \w+ split; model.num_classes is 3"):
        zoo.train("cvae", data=data, overrides=["model.num_classes=3"], out=str(tmp_path / "a"))
    np.savez(tmp_path / "w.npz", x=x * 2, y=np.arange(200) % 4)
    with pytest.raises(InvalidInputError, match="model.likelihood is bernoulli"):
        zoo.train("cvae", data=f"npz:{tmp_path / 'w.npz'}", out=str(tmp_path / "b"))
    run = zoo.train("cvae", data=data, epochs=1, overrides=["model.channels=[8]"], out=str(tmp_path / "c"))
    model = zoo.load(run.path)
    model.config.num_classes = 3  # as a model of 3 classes scored on this data
    with pytest.raises(InvalidInputError, match="has class id 3"):
        zoo.evaluate(model, zoo.load_dataset(data), "family")
    from zoo.datasets.splits import Splits, TensorData

    part = TensorData(torch.from_numpy(x[:4]), torch.tensor([0, 1, -1, 2]))  # a plugin dataset's labels
    with pytest.raises(InvalidInputError, match="has class id -1 in its train split"):
        model.check_data(Splits("negative", part, part))

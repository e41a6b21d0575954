import json
import math
import shutil

import pytest
import torch

import zoo
from tests.conftest import assert_one_line_error, run_zoo
from zoo.checkpoint import CHECKPOINT_FILE, load_checkpoint
from zoo.errors import InvalidInputError

#: The default autoencoder at a constant learning rate, a small prior, short stages.
SHORT = [
    "train.epochs=2",
    "stages.prior.epochs=2",
    "train.scheduler.name=none",
    "model.prior_channels=32",
    "model.prior_layers=4",
    "train.sample_grid=16",
]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A finished two-stage vqvae run on mnist-5k; copy it to change it."""
    return zoo.train("vqvae", overrides=SHORT, out=str(tmp_path_factory.mktemp("runs")))


def records(path, event):
    return [r for r in map(json.loads, (path / "metrics.jsonl").read_text().splitlines()) if r["event"] == event]


def test_config_and_shapes():
    model = zoo.create("vqvae", num_codes=16, channels=(8, 16), prior_channels=8, prior_layers=2)
    x = torch.rand(3, 1, 28, 28)
    codes = model.encode(x)
    assert codes.shape == (3, 7, 7) and codes.dtype == torch.long
    assert model.reconstruct(x).shape == x.shape and model.decode(codes).shape == x.shape
    assert model.sample(2).shape == (2, 1, 28, 28)
    assert set(model.capabilities()) == {"sample", "reconstruct", "encode", "decode"}
    assert model.stages == ("main", "prior")
    digits = zoo.create("vqvae", input_shape=(1, 8, 8), channels=(8,), prior_channels=8, prior_layers=2)
    assert digits.encode(torch.rand(2, 1, 8, 8)).shape == (2, 4, 4)
    with pytest.raises(InvalidInputError, match="codebook_decay must be in"):
        zoo.create("vqvae", codebook_decay=1.0)
    with pytest.raises(InvalidInputError, match="top_k must be ≥ 0"):
        zoo.create("vqvae", top_k=-1)


def test_the_main_stage_trains_encoder_and_decoder_the_prior_stage_only_the_prior():
    model = zoo.create("vqvae", num_codes=16, channels=(8, 16), prior_channels=8, prior_layers=2)
    main, prior = set(model.objectives("main")[0].parameters()), set(model.objectives("prior")[0].parameters())
    assert main.isdisjoint(prior)
    assert main | prior == set(model.parameters())
    assert prior == set(model.prior.parameters())


def test_vqvae_learns_mnist_5k_codes_and_a_prior_over_them(run):
    """Held-out: the MSE of the mean training image is 0.067 per pixel; a prior that ignores
    context can do no better than the code frequencies (unigram) of the training codes."""
    main = [r for r in records(run.path, "eval") if r["stage"] == "main"]
    prior = [r for r in records(run.path, "eval") if r["stage"] == "prior"]
    assert [r["epoch"] for r in main] == [1, 2] and [r["epoch"] for r in prior] == [1, 2]
    assert run.metrics["mse"] < 0.02
    assert run.metrics["usage"] >= 0.5 and run.metrics["perplexity"] > 32
    splits = zoo.load_dataset("mnist-5k")
    counts = torch.bincount(run.model.encode(splits.train.x).flatten(), minlength=128).double() + 1
    test_codes = run.model.encode(splits.test.x)
    unigram = -(counts / counts.sum()).log()[test_codes].flatten(1).sum(1).mean().item()
    assert run.metrics["prior_nll"] < unigram - 10
    assert run.metrics["prior_nll"] < 49 * math.log(128)
    # The main stage's weights were frozen in the prior stage: same reconstruction error.
    assert prior[-1]["mse"] == pytest.approx(main[-1]["mse"])


def test_saved_model_loads_with_identical_outputs(run):
    loaded = zoo.load(run.path)
    x = zoo.load_dataset("mnist-5k").test.head(8).x
    assert torch.equal(loaded.encode(x), run.model.encode(x))
    assert torch.equal(loaded.reconstruct(x), run.model.reconstruct(x))
    a = loaded.sample(4, generator=torch.Generator().manual_seed(5))
    b = run.model.sample(4, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)


def test_sample_and_reconstruct_from_the_run_folder(run, cli, tmp_path):
    from PIL import Image

    result = cli("sample", str(run.path), "-n", "9", "-o", str(tmp_path / "s.png"))
    assert result.exit_code == 0 and "wrote 9 samples" in result.output
    result = cli("reconstruct", str(run.path), "-n", "6", "-o", str(tmp_path / "r.png"))
    assert result.exit_code == 0 and "wrote 6 originals" in result.output
    assert Image.open(tmp_path / "s.png").size[0] > 28 and Image.open(tmp_path / "r.png").size[0] > 28


def test_sample_takes_prior_settings_and_refuses_ones_that_change_the_networks(run, cli, tmp_path):
    import numpy as np
    from PIL import Image

    def grid(seed, *settings):
        out = tmp_path / f"seed{seed}-{len(settings)}.png"
        result = cli("sample", str(run.path), "-n", "4", "--seed", str(seed), "-o", str(out), *settings)
        assert result.exit_code == 0, result.output
        return np.asarray(Image.open(out))

    assert not np.array_equal(grid(0), grid(1))
    greedy = ("--set", "model.top_k=1")  # the likeliest code everywhere: the seed no longer matters
    assert np.array_equal(grid(0, *greedy), grid(1, *greedy))
    assert zoo.load(run.path, settings={"top_k": 1}).prior.top_k == 1 and run.model.prior.top_k == 0
    config = (run.path / "config.json").read_bytes()
    out = tmp_path / "refused.png"
    completed = run_zoo("sample", str(run.path), "--set", "model.num_codes=64", "-o", str(out))
    assert completed.returncode == 2
    assert_one_line_error(completed.stderr, "model.num_codes", "change the networks")
    completed = run_zoo("sample", str(run.path), "--set", "train.epochs=3", "-o", str(out))
    assert completed.returncode == 2
    assert_one_line_error(completed.stderr, "model.KEY=VALUE")
    assert (run.path / "config.json").read_bytes() == config and not out.exists()


def test_stage_prior_trains_the_prior_of_an_existing_run_again(run, tmp_path, cli):
    copy = shutil.copytree(run.path, tmp_path / "copy")
    before = zoo.load(copy)
    result = cli("train", "--resume", str(copy), "--stage", "prior", "--epochs", "1", "-q")
    assert result.exit_code == 0, result.output
    after = zoo.load(copy)
    for name, value in before.state_dict().items():
        same = torch.equal(value, after.state_dict()[name])
        assert same != name.startswith("prior."), name  # only the prior changed
    evals = records(copy, "eval")
    assert [(r["stage"], r["epoch"]) for r in evals] == [("main", 1), ("main", 2), ("prior", 1)]
    assert len(records(copy, "end")) == 1
    assert sorted(p.name for p in (copy / "samples").glob("prior-*")) == ["prior-epoch-001.png"]  # 002 is gone
    assert "epochs: 1" in (copy / "recipe.yaml").read_text().split("stages:")[1]
    state = load_checkpoint(copy / CHECKPOINT_FILE)
    assert state["finished"] and state["updates"] == {"main": 2 * 62, "prior": 62}


def test_eval_reports_the_codebook_and_refuses_probes_of_discrete_codes(run, cli, tmp_path):
    out = tmp_path / "vq.json"
    result = cli("eval", str(run.path), "-m", "family", "-o", str(out))
    assert result.exit_code == 0, result.output
    metrics = json.loads(out.read_text())["metrics"]
    codes = run.model.config.num_codes
    assert metrics["usage"] * codes + metrics["dead_codes"] == pytest.approx(codes)
    assert 1 < metrics["perplexity"] <= codes and metrics["prior_nll"] > 0
    completed = run_zoo("eval", str(run.path), "-m", "probe")
    assert completed.returncode == 2
    assert_one_line_error(completed.stderr, "probe", "discrete codes")

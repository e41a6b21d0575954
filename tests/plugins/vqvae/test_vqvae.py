import json
import math
import shutil

import pytest
import torch

import zoo
from tests.conftest import assert_one_line_error, run_zoo
from zoo.checkpoint import CHECKPOINT_FILE, load_checkpoint
from zoo.errors import InvalidInputError
from zoo.progress import Reporter

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


def test_a_map_of_its_discrete_codes_is_refused(run, tmp_path):
    """PCA of codebook indices would order the codes by index number."""
    out = tmp_path / "latents.png"
    completed = run_zoo("plot", str(run.path), "latents", "-o", str(out))
    assert completed.returncode == 2 and not out.exists()
    assert_one_line_error(completed.stderr, "discrete", "indices into a codebook")


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
    assert_one_line_error(completed.stderr, "model.num_codes", "its settings: temperature, top_k")
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


def folder_bytes(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_refused_stage_restart_leaves_the_run_folder_as_it_was(run, tmp_path):
    """The run is built (data, model, batch sizes checked) before its folder changes."""
    copy = shutil.copytree(run.path, tmp_path / "copy")
    before = folder_bytes(copy)
    with pytest.raises(InvalidInputError, match="batch size 100000 is larger than the 4000 training examples"):
        zoo.train(resume=copy, stage="prior", overrides=["stages.prior.batch_size=100000"])
    assert folder_bytes(copy) == before


def test_resume_with_more_epochs_extends_the_stage_a_finished_run_ended_in(run, tmp_path):
    """The recipes give the prior stage its own epochs: --epochs extends that stage."""
    copy = shutil.copytree(run.path, tmp_path / "copy")
    with pytest.raises(InvalidInputError, match="has trained 2 epochs of stage 'prior': --epochs must be more"):
        zoo.train(resume=copy, epochs=2)
    zoo.train(resume=copy, epochs=3)
    evals = [(r["stage"], r["epoch"]) for r in records(copy, "eval")]
    assert evals == [("main", 1), ("main", 2), ("prior", 1), ("prior", 2), ("prior", 3)]
    assert "epochs: 3" in (copy / "recipe.yaml").read_text().split("stages:")[1]
    assert len(records(copy, "end")) == 1
    assert load_checkpoint(copy / CHECKPOINT_FILE)["updates"] == {"main": 2 * 62, "prior": 3 * 62}


class CrashIn(Reporter):
    """A crash (an exception: no checkpoint of its own) at the `at`-th log record of `stage`."""

    def __init__(self, stage, at):
        self.crash_stage, self.at, self.calls = stage, at, 0

    def start_epoch(self, stage, epoch, epochs, steps, done):
        self.stage = stage

    def advance(self, done, record):
        self.calls += self.stage == self.crash_stage
        if self.calls == self.at:
            raise RuntimeError("power cut")


def test_a_run_that_dies_early_in_its_prior_stage_resumes_bit_for_bit_from_the_stage_boundary(tmp_path):
    """The checkpoint written when the main stage ends is where the prior stage starts: the
    resumed prior stage starts afresh (its own optimiser and EMA, not the main stage's) and
    records where its log starts, so that `--stage prior` replaces its records."""
    sets = ["train.epochs=1", "stages.prior.epochs=1", "train.sample_grid=0", "train.ema_decay=0.9"]
    sets += ["train.log_every=1"]
    full = zoo.train("vqvae", "digits", overrides=sets, out=str(tmp_path / "full"))
    with pytest.raises(RuntimeError, match="power cut"):
        zoo.train("vqvae", "digits", overrides=sets, out=str(tmp_path / "cut"), reporter=CrashIn("prior", 3))
    (cut,) = (tmp_path / "cut").iterdir()
    state = load_checkpoint(cut / CHECKPOINT_FILE)
    assert (state["stage"], state["epoch"], state["batch"]) == (1, 0, 0)
    resumed = zoo.train(resume=cut)
    assert resumed.steps == full.steps
    ours, theirs = resumed.model.state_dict(), full.model.state_dict()
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs)
    zoo.train(resume=cut, stage="prior", epochs=2)
    assert [r["epoch"] for r in records(cut, "eval") if r["stage"] == "prior"] == [1, 2]
    assert len(records(cut, "end")) == 1


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

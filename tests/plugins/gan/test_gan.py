import json

import pytest
import torch

import zoo
from zoo.checkpoint import CHECKPOINT_FILE, load_checkpoint
from zoo.errors import InvalidInputError

TINY = ["data=digits", "model.channels=[16, 32]", "model.latent_dim=16", "train.sample_grid=16"]


def records(path, event):
    return [r for r in map(json.loads, (path / "metrics.jsonl").read_text().splitlines()) if r["event"] == event]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A short gan run on mnist-5k with the default recipe, keeping the best epoch; two
    stride-2 levels instead of the recipe's three, which cost 40% more time per epoch."""
    overrides = ["model.channels=[64, 128]", "train.ema_decay=0.99", "train.sample_grid=16"]
    return zoo.train("gan", epochs=4, overrides=overrides, out=str(tmp_path_factory.mktemp("runs")))


def test_a_gan_can_sample_and_decode_but_not_reconstruct_or_encode():
    model = zoo.create("gan", latent_dim=8, channels=(8, 16))
    assert model.capabilities() == ("sample", "decode")
    images = model.sample(5, generator=torch.Generator().manual_seed(0))
    assert images.shape == (5, 1, 28, 28) and images.min() >= 0 and images.max() <= 1
    assert model.decode(torch.zeros(2, 8)).shape == (2, 1, 28, 28)
    assert model.critic(images).shape == (5,)
    with pytest.raises(InvalidInputError, match="loss must be one of ns, hinge, wgan-gp"):
        zoo.create("gan", loss="lsgan")


def test_two_objectives_with_their_own_optimisers_and_n_critic_go_through_the_trainer(tmp_path):
    overrides = [
        *TINY,
        "model.loss=wgan-gp",
        "model.n_critic=2",
        "model.fd_samples=0",
        "train.keep_best=false",
        "train.epochs=1",
        "train.scheduler.name=none",
        "train.optimizers.critic={name: adam, lr: 4.0e-4, betas: [0.0, 0.9]}",
        "train.optimizers.generator={name: adam, lr: 1.0e-4, betas: [0.0, 0.9]}",
    ]
    run = zoo.train("gan", overrides=[*overrides, "train.log_every=11"], out=str(tmp_path))
    state = load_checkpoint(run.path / CHECKPOINT_FILE)
    assert state["updates"] == {"critic": 22, "generator": 11}  # 22 steps, the generator every 2nd
    groups = {name: opt["param_groups"][0] for name, opt in state["optimizers"].items()}
    assert groups["critic"]["lr"] == pytest.approx(4e-4) and groups["generator"]["lr"] == pytest.approx(1e-4)
    assert tuple(groups["critic"]["betas"]) == (0.0, 0.9)
    model = zoo.create("gan", run.model.config_dict())
    critic_params = {id(p) for p in model.critic.parameters()}
    assert len(state["optimizers"]["critic"]["param_groups"][0]["params"]) == len(critic_params)
    train = records(run.path, "train")[-1]
    assert {"critic/loss", "critic/gp", "critic/adversarial", "generator/loss"} <= set(train)
    assert train["critic/gp"] >= 0
    assert set(run.metrics) == {"critic", "generator"}
    # A logged term is the mean over the steps that made it: the generator's every 2nd step.
    every_step = zoo.train("gan", overrides=[*overrides, "train.log_every=1"], out=str(tmp_path))
    per_step = {r["step"]: r for r in records(every_step.path, "train")}
    for logged in records(run.path, "train"):
        window = [per_step[s] for s in range(logged["step"] - 10, logged["step"] + 1)]
        for key in ("generator/loss", "critic/loss"):
            values = [w[key] for w in window if key in w]
            assert len(values) == (
                11 if key == "critic/loss" else (logged["step"] + 1) // 2 - (logged["step"] - 10) // 2
            )
            assert logged[key] == pytest.approx(sum(values) / len(values), rel=1e-5)


def test_spectral_norm_bounds_every_critic_layer_and_survives_save_and_load(tmp_path):
    torch.manual_seed(0)
    model = zoo.create("gan", latent_dim=8, channels=(8, 16), spectral_norm=True).train()
    for _ in range(30):  # power iterations run in training forwards
        model.critic(torch.rand(4, 1, 28, 28))
    model.eval()
    layers = [m for m in model.critic.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert len(layers) == 3
    for layer in layers:
        sigma = torch.linalg.matrix_norm(layer.weight.flatten(1), ord=2)
        assert sigma.item() == pytest.approx(1.0, abs=0.05)
    zoo.save(model, tmp_path / "m")
    x = torch.rand(3, 1, 28, 28)
    assert torch.equal(zoo.load(tmp_path / "m").critic(x), model.critic(x))


def test_batch_norm_generator_samples_with_running_statistics_that_survive_save_and_load(tmp_path):
    torch.manual_seed(0)
    model = zoo.create("gan", latent_dim=8, channels=(8, 16), batch_norm=True).train()
    norms = [m for m in model.generator.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert [type(m) for m in norms] == [torch.nn.BatchNorm1d, torch.nn.BatchNorm2d]  # linear layer, inner level
    for _ in range(5):
        model.generator(torch.randn(16, 8) * 3)  # training forwards move the running statistics
    model.eval()
    assert norms[1].running_var.mean().item() != pytest.approx(1.0, abs=1e-3)
    z = torch.randn(6, 8)
    assert torch.allclose(model.decode(z)[:2], model.decode(z[:2]), atol=1e-6)  # no dependence on the batch
    zoo.save(model, tmp_path / "m")
    assert torch.equal(zoo.load(tmp_path / "m").decode(z), model.decode(z))


def test_gan_learns_mnist_5k_and_keeps_the_epoch_with_the_best_held_out_fd(run):
    """The untrained generator's Fréchet distance to the test digits (in the classifier's
    features) is in the hundreds; a few epochs cut it by more than half."""
    evals = records(run.path, "eval")
    fds = [r["fd"] for r in evals]
    untrained = zoo.create("gan", run.model.config_dict())
    baseline = untrained.frechet_distance(zoo.load_dataset("mnist-5k").test.x, "mnist-5k")
    assert min(fds) < 0.5 * baseline
    best = fds.index(min(fds)) + 1
    meta = json.loads((run.path / "config.json").read_text())
    assert meta["kept_epoch"] == best and run.metrics["fd"] == min(fds)
    assert run.model.frechet_distance(zoo.load_dataset("mnist-5k").test.x, "mnist-5k") == pytest.approx(min(fds))


def test_gan_logs_how_many_samples_the_classifier_labels_confidently_and_their_classes(run):
    """`confident` and `classes` judge the same fixed-noise samples as `fd`: checked here
    against the classifier's own probabilities on samples drawn the same way."""
    evals = records(run.path, "eval")
    assert all(0 <= r["confident"] <= 1 and 0 <= r["classes"] <= 10 for r in evals)
    classifier = zoo.digit_classifier("mnist-5k")
    with torch.no_grad():
        samples = run.model.sample(1000, generator=torch.Generator().manual_seed(0))
        confidence, label = classifier(samples).softmax(1).max(1)
    confident = confidence >= 0.9
    assert run.metrics["confident"] == pytest.approx(confident.float().mean().item(), abs=1e-3)
    assert run.metrics["classes"] == len(label[confident].unique())
    # Four epochs take the generator from no confident digit to some of many classes.
    assert evals[0]["confident"] < run.metrics["confident"] and run.metrics["classes"] >= 5


def test_saved_gan_loads_with_identical_samples_and_samples_from_the_cli(run, cli, tmp_path):
    loaded = zoo.load(run.path)
    a = loaded.sample(6, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, run.model.sample(6, generator=torch.Generator().manual_seed(2)))
    result = cli("sample", str(run.path), "-n", "16", "-o", str(tmp_path / "s.png"))
    assert result.exit_code == 0 and "wrote 16 samples" in result.output
    result = cli("reconstruct", str(run.path), "-o", str(tmp_path / "r.png"))
    assert result.exit_code == 2 and "cannot reconstruct" in result.output

import json
import os
import re
import shutil
import signal
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import zoo
from tests.conftest import TINY
from zoo.checkpoint import CHECKPOINT_FILE, load_checkpoint
from zoo.devices import check_speed_options
from zoo.errors import InvalidInputError, NotFoundError, TrainingError, ZooError
from zoo.modelfile import WEIGHTS_FILE
from zoo.progress import Reporter
from zoo.recipes import TrainConfig, load_recipe
from zoo.registry import families
from zoo.trainer import _FOREACH_SAME_BITS, Trainer, _prefer_foreach, _total_norm, evaluate


def weights(run_path):
    return load_file(str(run_path / WEIGHTS_FILE))


def assert_same_weights(a, b):
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key


def train_records(run_path):
    lines = (run_path / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["event"] == "train"]


def eval_records(run_path):
    lines = (run_path / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["event"] == "eval"]


class InterruptAt(Reporter):
    """Presses Ctrl-C (a real SIGINT to this process) when training reaches `step`."""

    def __init__(self, step):
        self.step = step
        self.calls = 0

    def advance(self, done, record):  # called once a step with train.log_every=1
        self.calls += 1
        if self.calls == self.step:
            os.kill(os.getpid(), signal.SIGINT)


def test_run_folder_holds_model_recipe_metrics_samples_curve_and_checkpoint(tiny_run):
    path = tiny_run.path
    names = {p.name for p in path.iterdir()}
    assert {
        "config.json",
        "model.safetensors",
        "README.md",
        "recipe.yaml",
        "metrics.jsonl",
        "loss.png",
        "checkpoint.safetensors",
        "samples",
    } <= names
    assert sorted(p.name for p in (path / "samples").iterdir()) == ["epoch-001.png", "epoch-002.png"]
    records = eval_records(path)
    assert [r["epoch"] for r in records] == [1, 2]
    assert records[-1]["nelbo"] == pytest.approx(tiny_run.metrics["nelbo"])
    assert records[-1]["nelbo"] == pytest.approx(records[-1]["rec"] + records[-1]["kl"], rel=1e-5)
    card = (path / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: zoo\n") and "model-index" in card and "nelbo" in card
    assert path.name.startswith("vae-digits-")
    assert load_checkpoint(path / CHECKPOINT_FILE)["finished"] is True


def test_two_runs_with_the_same_seed_give_identical_weights(tiny_run, tmp_path):
    again = zoo.train("vae", overrides=TINY, out=str(tmp_path))
    assert_same_weights(tiny_run.path, again.path)
    other = zoo.train("vae", overrides=[*TINY, "train.epochs=1"], seed=1, out=str(tmp_path))
    assert not torch.equal(weights(other.path)["encoder.head.weight"], weights(tiny_run.path)["encoder.head.weight"])


@pytest.mark.parametrize("stop_at", [7, 30])  # mid first epoch; mid second epoch (22 steps per epoch)
def test_interrupted_and_resumed_run_equals_the_uninterrupted_one(tiny_run, tmp_path, stop_at):
    overrides = [*TINY, "train.log_every=1"]
    stopped = zoo.train("vae", overrides=overrides, out=str(tmp_path), reporter=InterruptAt(stop_at))
    assert stopped.interrupted and stopped.steps == stop_at
    assert load_checkpoint(stopped.path / CHECKPOINT_FILE)["step"] == stop_at
    resumed = zoo.train(resume=stopped.path)
    assert not resumed.interrupted and resumed.steps == tiny_run.steps
    assert_same_weights(tiny_run.path, resumed.path)
    assert resumed.metrics == tiny_run.metrics
    assert [r["nelbo"] for r in eval_records(resumed.path)] == [r["nelbo"] for r in eval_records(tiny_run.path)]


def test_channels_last_with_compile_is_refused_where_torch_cannot_compile_it(tmp_path, monkeypatch):
    """pytorch/pytorch#171622: on cuda and mps, a compiled channels-last convolution's backward
    fails at the first step. The trainer refuses before it touches the device or makes a folder
    (so a cuda device object stands in for a GPU here; tests/gpu has the same on one)."""
    monkeypatch.setattr("zoo.trainer.resolve_device", lambda name: torch.device("cuda"))
    with pytest.raises(InvalidInputError, match="pytorch/pytorch#171622"):
        zoo.train("vae", overrides=["train.channels_last=true", "train.compile=true"], out=str(tmp_path / "runs"))
    assert not (tmp_path / "runs").exists()
    for device in ("cuda", "cuda:1", "mps"):
        with pytest.raises(InvalidInputError, match=r"channels_last and train.compile fail together on \w+ .*#171622"):
            check_speed_options(torch.device(device), channels_last=True, compiled=True)
    check_speed_options(torch.device("cpu"), channels_last=True, compiled=True)  # runs there (bench/)
    check_speed_options(torch.device("cuda"), channels_last=True, compiled=False)
    check_speed_options(torch.device("cuda"), channels_last=False, compiled=True)


def test_a_checkpoint_holds_the_generator_of_its_own_device_and_a_resume_elsewhere_starts_it_afresh():
    """A CPU run's checkpoint has no GPU state: resumed on a GPU, its generator is seeded
    past the first steps' noise, not left at the seed's; the older form, a list of every
    visible GPU's states, gives this process's GPU its own."""
    from zoo.trainer import _rng_state, _set_rng_state

    state = _rng_state(torch.device("cpu"))
    assert set(state) == {"torch", "numpy", "python"}
    assert _set_rng_state(state, torch.device("cpu"))
    assert not _set_rng_state(state, torch.device("cuda"))  # touches no GPU: there is none here
    assert not _set_rng_state({**state, "cuda": [torch.zeros(8, dtype=torch.uint8)]}, torch.device("cuda:1"))


def test_held_out_evaluation_runs_in_the_training_precision(tmp_path):
    run = zoo.train("vae", overrides=[*TINY, "train.precision=bf16"], out=str(tmp_path))
    model, test = zoo.load(run.path), zoo.load_dataset("digits").test
    logged = eval_records(run.path)[-1]["nelbo"]
    size = TrainConfig().eval_batch_size
    with torch.autocast("cpu", dtype=torch.bfloat16):
        in_bf16 = evaluate(model, test, size, seed=0)["nelbo"]
    in_fp32 = evaluate(model, test, size, seed=0)["nelbo"]
    assert logged == pytest.approx(in_bf16, rel=1e-6)
    # bf16 rounding moves the figure, by far less than a nat; it is a different computation.
    assert logged != in_fp32 and logged == pytest.approx(in_fp32, abs=0.5)


def test_held_out_figures_do_not_depend_on_the_evaluation_batch_size(tiny_run):
    """The same noise in the same order at any batch size: train.eval_batch_size is a speed
    knob, not part of the figure (its default changed from 500 to 256)."""
    test = zoo.load_dataset("digits").test  # 359 images: one batch, two, four
    figures = [evaluate(tiny_run.model, test, size, seed=0) for size in (359, 256, 100)]
    assert 10 < figures[0]["nelbo"] < 60  # the tiny run's figure, not a constant
    for other in figures[1:]:
        assert other.keys() == figures[0].keys()
        assert all(other[k] == pytest.approx(figures[0][k], rel=1e-5) for k in other)
    assert evaluate(tiny_run.model, test, 256, seed=1)["nelbo"] != figures[1]["nelbo"]  # the noise counts


def records(run_path, event):
    lines = (run_path / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["event"] == event]


def test_finished_run_resumes_only_to_train_longer(tiny_run, tmp_path):
    with pytest.raises(InvalidInputError, match="finished after 2 epochs; pass --epochs"):
        zoo.train(resume=tiny_run.path)
    with pytest.raises(InvalidInputError, match="has trained 2 epochs: --epochs must be more"):
        zoo.train(resume=tiny_run.path, epochs=2)
    copy = shutil.copytree(tiny_run.path, tmp_path / "copy")
    longer = zoo.train(resume=copy, epochs=3)
    assert longer.steps == tiny_run.steps * 3 // 2
    assert [r["epoch"] for r in eval_records(copy)] == [1, 2, 3]
    assert [r["step"] for r in records(copy, "end")] == [longer.steps]  # the first run's end record went


def test_a_longer_run_stays_longer_when_its_extension_is_interrupted(tiny_run, tmp_path):
    """`--resume --epochs 3` is written into the run's recipe: a plain `--resume` after a stop
    goes on to epoch 3 (it used to read the old 2 and finish at once, half-way through epoch 3)."""
    longer = zoo.train(resume=shutil.copytree(tiny_run.path, tmp_path / "longer"), epochs=3)
    copy = shutil.copytree(tiny_run.path, tmp_path / "copy")
    stopped = zoo.train(resume=copy, epochs=3, reporter=InterruptAt(1))  # at the first log record
    assert stopped.interrupted and tiny_run.steps < stopped.steps < longer.steps
    assert "epochs: 3" in (copy / "recipe.yaml").read_text()
    resumed = zoo.train(resume=copy)
    assert resumed.steps == longer.steps and not resumed.interrupted
    assert_same_weights(longer.path, copy)
    assert load_checkpoint(copy / CHECKPOINT_FILE)["finished"]


def test_resume_refuses_what_is_not_a_run(tmp_path, tiny_run):
    with pytest.raises(NotFoundError, match="is not a zoo run folder"):
        zoo.train(resume=tmp_path)
    with pytest.raises(InvalidInputError, match="only --epochs may change"):
        zoo.train("vae", resume=tiny_run.path)


@dataclass
class NanConfig(zoo.FamilyConfig):
    nan_after: int = 30


class NanAfter(zoo.Family):
    """Learns the mean image, then its 'kl' term goes NaN after `nan_after` steps."""

    name = "nan-after"
    config_class = NanConfig

    def __init__(self, config):
        super().__init__(config)
        self.mean = torch.nn.Parameter(torch.zeros(config.input_shape))
        self.register_buffer("calls", torch.zeros((), dtype=torch.long))

    def loss(self, batch):
        if self.training:
            self.calls += 1
        rec = (batch.x - self.mean).pow(2).mean()
        kl = self.mean.sum() * (float("nan") if self.calls > self.config.nan_after else 0.0)
        return zoo.LossOutput(rec + kl, {"rec": rec.detach(), "kl": kl.detach()})


def test_non_finite_loss_stops_naming_term_and_step_and_keeps_the_last_good_checkpoint(tmp_path):
    zoo.register(NanAfter)
    try:
        with pytest.raises(
            TrainingError, match=r"loss term 'kl' became nan at step 30 \(epoch 2\); try .*last good checkpoint"
        ):
            zoo.train(
                "nan-after", overrides=["data=digits", "train.epochs=3", "train.batch_size=64"], out=str(tmp_path)
            )
        (run,) = tmp_path.iterdir()
        state = load_checkpoint(run / CHECKPOINT_FILE)
        assert state["step"] == 22 and state["epoch"] == 1
        assert torch.isfinite(zoo.load(run).mean).all()
        last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
        assert last["event"] == "diverged" and last["step"] == 30
    finally:
        families.unregister("nan-after")


def test_where_steps_are_not_checked_one_by_one_no_checkpoint_keeps_weights_a_non_finite_step_spoilt(tmp_path):
    """On accelerators a step's loss is not checked when it is taken (that would sync): the
    steps since the last log record are checked before a checkpoint is written instead. The
    same trainer on CPU, with its per-step checks off, goes down that path."""
    zoo.register(NanAfter)
    try:
        sets = ["data=digits", "train.epochs=3", "train.batch_size=64", "train.log_every=20"]
        trainer = Trainer(load_recipe("nan-after", None, [*sets, "train.checkpoint_every=2"]), None, out=tmp_path)
        trainer.checks_every_step = False
        with pytest.raises(TrainingError, match=r"became nan at step 32 \(epoch 2\); .*last good checkpoint"):
            trainer.fit()  # the loss is nan from step 31 on; step 32 checkpoints
        state = load_checkpoint(trainer.run_dir / CHECKPOINT_FILE)
        assert state["step"] == 30
        assert all(torch.isfinite(v).all() for v in state["model"].values())
    finally:
        families.unregister("nan-after")


def test_lr_warm_up_multiplies_the_schedule_linearly_from_zero_and_grad_norm_is_logged(tmp_path):
    base = [*TINY, "train.epochs=1", "train.log_every=1", "train.sample_grid=0", "train.grad_clip=0.5"]
    plain = zoo.train("vae", overrides=base, out=str(tmp_path))
    warm = zoo.train("vae", overrides=[*base, "train.scheduler.warmup_steps=10"], out=str(tmp_path))
    plain_log, warm_log = (train_records(run.path) for run in (plain, warm))
    assert len(plain_log) == len(warm_log) == 22
    # The vae recipe's cosine schedule with timm's one-epoch warm-up, times (u + 1) / 10.
    scheduled = [r["lr"] for r in plain_log]
    assert scheduled == sorted(scheduled) and scheduled[0] < scheduled[-1]
    expected = [lr * min(1.0, (u + 1) / 10) for u, lr in enumerate(scheduled)]
    assert [r["lr"] for r in warm_log] == pytest.approx(expected, rel=1e-6)
    norms = [r["grad_norm"] for r in plain_log]
    assert all(0 < n < float("inf") for n in norms) and max(n for n in norms) > 0.5  # logged before clipping


def test_the_gradient_norm_is_torchs_to_the_bit_in_one_dtype_and_in_several():
    generator = torch.Generator().manual_seed(0)
    grads = [torch.randn(shape, generator=generator) for shape in [(32, 1, 4, 4), (32,), (64, 32, 4, 4), (1000,)]]
    assert torch.equal(_total_norm(grads), torch.nn.utils.get_total_norm(grads))
    mixed = [g.double() if i % 2 else g for i, g in enumerate(grads)]
    assert torch.equal(_total_norm(mixed), torch.nn.utils.get_total_norm(mixed))


@pytest.mark.parametrize("cls", [*_FOREACH_SAME_BITS, torch.optim.NAdam], ids=lambda c: c.__name__)
def test_the_optimisers_multi_tensor_step_gives_the_same_weights_to_the_bit(cls):
    """The trainer gives these optimisers their multi-tensor step on the CPU too (faster); the
    weights must be those of torch's default step there, bit for bit. NAdam's differ: left alone."""
    data = torch.rand(64, 1, 8, 8, generator=torch.Generator().manual_seed(0))

    def trained(prefer: bool) -> dict[str, torch.Tensor]:
        torch.manual_seed(0)
        model = zoo.create("vae", input_shape=(1, 8, 8), latent_dim=2, channels=(4,), hidden_dim=8)
        extra = {"momentum": 0.9} if cls is torch.optim.SGD else {}
        optimizer = cls(model.parameters(), lr=1e-2, weight_decay=0.01, **extra)
        if prefer:
            _prefer_foreach(optimizer)
        assert optimizer.param_groups[0]["foreach"] is (True if prefer and cls is not torch.optim.NAdam else None)
        for step in range(20):
            optimizer.zero_grad(set_to_none=True)
            model.loss(zoo.Batch(data[step % 4 * 16 : step % 4 * 16 + 16])).total.backward()
            optimizer.step()
        return model.state_dict()

    default, preferred = trained(False), trained(True)
    assert all(torch.equal(default[k], preferred[k]) for k in default)


@dataclass
class ScriptedConfig(zoo.FamilyConfig):
    scores: tuple[float, ...] = (3.0, 1.0, 2.0)


class Scripted(zoo.Family):
    """Fits the mean image; its held-out 'loss' after epoch k is scores[k-1], whatever it learnt."""

    name = "scripted"
    config_class = ScriptedConfig

    def __init__(self, config):
        super().__init__(config)
        self.mean = torch.nn.Parameter(torch.zeros(config.input_shape))
        self.register_buffer("evaluations", torch.zeros((), dtype=torch.long))

    def loss(self, batch):
        return zoo.LossOutput((batch.x - self.mean).pow(2).mean())

    def evaluate_split(self, batches, stage="main", data=""):
        self.evaluations += 1
        return {"loss": self.config.scores[int(self.evaluations) - 1], "mean": self.mean.sum().item()}


def test_keep_best_keeps_the_weights_metrics_and_card_of_the_epoch_with_the_best_held_out_score(tmp_path):
    zoo.register(Scripted)
    try:
        overrides = ["data=digits", "train.epochs=3", "train.keep_best=true", "train.sample_grid=0"]
        run = zoo.train("scripted", overrides=overrides, out=str(tmp_path))
        evals = eval_records(run.path)
        assert [r["loss"] for r in evals] == [3.0, 1.0, 2.0]
        assert len({r["mean"] for r in evals}) == 3  # the weights differ from epoch to epoch
        kept = zoo.load(run.path)
        assert kept.mean.sum().item() == pytest.approx(evals[1]["mean"])
        assert run.model.mean.sum().item() == pytest.approx(evals[1]["mean"])
        assert run.metrics["loss"] == 1.0
        meta = json.loads((run.path / "config.json").read_text())
        assert meta["kept_epoch"] == 2 and meta["metrics"]["loss"] == 1.0
        end = json.loads((run.path / "metrics.jsonl").read_text().splitlines()[-1])
        assert end["event"] == "end" and end["kept_epoch"] == 2 and end["loss"] == 1.0
        # Without keep_best the last epoch is kept.
        last = zoo.train("scripted", overrides=[*overrides, "train.keep_best=false"], out=str(tmp_path))
        assert zoo.load(last.path).mean.sum().item() == pytest.approx(eval_records(last.path)[2]["mean"])
    finally:
        families.unregister("scripted")


def test_stage_needs_an_existing_run(tiny_run):
    with pytest.raises(InvalidInputError, match="pass --resume RUN"):
        zoo.train("vae", stage="main")
    with pytest.raises(InvalidInputError, match="has no stage 'prior'"):
        zoo.train(resume=tiny_run.path, stage="prior")
    with pytest.raises(InvalidInputError, match="overrides must be stages.main"):
        zoo.train(resume=tiny_run.path, stage="main", overrides=["model.beta=2"])


def folder_bytes(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _foreign_checkpoint(run, other):
    shutil.copy(other / CHECKPOINT_FILE, run / CHECKPOINT_FILE)


def _log_cut_mid_record(run, other):
    log = run / "metrics.jsonl"
    log.write_bytes(log.read_bytes()[:100])


def _unreadable_record(run, other):
    log = run / "metrics.jsonl"
    first, rest = log.read_bytes().split(b"\n", 1)
    log.write_bytes(b"{" + b"x" * (len(first) - 1) + b"\n" + rest)  # same length: the checkpoint's offset holds


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        (_foreign_checkpoint, "does not fit its model"),  # a checkpoint of a vae with another code size
        (_log_cut_mid_record, "is shorter"),
        (_unreadable_record, "line 1 is not a JSON record"),
    ],
    ids=["foreign checkpoint", "log cut short", "unreadable log record"],
)
def test_a_resume_that_cannot_go_on_is_refused_before_anything_in_the_run_folder_changes(
    tiny_run, tmp_path, spoil, message
):
    """The checkpoint's weights are loaded and the log is read up to the checkpoint before the
    log is cut back to it: a refused resume leaves the folder byte for byte as it was."""
    other = zoo.train("vae", overrides=[*TINY, "model.latent_dim=8", "train.epochs=1"], out=str(tmp_path / "other"))
    run = shutil.copytree(tiny_run.path, tmp_path / "run")
    spoil(run, other.path)
    before = folder_bytes(run)
    with pytest.raises(ZooError, match=message):
        zoo.train(resume=run, epochs=3)
    assert folder_bytes(run) == before


def test_a_resume_on_data_whose_contents_changed_is_refused(tmp_path):
    """A file-backed run resumed on other contents would not continue the same run."""
    values = torch.Generator().manual_seed(0)
    data = tmp_path / "v.npy"
    np.save(data, torch.randn(200, 6, generator=values).numpy())
    run = zoo.train("vae", "breast-cancer", data=f"npy:{data}", epochs=1, out=str(tmp_path / "runs")).path
    np.save(data, torch.randn(200, 6, generator=values).numpy())
    before = folder_bytes(run)
    with pytest.raises(InvalidInputError, match=f"the data 'npy:{data}' is not what run '{run}' trained on"):
        zoo.train(resume=run, epochs=2)
    assert folder_bytes(run) == before


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["train.optimizer.betas=[2, 3]"], "Invalid beta parameter"),  # refused by torch's Adam
        (["train.scheduler.min_lr=-1"], "^train.scheduler.min_lr must be ≥ 0"),
        (["train.optimizers.nope.lr=1"], "vae has no objective 'nope'"),
        (["train.optimizer.lr=.inf"], "must be a finite number"),
        (["model.beta=.inf"], "must be a finite number"),
    ],
)
def test_settings_the_optimiser_or_schedule_refuses_are_refused_before_the_run_has_a_folder(
    tmp_path, overrides, message
):
    with pytest.raises(InvalidInputError, match=message):
        zoo.train("vae", overrides=[*TINY, *overrides], out=str(tmp_path / "runs"))
    assert not (tmp_path / "runs").exists()


def test_an_empty_recipe_file_is_refused(tmp_path):
    (tmp_path / "empty.yaml").write_text("# nothing here\n")
    with pytest.raises(InvalidInputError, match="is empty: a recipe is a YAML mapping"):
        zoo.train("vae", recipe=str(tmp_path / "empty.yaml"), out=str(tmp_path / "runs"))


def test_train_takes_a_recipe_object_and_trains_the_same_run_as_its_overrides(tmp_path, tiny_run):
    recipe = zoo.load_recipe("vae", None, TINY)
    run = zoo.train(recipe=recipe, out=str(tmp_path / "runs"))
    assert run.path.name.startswith("vae-digits")
    assert torch.equal(run.model.encoder.head.weight, tiny_run.model.encoder.head.weight)
    assert run.metrics["nelbo"] == tiny_run.metrics["nelbo"]
    report = zoo.evaluate(run.model, zoo.load_dataset("digits"), "recon")  # one group, not letters
    assert report.groups == ["recon"] and report.metrics["mse"] > 0


@pytest.mark.parametrize(
    ("family", "why"),
    [
        ("vae", "model.likelihood is bernoulli, which takes values in [0, 1]: set model.likelihood=gaussian"),
        ("vqvae", "the vqvae's cross-entropy and sigmoid outputs take images in [0, 1]"),
        ("gan", "the generator's sigmoid outputs are images in [0, 1]"),
    ],
)
def test_images_outside_the_unit_interval_are_refused_by_a_model_whose_outputs_are_in_it(tmp_path, family, why):
    """Standardised pixels under a Bernoulli likelihood trained to a −ELBO of −5,316 nats."""
    np.save(tmp_path / "x.npy", np.random.default_rng(0).normal(size=(40, 1, 8, 8)).astype(np.float32))
    data = f"npy:{tmp_path / 'x.npy'}"
    with pytest.raises(InvalidInputError, match=r"has values in -\d.*… \d.*; " + re.escape(why)):
        zoo.train(family, data=data, epochs=1, out=str(tmp_path / "runs"))
    assert not (tmp_path / "runs").exists()
    if family == "vae":
        settings = ["model.likelihood=gaussian", "model.channels=[8]", "model.hidden_dim=16", "train.batch_size=8"]
        assert zoo.train("vae", data=data, epochs=1, overrides=settings, out=str(tmp_path / "runs")).steps > 0

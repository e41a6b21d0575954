"""Data-parallel training: 2 gloo processes on CPU, launched by `zoo train --nproc 2`."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import TINY, assert_one_line_error, make_plugin_env, run_zoo
from zoo.checkpoint import CHECKPOINT_FILE, load_checkpoint

pytestmark = pytest.mark.ddp

#: A deterministic family (no sampling noise), so that two processes and one process with
#: the same global batch must reach the same weights up to float rounding.
LINEAR_AE = """
import math
import os
from dataclasses import dataclass

import torch

import zoo
from zoo.plugin import FamilySpec

family = FamilySpec(name="linear-ae", model="zoo_linear_ae:LinearAE", summary="deterministic linear autoencoder")


@dataclass
class Config(zoo.FamilyConfig):
    code: int = 4


class LinearAE(zoo.Family):
    name = "linear-ae"
    config_class = Config

    def __init__(self, config):
        super().__init__(config)
        size = math.prod(config.input_shape)
        self.enc = torch.nn.Linear(size, config.code)
        self.dec = torch.nn.Linear(config.code, size)

    def loss(self, batch):
        x = batch.x.flatten(1)
        mse = (torch.sigmoid(self.dec(self.enc(x))) - x).pow(2).sum(1).mean()
        return zoo.LossOutput(mse, {"mse": mse.detach()})


# With COUNT_ALL_REDUCE_IN set, each rank writes there how often torch.distributed.all_reduce
# was called (zoo's own collectives; DDP averages gradients in C++, outside this count).
if "COUNT_ALL_REDUCE_IN" in os.environ:
    import torch.distributed as dist

    _all_reduce, _calls = dist.all_reduce, [0]

    def _counted(*args, **kwargs):
        _calls[0] += 1
        path = os.path.join(os.environ["COUNT_ALL_REDUCE_IN"], f"rank-{dist.get_rank()}")
        with open(path, "w") as f:
            f.write(str(_calls[0]))
        return _all_reduce(*args, **kwargs)

    dist.all_reduce = _counted
"""

SETTINGS = ["data=digits", "train.epochs=2", "train.batch_size=64", "train.optimizer.lr=0.01"]


def _sets(overrides):
    return [a for o in overrides for a in ("--set", o)]


def _train(family, nproc, out, *args, env=None):
    """`zoo train FAMILY --nproc N` on CPU into `out`; the run folder it made."""
    result = run_zoo(
        "train", family, "--nproc", str(nproc), "--device", "cpu", "--quiet", "--out", str(out), *args, env=env
    )
    assert result.returncode == 0, result.stderr
    (run,) = out.iterdir()
    return run, result


def _logged_steps(out):
    """Train records in the metrics of the run being written under `out` (0 before it exists)."""
    logs = list(out.glob("*/metrics.jsonl"))
    return logs[0].read_text().count('"event": "train"') if logs else 0


def _records(run, event):
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["event"] == event]


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory):
    return make_plugin_env(
        tmp_path_factory.mktemp("plugin"),
        "zoo-linear-ae",
        LINEAR_AE,
        "[zoo.families]\nlinear-ae = zoo_linear_ae:family\n",
    )


def test_two_processes_match_one_process_with_the_same_global_batch(plugin_env, tmp_path):
    runs = {n: _train("linear-ae", n, tmp_path / f"n{n}", *_sets(SETTINGS), env=plugin_env)[0] for n in (1, 2)}
    one, two = (load_file(str(runs[n] / "model.safetensors")) for n in (1, 2))
    for key in one:
        assert torch.allclose(one[key], two[key], atol=1e-5, rtol=1e-4), key
    assert [r["max_difference"] for r in _records(runs[2], "replicas")] == [0.0, 0.0]
    mse = [_records(runs[n], "end")[0]["mse"] for n in (1, 2)]
    assert mse[1] == pytest.approx(mse[0], rel=1e-4)


def test_vae_trains_on_two_processes_and_resumes_on_one(tmp_path):
    run, result = _train("vae", 2, tmp_path / "runs", *_sets([*TINY, "train.epochs=1"]))
    assert "nelbo" in result.stdout and result.stdout.count("run folder:") == 1  # rank 0 alone reports
    assert _records(run, "replicas")[0]["max_difference"] == 0.0
    first = _records(run, "eval")[0]["nelbo"]
    resumed = run_zoo("train", "--resume", str(run), "--epochs", "3", "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    evals = _records(run, "eval")
    assert [r["epoch"] for r in evals] == [1, 2, 3] and evals[-1]["nelbo"] < first


@pytest.mark.slow
def test_two_process_training_is_not_flaky_over_twenty_runs(plugin_env, tmp_path):
    """gloo's shutdown race used to abort about one run in ten at interpreter exit."""
    for attempt in range(20):
        settings = _sets([*SETTINGS, "train.epochs=1"])
        run, _ = _train("linear-ae", 2, tmp_path / f"a{attempt}", *settings, env=plugin_env)
        assert _records(run, "replicas")[0]["max_difference"] == 0.0


@pytest.mark.parametrize(
    ("family", "overrides"),
    [
        ("vqvae", ["train.epochs=1", "stages.prior.epochs=1", "train.sample_grid=0"]),  # EMA codebook, two stages
        ("gan", ["train.epochs=1", "train.sample_grid=0"]),  # two optimisers, steps on part of the model
        # BatchNorm's running statistics: each rank's batches change its own
        ("gan", ["train.epochs=1", "train.sample_grid=0", "model.batch_norm=true"]),
    ],
    ids=["vqvae", "gan", "gan with batch norm"],
)
def test_codebook_and_two_optimiser_families_stay_identical_across_processes(tmp_path, family, overrides):
    run, _ = _train(family, 2, tmp_path / "runs", "--recipe", "digits", *_sets(overrides))
    replicas = _records(run, "replicas")
    assert replicas and all(r["max_difference"] == 0.0 for r in replicas)
    if family == "vqvae":  # the prior stage trained again, on two processes
        again = run_zoo("train", "--resume", str(run), "--stage", "prior", "--epochs", "2", "--nproc", "2", "-q")
        assert again.returncode == 0, again.stderr
        assert [r["epoch"] for r in _records(run, "eval") if r["stage"] == "prior"] == [1, 2]


def test_ranks_agree_without_a_collective_per_step(plugin_env, tmp_path):
    """Stop requests are agreed where the ranks log, and the non-finite guard reads the
    gradient norm, the same on every rank after DDP's averaging: zoo's all-reduces come
    with the log records and the epochs, not with the steps."""
    counts = tmp_path / "counts"
    counts.mkdir()
    env = {**plugin_env, "COUNT_ALL_REDUCE_IN": str(counts)}
    run, _ = _train("linear-ae", 2, tmp_path / "runs", *_sets(SETTINGS), env=env)
    steps = _records(run, "end")[0]["step"]
    calls = [int((counts / f"rank-{rank}").read_text()) for rank in (0, 1)]
    logged = len(_records(run, "train"))
    assert steps == 44 and logged == 4
    # per log record: the metrics and the stop flag; per epoch: the replica check
    assert calls == [2 * logged + 2] * 2


def test_a_bad_input_found_by_the_workers_is_one_line_and_exit_2(tmp_path):
    args = ["train", "vae", "--nproc", "2", "--device", "cpu", "-q", "-o", str(tmp_path / "runs")]
    args += ["--data", f"folder:{tmp_path / 'no-images'}"]
    result = run_zoo(*args)
    assert result.returncode == 2
    assert_one_line_error(result.stderr, "no image folder at", "no-images")
    assert not (tmp_path / "runs").exists()
    debugged = run_zoo("--debug", *args)  # every worker's traceback, for whoever debugs
    assert debugged.returncode != 0 and debugged.stderr.count("NotFoundError: no image folder at") >= 2


def test_a_non_finite_loss_stops_every_process_with_one_line_and_a_good_checkpoint(tmp_path):
    sets = ["data=digits", "model.posterior_scale=exp", "train.optimizer.lr=10", "train.sample_grid=0"]
    result = run_zoo("train", "vae", "--nproc", "2", "--device", "cpu", "-q", "-o", str(tmp_path), *_sets(sets))
    assert result.returncode == 2
    assert_one_line_error(result.stderr, "became", "at step", "(epoch 1)", "train.grad_clip=1", "checkpoint")
    (run,) = tmp_path.iterdir()
    (diverged,) = _records(run, "diverged")
    state = load_checkpoint(run / CHECKPOINT_FILE)
    assert state["step"] < diverged["step"]
    assert all(torch.isfinite(v).all() for v in state["model"].values())


def test_ctrl_c_stops_every_process_after_a_step_and_the_run_resumes_bit_for_bit(tmp_path):
    """Ctrl-C reaches the launcher, torchrun and both workers (one process group), and torchrun
    forwards it once more: the workers stop together after a step, save, and exit 0."""
    sets = _sets([*TINY, "train.log_every=1", "train.sample_grid=0"])
    args = ["train", "vae", "--nproc", "2", "--device", "cpu", "-q", *sets]
    full, _ = _train("vae", 2, tmp_path / "full", *sets)
    cut = tmp_path / "cut"
    command = [sys.executable, "-m", "zoo_cli", *args, "-o", str(cut)]
    process = subprocess.Popen(
        command, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 120
    while _logged_steps(cut) < 3:
        assert time.monotonic() < deadline and process.poll() is None, process.communicate()
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    assert "interrupted at step" in stdout and "Traceback" not in stderr
    (run,) = cut.iterdir()
    stopped = load_checkpoint(run / CHECKPOINT_FILE)
    assert 0 < stopped["step"] < _records(full, "end")[0]["step"]
    resumed = run_zoo("train", "--resume", str(run), "--nproc", "2", "--device", "cpu", "-q")
    assert resumed.returncode == 0, resumed.stderr
    a, b = (load_file(str(r / "model.safetensors")) for r in (full, run))
    assert all(torch.equal(a[key], b[key]) for key in a)


def test_more_processes_than_gpus_on_a_machine_is_refused_before_the_process_group_starts(monkeypatch):
    """No GPU here: torch is made to report one CUDA GPU, the number the check reads."""
    from zoo import distributed
    from zoo.errors import InvalidInputError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    for key, value in {"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"}.items():
        monkeypatch.setenv(key, value)
    message = r"2 data-parallel processes on this machine need a GPU each, and it has 1: start at most 1 per"
    with pytest.raises(InvalidInputError, match=message):
        distributed.setup("cuda")
    assert not torch.distributed.is_initialized()

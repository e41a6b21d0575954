"""SIGKILL at random moments, checkpointing every step so that many kills land during a
checkpoint write: the last checkpoint always loads and --resume ends bit for bit where an
uninterrupted run ends."""

import random
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import TINY, run_zoo
from zoo.checkpoint import CHECKPOINT_FILE, load_checkpoint
from zoo.modelfile import WEIGHTS_FILE


def kill_then_resume(out, delay: float) -> tuple[object, bool]:
    """Train with a checkpoint every step, SIGKILL after `delay` s of training, resume.
    Returns the run folder and whether the kill left a half-written temporary file."""
    args = [
        sys.executable,
        "-m",
        "zoo_cli",
        "train",
        "vae",
        "--quiet",
        "--out",
        str(out),
        *[a for o in [*TINY, "train.checkpoint_every=1"] for a in ("--set", o)],
    ]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not list(out.glob(f"*/{CHECKPOINT_FILE}")) and process.poll() is None:
        time.sleep(0.02)
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    (run,) = out.iterdir()
    torn = any(run.glob(".*.tmp"))
    state = load_checkpoint(run / CHECKPOINT_FILE)  # never corrupt
    assert state["family"] == "vae"
    if not state["finished"]:
        result = run_zoo("train", "--resume", str(run), "--quiet")
        assert result.returncode == 0, result.stderr
    assert not any(run.glob(".*.tmp"))
    return run, torn


def assert_same_final_weights(run, reference):
    ours, theirs = load_file(str(run / WEIGHTS_FILE)), load_file(str(reference / WEIGHTS_FILE))
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)


@pytest.mark.parametrize("trial", range(2))
def test_sigkill_at_a_random_point_then_resume_is_bit_exact(tiny_run, tmp_path, trial):
    run, _ = kill_then_resume(tmp_path, delay=random.Random(trial).uniform(0.05, 1.0))
    assert_same_final_weights(run, tiny_run.path)


@pytest.mark.slow
def test_twenty_sigkills_never_corrupt_and_always_resume_bit_exact(tiny_run, tmp_path):
    rng = random.Random(2026)
    torn = 0
    for trial in range(20):
        out = tmp_path / f"t{trial}"
        run, was_torn = kill_then_resume(out, delay=rng.uniform(0.0, 1.5))
        torn += was_torn
        assert_same_final_weights(run, tiny_run.path)
    print(f"20 kills, {torn} during a checkpoint write")

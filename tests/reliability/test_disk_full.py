"""A full disk, made real with RLIMIT_FSIZE in the zoo process: every write past the limit
fails with EFBIG (SIGXFSZ ignored), as a write into a full filesystem fails with ENOSPC.
zoo must stop with one line, exit 2, keep the last good files loadable and leave no
temporary files behind."""

from __future__ import annotations

import hashlib
import json
import resource
import shutil
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

import zoo
from tests.conftest import assert_one_line_error, run_zoo
from zoo.checkpoint import CHECKPOINT_FILE, load_checkpoint
from zoo.modelfile import WEIGHTS_FILE
from zoo.runfolder import METRICS_FILE


def file_size_limit(limit: int) -> Callable[[], None]:
    """A preexec_fn: files the child writes cannot grow past `limit` bytes."""

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def digests(folder: Path, *names: str) -> dict[str, str]:
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in names}


def temporaries(folder: Path) -> list[Path]:
    return sorted(folder.rglob(".*.tmp"))


@pytest.mark.parametrize("nproc", [1, pytest.param(2, marks=pytest.mark.ddp)], ids=["one process", "two processes"])
def test_disk_full_while_training_stops_cleanly_and_keeps_the_last_good_checkpoint(tiny_run, tmp_path, nproc):
    """With two processes only rank 0 writes, so only rank 0 meets the error: it must not wait
    for rank 1, which waits in the next collective (that hung both until killed)."""
    run = Path(shutil.copytree(tiny_run.path, tmp_path / "run"))
    before = digests(run, WEIGHTS_FILE, CHECKPOINT_FILE)
    # Room for the log, the recipe and a sample grid, not for the weights or the checkpoint.
    limit = (run / WEIGHTS_FILE).stat().st_size // 2
    assert limit > 4 * (run / METRICS_FILE).stat().st_size

    processes = ["--nproc", "2", "--device", "cpu"] if nproc > 1 else []
    result = run_zoo(
        "train",
        "--resume",
        str(run),
        "--epochs",
        "3",
        "--quiet",
        *processes,
        preexec_fn=file_size_limit(limit),
        timeout=180,
    )
    assert result.returncode == 2, result.stderr
    assert_one_line_error(result.stderr, f"cannot write '{run / WEIGHTS_FILE}'", "File too large", "--resume")
    assert digests(run, WEIGHTS_FILE, CHECKPOINT_FILE) == before
    assert temporaries(run) == []
    state = load_checkpoint(run / CHECKPOINT_FILE)
    assert (state["epoch"], state["finished"]) == (2, True)
    assert zoo.load(run).state_dict().keys() == tiny_run.model.state_dict().keys()
    records = [json.loads(line) for line in (run / METRICS_FILE).read_text().splitlines()]  # whole lines only
    assert records[-1]["epoch"] == 3

    # With space again, the plain --resume the error suggests finishes the third epoch from
    # the kept checkpoint (which is a finished one: the recipe's 3 epochs say to go on).
    result = run_zoo("train", "--resume", str(run), "--quiet")
    assert result.returncode == 0, result.stderr
    state = load_checkpoint(run / CHECKPOINT_FILE)
    assert (state["epoch"], state["finished"]) == (3, True)
    assert temporaries(run) == []


@pytest.mark.parametrize("existing", [False, True], ids=["new file", "over a file"])
def test_disk_full_while_writing_a_sample_grid_is_one_line_and_keeps_the_old_file(tiny_run, tmp_path, existing):
    out = tmp_path / "grid.png"
    if existing:
        out.write_bytes(b"the grid from before")
    result = run_zoo("sample", str(tiny_run.path), "-n", "64", "-o", str(out), preexec_fn=file_size_limit(64))
    assert result.returncode == 2, result.stderr
    kept = "the previous version is unchanged" if existing else "nothing was written"
    assert_one_line_error(result.stderr, f"cannot write '{out}'", "File too large", kept)
    assert sorted(p.name for p in tmp_path.iterdir()) == (["grid.png"] if existing else [])
    if existing:
        assert out.read_bytes() == b"the grid from before"

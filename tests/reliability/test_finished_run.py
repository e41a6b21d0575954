"""A finished run folder is never modified by later commands: only `--resume` (which refuses
a finished run unless given more epochs) writes into it, and `zoo eval` its own eval.json."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import TINY

pytestmark = pytest.mark.hub


def state(folder: Path) -> dict[str, tuple]:
    """Every entry under `folder` (itself included): bytes' sha256 for files, and the mtime in ns,
    which for a folder changes when anything is created in it, even a temporary file deleted since."""
    entries = {}
    for path in [folder, *sorted(folder.rglob("*"))]:
        info = path.stat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "folder"
        entries[str(path.relative_to(folder))] = (digest, info.st_mtime_ns, info.st_size, info.st_mode)
    return entries


def test_no_later_command_modifies_a_finished_run_folder(hub, tiny_run, tmp_path, cli):
    runs = tmp_path / "runs"
    run = Path(shutil.copytree(tiny_run.path, runs / tiny_run.path.name))
    os.utime(run, ns=(1_000_000_000, 1_000_000_000))  # folder mtimes in the past, so a change shows
    os.utime(run / "samples", ns=(1_000_000_000, 1_000_000_000))
    before = state(run)
    out = tmp_path / "out"
    out.mkdir()
    commands = [
        ["sample", str(run), "-n", "16", "-o", str(out / "s.png")],
        ["sample", str(run), "--seed", "3", "-o", str(out / "s3.png")],
        ["reconstruct", str(run), "-n", "8", "-o", str(out / "r.png")],
        ["push", str(run), "carol/finished"],
        ["pull", "carol/finished"],
        ["sample", "carol/finished", "-o", str(out / "hub.png")],
        ["interpolate", str(run), "--from", "3", "--to", "8", "-o", str(out / "i.png")],
        ["denoise", str(run), "-o", str(out / "d.png")],
        ["inpaint", str(run), "-o", str(out / "p.png")],
        ["anomaly", str(run), "-k", "5"],
        ["encode", str(run), "-o", str(out / "z.npz")],
        ["plot", str(run), "latents", "-o", str(out / "l.png")],
        ["info", "vae"],
        ["list", "--json"],
        ["train", "vae", "--quiet", "--out", str(runs), *[a for o in TINY for a in ("--set", o)], "--epochs", "1"],
    ]
    for args in commands:
        result = cli(*args)
        assert result.exit_code == 0, (args, result.output)
    written = ["d.png", "hub.png", "i.png", "l.png", "p.png", "r.png", "s.png", "s3.png", "z.npz"]
    assert sorted(p.name for p in out.iterdir()) == written
    assert len(list(runs.iterdir())) == 2  # the new run went beside, not into, the finished one
    assert state(run) == before
    result = cli("eval", str(run), "--nll-k", "20")
    assert result.exit_code == 0, result.output
    after = state(run)
    assert after.pop("eval.json")[0] != "folder" and after.pop(".")[0] == "folder"
    before.pop(".")
    assert after == before

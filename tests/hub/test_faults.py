"""Two processes pulling one repo at once, and a Hub that accepts connections but answers
too slowly, against the loopback Hub (tests/hub/server.py)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

import zoo
from tests.conftest import assert_one_line_error, run_zoo
from zoo.modelfile import WEIGHTS_FILE

pytestmark = pytest.mark.hub

PUBLISHED = ("config.json", "model.safetensors", "README.md")


def publish(hub, repo_id: str, run: Path) -> dict[str, bytes]:
    """`run`'s model files as the main branch of a new repo on the loopback Hub (weights through LFS)."""
    files = {name: (run / name).read_bytes() for name in PUBLISHED}
    hub.create_repo(repo_id)
    hub.add_commit(repo_id, "main", files)
    hub.repos[repo_id].lfs.add(WEIGHTS_FILE)
    return files


def cache_digests(home: Path) -> dict[str, str]:
    """Every file under a Hub cache (HF_HOME/hub), by relative path → sha256 (links followed)."""
    root = home / "hub"
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else []
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def test_two_processes_pulling_one_repo_at_once_both_succeed_with_one_consistent_cache_entry(hub, tiny_run, tmp_path):
    files = publish(hub, "erin/shared", tiny_run.path)
    home = tmp_path / "hf"
    env = {**os.environ, "HF_HOME": str(home)}
    # Each pull's HEAD of the weights waits for the other's: both are mid-download together.
    meet = threading.Barrier(2, timeout=240)
    hub.faults["meet"] = (WEIGHTS_FILE, meet)
    try:
        pulls = [
            subprocess.Popen(
                [sys.executable, "-m", "zoo_cli", "pull", "erin/shared"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        outputs = [p.communicate(timeout=300) for p in pulls]
    finally:
        hub.faults.clear()
    assert not meet.broken
    assert [p.returncode for p in pulls] == [0, 0], [err for _, err in outputs]
    folders = {Path(out.strip().splitlines()[-1]) for out, _ in outputs}
    assert len(folders) == 1  # the same snapshot
    (folder,) = folders
    commit = hub.repos["erin/shared"].branches["main"]
    entry = home / "hub" / "models--erin--shared"
    assert folder == entry / "snapshots" / commit
    assert sorted(p.name for p in (entry / "snapshots").iterdir()) == [commit]
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == files
    blobs = sorted((entry / "blobs").iterdir())
    assert len(blobs) == len(files) and not [b for b in blobs if b.suffix == ".incomplete"]
    digest = hashlib.sha256(files[WEIGHTS_FILE]).hexdigest()
    assert all(f"sha256 {digest[:16]}" in out for out, _ in outputs)  # each checked the weights it got
    loaded = zoo.load(folder).state_dict()
    assert all(torch.equal(t, tiny_run.model.state_dict()[k]) for k, t in loaded.items())


def test_a_hub_that_answers_too_slowly_fails_within_the_timeout_and_leaves_the_cache_intact(hub, tiny_run):
    from zoo.hub import pull

    publish(hub, "erin/slow", tiny_run.path)
    publish(hub, "erin/fast", tiny_run.path)
    pull("erin/fast")  # the cache (HF_HOME of the tests, which run_zoo passes on) holds something
    home = Path(os.environ["HF_HOME"])
    before = cache_digests(home)
    assert any("models--erin--fast" in path for path in before)
    hub.faults["delay"] = 60  # accepts the connection, then says nothing for a minute
    started = time.monotonic()
    try:  # a hang would raise TimeoutExpired
        result = run_zoo("pull", "erin/slow", env={"HF_HUB_DOWNLOAD_TIMEOUT": "1"}, timeout=50)
    finally:
        hub.faults.clear()
    assert time.monotonic() - started < 50
    assert result.returncode == 2
    assert_one_line_error(result.stderr, "did not answer within the timeout", "erin/slow", "TIMEOUT=1 s")
    assert cache_digests(home) == before


def test_a_broken_model_on_the_hub_is_named_by_its_repo_not_by_the_cache_path(hub, tiny_run, tmp_path):
    """The snapshot folder deep in the Hub cache means nothing to whoever typed the repo id."""
    import json

    files = publish(hub, "mallory/bad-config", tiny_run.path)
    meta = json.loads(files["config.json"])
    meta["config"]["latent_dim"] = 0
    hub.add_commit("mallory/bad-config", "main", {"config.json": json.dumps(meta).encode()})
    for args in (("pull", "mallory/bad-config"), ("sample", "mallory/bad-config", "-o", str(tmp_path / "s.png"))):
        completed = run_zoo(*args)
        assert completed.returncode == 2
        assert_one_line_error(completed.stderr, "hf-hub:mallory/bad-config/config.json", "latent_dim must be ≥ 1")
        assert "snapshots" not in completed.stderr
    with pytest.raises(zoo.InvalidInputError, match="^hf-hub:mallory/bad-config/config.json: model.latent_dim"):
        zoo.load("mallory/bad-config")

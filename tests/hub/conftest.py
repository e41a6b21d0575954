"""olah (an independent, read-only Hub server) on 127.0.0.1, serving a git repository of a
trained model: commit v1 with model.safetensors as a plain git file (tag v1), then a commit
on main with other weights stored as a git-lfs pointer."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

MODEL_FILES = ("config.json", "model.safetensors", "README.md", "recipe.yaml")


@dataclass
class Olah:
    url: str
    repo: str
    v1: str  # commit sha of the tag v1
    v2: str  # commit sha of main
    files: dict[str, dict[str, bytes]]  # commit → {path: bytes}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t"}
    env["GIT_COMMITTER_EMAIL"] = "t@t"
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True).stdout.strip()


def shifted_weights(path: Path) -> bytes:
    """The same safetensors file with every float tensor shifted by 0.25 (a different, valid model)."""
    from safetensors import safe_open
    from safetensors.torch import save

    with safe_open(str(path), "pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no __iter__)
        metadata = f.metadata()
    return save({k: v + 0.25 if v.is_floating_point() else v for k, v in tensors.items()}, metadata=metadata)


@pytest.fixture(scope="session")
def olah(tiny_run, tmp_path_factory) -> Olah:
    if shutil.which("olah-cli") is None or shutil.which("git") is None:
        pytest.skip("olah-cli (pip install olah) and git are needed")
    root = tmp_path_factory.mktemp("olah")
    repo = root / "mirrors" / "models" / "olah-org" / "tiny-vae"
    repo.mkdir(parents=True)
    _git(repo, "init", "-q", "-b", "main")
    for name in MODEL_FILES:
        shutil.copyfile(tiny_run.path / name, repo / name)
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "v1")
    _git(repo, "tag", "v1")
    v1 = _git(repo, "rev-parse", "HEAD")
    files = {v1: {name: (repo / name).read_bytes() for name in MODEL_FILES}}

    weights = shifted_weights(repo / "model.safetensors")
    oid = hashlib.sha256(weights).hexdigest()
    store = repo / ".git" / "lfs" / "objects" / oid[:2] / oid[2:4]
    store.mkdir(parents=True)
    (store / oid).write_bytes(weights)
    pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {len(weights)}\n"
    (repo / "model.safetensors").write_text(pointer)
    (repo / ".gitattributes").write_text("*.safetensors filter=lfs diff=lfs merge=lfs -text\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "v2: other weights, stored with git-lfs")
    v2 = _git(repo, "rev-parse", "HEAD")
    files[v2] = {**files[v1], "model.safetensors": weights}

    port = free_port()
    config = root / "olah.toml"
    config.write_text(
        "[basic]\n"
        f'host = "127.0.0.1"\nport = {port}\n'
        f'repos-path = "{root / "repos"}"\nmirrors-path = ["{root / "mirrors"}"]\n'
        f'mirror-netloc = "127.0.0.1:{port}"\nmirror-lfs-netloc = "127.0.0.1:{port}"\n'
        "[accessibility]\noffline = true\n"
    )
    log = open(root / "olah.log", "w")  # noqa: SIM115 (open for the server's lifetime)
    process = subprocess.Popen([shutil.which("olah-cli"), "-c", str(config)], cwd=root, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if process.poll() is not None:
                break
            time.sleep(0.1)
    else:
        process.kill()
    if process.poll() is not None:
        pytest.fail(f"olah did not start: {(root / 'olah.log').read_text()[-2000:]}")
    yield Olah(url, "olah-org/tiny-vae", v1, v2, files)
    process.terminate()
    process.wait(timeout=10)
    log.close()


def run_python(code: str, env: dict[str, str], cwd: Path | None = None) -> dict:
    """Run `code` in a fresh interpreter with `env` added (huggingface_hub reads it on import),
    in `cwd` (which is then first on sys.path); the code prints one JSON object last."""
    result = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, text=True, timeout=300, cwd=cwd
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])

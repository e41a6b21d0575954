"""Fixtures many tests share: a small trained run, a CLI runner, an isolated plugin env,
and the loopback Hub every Hub transfer in the tests goes to."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

import zoo
from tests.hub.server import HubServer

#: The token the loopback Hub accepts for writes (HF_TOKEN of the test process).
HUB_TOKEN = "hf_zoo_test_write"
HUB_READ_ONLY_TOKEN = "hf_zoo_test_read"
# huggingface_hub reads its settings when first imported, so they are set here, before any
# test module imports it; subprocesses inherit them. The server binds now and serves once
# the `hub` fixture starts it.
HUB = HubServer(write_token=HUB_TOKEN, read_only_token=HUB_READ_ONLY_TOKEN)
HF_HOME = tempfile.mkdtemp(prefix="zoo-test-hf-")
atexit.register(shutil.rmtree, HF_HOME, ignore_errors=True)
os.environ.update(
    HF_ENDPOINT=HUB.url,
    HF_HOME=HF_HOME,
    HF_TOKEN=HUB_TOKEN,
    HF_HUB_DISABLE_TELEMETRY="1",
    HF_HUB_DISABLE_XET="1",
    HF_HUB_OFFLINE="0",
)
os.environ.pop("HF_HUB_CACHE", None)


@pytest.fixture(scope="session")
def hub():
    """The loopback Hub (tests/hub/server.py) that HF_ENDPOINT points at, serving."""
    HUB.start()
    yield HUB
    HUB.stop()


#: A recipe small enough to train in seconds: digits, 8×8, a few epochs.
TINY = [
    "data=digits",
    "train.epochs=2",
    "train.batch_size=64",
    "model.latent_dim=4",
    "model.hidden_dim=32",
    "model.channels=[8, 16]",
    "train.log_every=5",
]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> zoo.Run:
    """A finished 2-epoch vae run on digits; treat it as read-only (copy it to change it)."""
    return zoo.train("vae", overrides=TINY, out=str(tmp_path_factory.mktemp("runs")))


@pytest.fixture
def cli():
    """Invoke the zoo command in-process: cli("list", "--json") → click Result."""
    from zoo_cli.main import main

    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(main, list(args), catch_exceptions=False)

    return invoke


def run_zoo(
    *args: str,
    env: dict[str, str] | None = None,
    cwd: str | Path | None = None,
    preexec_fn: Callable[[], None] | None = None,
    timeout: float = 600,
) -> subprocess.CompletedProcess:
    """Run the zoo command in a fresh interpreter (for start-up, import and exit-code checks);
    `preexec_fn` runs in the child before zoo starts (to set resource limits)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "zoo_cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=timeout,
        preexec_fn=preexec_fn,
    )


def assert_one_line_error(stderr: str, *words: str) -> None:
    """stderr is one 'error: …' line mentioning each of `words`, with no traceback."""
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error:"), stderr
    assert "Traceback" not in stderr
    for word in words:
        assert word in lines[0], (word, stderr)


def make_plugin_env(
    root: Path,
    name: str,
    module_source: str,
    entry_points: str,
    version: str = "1.0",
    extra_modules: dict[str, str] | None = None,
) -> dict[str, str]:
    """An installed-looking distribution `name` (a .dist-info with entry points and a module,
    plus `extra_modules` by module name) under `root`; returns env vars that put it on a
    subprocess's path."""
    root.mkdir(parents=True, exist_ok=True)
    module = name.replace("-", "_")
    for module_name, source in {module: module_source, **(extra_modules or {})}.items():
        (root / f"{module_name}.py").write_text(textwrap.dedent(source))
    info = root / f"{module}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))
    (info / "RECORD").write_text("".join(f"{m}.py,,\n" for m in [module, *(extra_modules or {})]))
    path = os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return {"PYTHONPATH": path}

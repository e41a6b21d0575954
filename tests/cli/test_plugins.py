"""`zoo plugin new` writes a package that installs, passes its own tests, is listed as
third-party and trains; bad names and occupied folders are refused in one line."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import assert_one_line_error, run_zoo


def test_scaffolded_plugin_installs_passes_its_tests_is_listed_and_trains(tmp_path):
    package = tmp_path / "zoo-ring-vae"
    made = run_zoo("plugin", "new", "ring-vae", "--dir", str(package))
    assert made.returncode == 0, made.stderr
    assert "wrote zoo-ring-vae" in made.stdout
    assert {str(p.relative_to(package)) for p in package.rglob("*") if p.is_file()} == {
        "pyproject.toml",
        "README.md",
        "zoo_ring_vae/__init__.py",
        "zoo_ring_vae/model.py",
        "zoo_ring_vae/recipes/__init__.py",
        "zoo_ring_vae/recipes/mnist.yaml",
        "tests/test_family.py",
    }

    # Install without network, dependency resolution or touching this environment: into a folder.
    site = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--no-build-isolation"]
        + ["--target", str(site), str(package)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stderr
    assert importlib.util.find_spec("zoo_ring_vae") is None
    env = {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}

    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        capture_output=True,
        text=True,
        cwd=package,
        env={**os.environ, **env},
        timeout=300,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "2 passed" in tests.stdout

    listed = run_zoo("list", "--json", env=env)
    ring = next(f for f in json.loads(listed.stdout)["families"] if f["name"] == "ring-vae")
    assert ring["status"] == "ok" and not ring["first_party"]
    assert (ring["package"], ring["version"], ring["recipes"]) == ("zoo-ring-vae", "0.1.0", ["mnist"])
    assert "(third-party)" in run_zoo("list", "ring*", env={**env, "COLUMNS": "200"}).stdout

    out = tmp_path / "runs"
    trained = run_zoo("train", "ring-vae", "--quiet", "--epochs", "1", "--out", str(out), env=env)
    assert trained.returncode == 0, trained.stderr
    (run,) = out.glob("ring-vae-mnist-5k-*")
    end = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()][-1]
    assert end["event"] == "end"
    assert end["nelbo"] < 272  # half of the untrained model's 784·ln 2 = 543 nats per image
    assert end["kl"] > 2  # the code is used: not just the mean image
    config = json.loads((run / "config.json").read_text())
    assert (config["family"], config["package"], config["package_version"]) == ("ring-vae", "zoo-ring-vae", "0.1.0")


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("Ring_VAE", ["'Ring_VAE' is not a valid family name", "lower-case"]),
        ("ring--vae", ["not a valid family name"]),
        ("vae", ["a family named 'vae' is already installed", "package zoo"]),
    ],
)
def test_plugin_new_refuses_invalid_or_taken_names(tmp_path, name, words):
    result = run_zoo("plugin", "new", name, "--dir", str(tmp_path / "pkg"))
    assert result.returncode == 2
    assert_one_line_error(result.stderr, *words)
    assert not (tmp_path / "pkg").exists()


def test_plugin_new_refuses_a_non_empty_folder_and_fills_an_empty_one(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    result = run_zoo("plugin", "new", "ring-vae", "--dir", str(tmp_path / "full"))
    assert result.returncode == 2
    assert_one_line_error(result.stderr, "already exists and is not an empty folder")
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["keep.txt"]

    (tmp_path / "empty").mkdir()
    assert run_zoo("plugin", "new", "ring-vae", "--dir", str(tmp_path / "empty")).returncode == 0
    assert (tmp_path / "empty" / "zoo_ring_vae" / "model.py").is_file()
    assert run_zoo("plugin", "new", "ring-vae", cwd=tmp_path).returncode == 0
    assert (tmp_path / "zoo-ring-vae" / "pyproject.toml").is_file()


def test_plugin_check_of_an_unknown_name_is_a_one_line_error():
    result = run_zoo("plugin", "check", "ringvae")
    assert result.returncode == 2
    assert_one_line_error(result.stderr, "no plugin, family or dataset named 'ringvae'")


def test_plugin_check_shows_zoo_s_own_plugins_ok_by_package_name(cli):
    result = cli("plugin", "check", "zoo")
    assert result.exit_code == 0, result.output
    assert "vae" in result.output and "mnist-5k" in result.output and "all ok" in result.output

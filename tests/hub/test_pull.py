"""Pull from olah, an independent Hub server, by branch, tag and sha; offline use; the catalogue."""

import hashlib
import json

import pytest

from tests.conftest import assert_one_line_error, run_zoo
from tests.hub.conftest import run_python, shifted_weights

pytestmark = pytest.mark.hub

PULL_ALL = """
import hashlib, json, torch, zoo
from zoo.hub import pull

out = {}
for key, source, revision in [("main", "REPO", None), ("tag", "REPO", "v1"), ("sha", "hf-hub:REPO@V1", None)]:
    pulled = pull(source, revision=revision)
    files = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in pulled.path.iterdir() if p.is_file()}
    model = zoo.load(source, revision=revision)
    images = model.sample(4, generator=torch.Generator().manual_seed(0))
    out[key] = {"commit": pulled.commit, "files": files, "samples": float(images.sum()), "path": str(pulled.path)}
print(json.dumps(out))
"""


def digests(files: dict[str, bytes]) -> dict[str, str]:
    return {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}


@pytest.fixture(scope="module")
def pulled(olah, tmp_path_factory):
    """Everything pulled once from olah by branch, tag and sha, with a fresh HF_HOME."""
    home = tmp_path_factory.mktemp("hf-olah")
    env = {"HF_ENDPOINT": olah.url, "HF_HOME": str(home)}
    code = PULL_ALL.replace("REPO", olah.repo).replace("V1", olah.v1)
    return run_python(code, env), env


def test_pull_by_branch_tag_and_sha_gives_byte_identical_files_that_load_and_sample(olah, pulled):
    out, _ = pulled
    assert out["main"]["commit"] == olah.v2  # the branch, with weights stored through git-lfs
    assert out["tag"]["commit"] == out["sha"]["commit"] == olah.v1
    assert out["main"]["files"] == digests(olah.files[olah.v2])
    assert out["tag"]["files"] == out["sha"]["files"] == digests(olah.files[olah.v1])
    assert out["tag"]["samples"] == out["sha"]["samples"] != out["main"]["samples"]
    assert 0 < out["tag"]["samples"] < 4 * 64  # four 8×8 images in [0, 1]


def test_after_a_pull_the_model_works_offline_and_before_it_offline_is_a_clear_error(olah, pulled, tmp_path):
    _, env = pulled
    offline = {**env, "HF_HUB_OFFLINE": "1"}
    result = run_zoo("sample", f"{olah.repo}@v1", "-n", "4", "-o", str(tmp_path / "s.png"), env=offline)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "s.png").is_file()
    result = run_zoo("sample", olah.repo, env={**offline, "HF_HOME": str(tmp_path / "empty")})
    assert result.returncode == 2
    assert_one_line_error(result.stderr, "HF_HUB_OFFLINE", olah.repo, "not in the cache")


def test_catalogue_pins_revision_and_checksum_and_refuses_a_mismatch(hub, tiny_run, tmp_path, monkeypatch):
    from click.testing import CliRunner
    from zoo_cli.main import main

    files = {name: (tiny_run.path / name).read_bytes() for name in ("config.json", "model.safetensors")}
    hub.create_repo("carol/pinned")
    v1 = hub.add_commit("carol/pinned", "main", files)
    v2 = hub.add_commit(
        "carol/pinned", "main", {"model.safetensors": shifted_weights(tiny_run.path / "model.safetensors")}
    )
    good = {"repo": "carol/pinned", "revision": v1, "sha256": digests(files)["model.safetensors"], "family": "vae"}
    bad = {**good, "revision": v2}  # main moved on: its weights are not the pinned ones
    catalogue = tmp_path / "registry.yaml"
    catalogue.write_text(json.dumps({"models": {"tiny-vae": good, "tiny-vae-moved": bad}}))
    monkeypatch.setenv("ZOO_CATALOGUE", str(catalogue))

    result = CliRunner().invoke(main, ["pull", "tiny-vae"])
    assert result.exit_code == 0, result.output
    assert "sha256 matches the catalogue" in result.stdout and v1 in result.stdout.splitlines()[-1]
    assert CliRunner().invoke(main, ["sample", "tiny-vae", "-o", str(tmp_path / "s.png")]).exit_code == 0

    result = CliRunner().invoke(main, ["pull", "tiny-vae-moved"])
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, "tiny-vae-moved", "the catalogue pins", "refusing")
    result = CliRunner().invoke(main, ["pull", "tiny-vae", "--revision", "main"])
    assert_one_line_error(result.stderr, "pinned")


def test_unknown_catalogue_name_gets_did_you_mean(tmp_path, monkeypatch, cli):
    catalogue = tmp_path / "registry.yaml"
    entry = {"repo": "alice/tiny-vae", "revision": "a" * 40, "sha256": "b" * 64, "family": "vae", "dataset": "digits"}
    catalogue.write_text(json.dumps({"models": {"mnist-vae": entry}}))
    monkeypatch.setenv("ZOO_CATALOGUE", str(catalogue))
    listed = json.loads(cli("list", "--json").output)["models"]
    assert [m["name"] for m in listed] == ["mnist-vae"]
    from click.testing import CliRunner
    from zoo_cli.main import main

    result = CliRunner().invoke(main, ["pull", "mnist-vea"])
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, "'mnist-vea'", "did you mean 'mnist-vae'")

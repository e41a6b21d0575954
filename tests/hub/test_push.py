"""Push to the loopback Hub (tests/hub/server.py), pull back, and every failure on the way."""

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import zoo
from tests.conftest import HUB_READ_ONLY_TOKEN, assert_one_line_error, run_zoo
from tests.hub.conftest import free_port, run_python
from zoo.modelfile import WEIGHTS_FILE

pytestmark = pytest.mark.hub

PUBLISHED = {"config.json", "model.safetensors", "README.md", "recipe.yaml", "samples/epoch-002.png"}


def zoo_cli(*args: str):
    """The zoo command in-process; stderr kept apart."""
    from zoo_cli.main import main

    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(folder.rglob("*"))}


def cache_files() -> list[str]:
    from huggingface_hub import constants

    return sorted(str(p) for p in Path(constants.HF_HUB_CACHE).rglob("*") if p.is_file() or p.is_symlink())


def assert_cache_holds_whole_files(hub) -> None:
    """Every file in the Hub cache's snapshots is byte-identical to the server's; no partial blobs."""
    files = cache_files()
    assert not [f for f in files if f.endswith(".incomplete")]
    for f in files:
        if "/snapshots/" not in f:
            continue
        repo_dir, rest = f.split("/hub/models--", 1)[1].split("/snapshots/", 1)
        commit, path = rest.split("/", 1)
        tree = hub.repos[repo_dir.replace("--", "/")].commits[commit]
        assert Path(f).read_bytes() == tree[path], f


@pytest.fixture(scope="module")
def pushed(hub, tiny_run):
    """tiny_run pushed as alice/tiny-vae with the CLI; the run folder's state before it."""
    before = snapshot(tiny_run.path)
    result = zoo_cli("push", str(tiny_run.path), "alice/tiny-vae", "--message", "first model")
    assert result.exit_code == 0, result.output
    return result, before


def test_push_uploads_the_model_folder_only_and_leaves_the_run_untouched(hub, tiny_run, pushed):
    result, before = pushed
    repo = hub.repos["alice/tiny-vae"]
    tree = repo.commits[repo.branches["main"]]
    assert set(tree) - {".gitattributes"} == PUBLISHED  # no checkpoint, metrics.jsonl or loss.png
    assert tree["model.safetensors"] == (tiny_run.path / WEIGHTS_FILE).read_bytes()
    assert repo.lfs == {"model.safetensors", "samples/epoch-002.png"}  # LFS path; config/card/recipe inline
    card = tree["README.md"].decode()
    assert 'zoo.load("alice/tiny-vae")' in card and "zoo pull alice/tiny-vae" in card
    assert "zoo sample alice/tiny-vae -n 64 -o samples.png" in card
    assert "![samples](samples/epoch-002.png)" in card and "library_name: zoo" in card
    assert "license: apache-2.0" in card and "model-index" in card and "- digits" in card
    assert json.loads(tree["config.json"])["package"] == "zoo"
    assert f"commit {repo.branches['main'][:12]}" in result.output
    assert snapshot(tiny_run.path) == before


def test_pull_after_push_round_trips_bit_for_bit(hub, tiny_run, pushed, tmp_path):
    result = zoo_cli("pull", "alice/tiny-vae")
    assert result.exit_code == 0, result.output
    folder = Path(result.output.strip().splitlines()[-1])
    assert (folder / WEIGHTS_FILE).read_bytes() == (tiny_run.path / WEIGHTS_FILE).read_bytes()
    model = zoo.load("alice/tiny-vae")
    original = tiny_run.model.state_dict()
    assert all(torch.equal(t, original[k]) for k, t in model.state_dict().items())
    same = [m.sample(8, generator=torch.Generator().manual_seed(5)) for m in (model, tiny_run.model)]
    assert torch.equal(*same)
    for source, name in ((tiny_run.path, "run.png"), ("hf-hub:alice/tiny-vae", "hub.png")):
        assert zoo_cli("sample", str(source), "--seed", "2", "-o", str(tmp_path / name)).exit_code == 0
    assert (tmp_path / "run.png").read_bytes() == (tmp_path / "hub.png").read_bytes()


def test_push_to_a_branch_of_a_private_repo_and_load_that_revision(hub, tiny_run, tmp_path):
    result = zoo_cli("push", str(tiny_run.path), "alice/private-vae", "--private", "--branch", "dev", "-m", "dev")
    assert result.exit_code == 0, result.output
    repo = hub.repos["alice/private-vae"]
    assert repo.private and set(repo.branches) == {"main", "dev"}
    assert "model.safetensors" not in repo.commits[repo.branches["main"]]
    card = repo.commits[repo.branches["dev"]]["README.md"].decode()  # the usage names the branch
    assert 'zoo.load("alice/private-vae@dev")' in card and "zoo pull alice/private-vae@dev" in card
    assert zoo.load("alice/private-vae", revision="dev").name == "vae"
    result = zoo_cli("reconstruct", "alice/private-vae@dev", "-n", "4", "-o", str(tmp_path / "r.png"))
    assert result.exit_code == 0 and (tmp_path / "r.png").is_file()  # data (digits) taken from config.json


def test_push_to_hub_and_save_pretrained_from_python(hub, tmp_path):
    model = zoo.create("vae", input_shape=(1, 8, 8), latent_dim=3, channels=[4], hidden_dim=0)
    folder = model.save_pretrained(tmp_path / "fresh")
    assert {p.name for p in folder.rglob("*")} >= {"config.json", "model.safetensors", "README.md", "samples.png"}
    pushed = model.push_to_hub("alice/fresh-vae", message="untrained")
    assert pushed.commit == hub.repos["alice/fresh-vae"].branches["main"]
    assert "samples/samples.png" in pushed.files
    loaded = zoo.load("hf-hub:alice/fresh-vae")
    assert all(torch.equal(t, model.state_dict()[k]) for k, t in loaded.state_dict().items())


PLAIN_LOADER = """
import hashlib, json, sys
import torch
from huggingface_hub import hf_hub_download
from safetensors.torch import load_file
from zoo_vae.model import VAE, VAEConfig

config = json.load(open(hf_hub_download("alice/tiny-vae", "config.json")))
assert config["family"] == "vae" and config["package"] == "zoo"
fields = {k: tuple(v) if k == "input_shape" else v for k, v in config["config"].items()}
model = VAE(VAEConfig(**fields))
model.load_state_dict(load_file(hf_hub_download("alice/tiny-vae", "model.safetensors")))
digest = hashlib.sha256(b"".join(t.numpy().tobytes() for _, t in sorted(model.state_dict().items())))
hub_code = sorted(m for m in sys.modules if m in ("zoo.hub", "zoo.modelfile", "zoo.names", "zoo.catalogue"))
print(json.dumps({"digest": digest.hexdigest(), "hub_code": hub_code}))
"""


def test_a_pushed_repo_loads_with_huggingface_hub_safetensors_and_the_family_config_alone(hub, tiny_run, pushed):
    out = run_python(PLAIN_LOADER, {})
    expected = hashlib.sha256(b"".join(t.numpy().tobytes() for _, t in sorted(tiny_run.model.state_dict().items())))
    assert out == {"digest": expected.hexdigest(), "hub_code": []}


# ---------------------------------------------------------------- failures
def _model_files(tiny_run) -> dict[str, bytes]:
    return {name: (tiny_run.path / name).read_bytes() for name in ("config.json", "model.safetensors")}


@pytest.fixture(scope="module")
def broken_repos(hub, tiny_run):
    """Repos that are wrong in one way each."""
    files = _model_files(tiny_run)
    config = json.loads(files["config.json"])
    ring = {**config, "family": "ring-vae", "package": "zoo-ring-vae"}
    shapes = {**config, "config": {**config["config"], "latent_dim": 5}}
    contents = {
        "bob/pickled": {"config.json": files["config.json"], "pytorch_model.bin": b"\x80\x04pickle"},
        "bob/ring": {**files, "config.json": json.dumps(ring).encode()},
        "bob/shapes": {**files, "config.json": json.dumps(shapes).encode()},
        "bob/truncated": files,
    }
    for repo_id, tree in contents.items():
        hub.create_repo(repo_id)
        hub.add_commit(repo_id, "main", tree)
        hub.repos[repo_id].lfs.add("model.safetensors")
    return contents


@pytest.mark.parametrize(
    ("args", "words", "env"),
    [
        (["pull", "bob/missing"], ["no repository bob/missing"], {}),
        (["pull", "alice/tiny-vae", "--revision", "nope"], ["no revision 'nope'"], {}),
        (["sample", "bob/pickled"], ["not a zoo model", "no model.safetensors"], {}),
        (["pull", "bob/ring"], ["'ring-vae'", "pip install zoo-ring-vae"], {}),
        (["pull", "bob/shapes"], ["model.safetensors", "the model needs"], {}),
        (["push", "RUN", "alice/new-repo"], ["not authorised", "HF_TOKEN"], {"HF_TOKEN": ""}),
        (["push", "RUN", "alice/tiny-vae"], ["forbidden", "permission"], {"HF_TOKEN": HUB_READ_ONLY_TOKEN}),
        (["pull", "hf-hub:../etc"], ["not a Hub repo id"], {}),
        (["pull", "alice/tiny-vae@../../x"], ["not a valid revision"], {}),
        (["push", "RUN", "alice/a/b"], ["not a Hub repo id"], {}),
        (["push", "RUN", "alice/x", "--branch", "../main"], ["not a valid revision"], {}),
        (["pull", "RUN"], ["is a local folder"], {}),
        (["sample", "vae"], ["not a local folder", "is a family"], {}),
    ],
)
def test_hub_errors_are_one_line_exit_2_and_leave_cache_and_run_intact(
    hub, tiny_run, pushed, broken_repos, args, words, env, monkeypatch
):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    args = [str(tiny_run.path) if a == "RUN" else a for a in args]
    run_before, commits = snapshot(tiny_run.path), dict(hub.repos["alice/tiny-vae"].branches)
    result = zoo_cli(*args)
    assert result.exit_code == 2, result.output
    assert_one_line_error(result.stderr, *words)
    assert result.stdout == ""
    assert snapshot(tiny_run.path) == run_before
    assert hub.repos["alice/tiny-vae"].branches == commits
    assert_cache_holds_whole_files(hub)


def test_malformed_names_make_no_request(hub, tiny_run):
    count = len(hub.requests)
    for args in (["pull", "hf-hub:a/../b"], ["push", str(tiny_run.path), "x/y/z"], ["sample", "u/n@.."]):
        assert zoo_cli(*args).exit_code == 2
    assert len(hub.requests) == count


def test_a_truncated_download_is_an_error_and_leaves_no_partial_file(hub, broken_repos):
    hub.faults["truncate"] = True
    try:  # a fresh process, so that huggingface_hub's retry warnings would show if zoo let them through
        result = run_zoo("pull", "bob/truncated")
    finally:
        hub.faults.clear()
    assert result.returncode == 2
    assert_one_line_error(result.stderr, "bob/truncated", "RemoteProtocolError")
    assert not [f for f in cache_files() if "bob--truncated" in f and ("snapshots" in f or "incomplete" in f)]
    assert zoo_cli("pull", "bob/truncated").exit_code == 0  # and a later pull starts afresh


def test_a_server_error_and_no_network_are_clear(hub, tiny_run, broken_repos, tmp_path):
    hub.faults["status"] = 500
    try:
        result = zoo_cli("pull", "carol/never-pulled")
    finally:
        hub.faults.clear()
    assert_one_line_error(result.stderr, "carol/never-pulled", "500")
    # With a cached copy huggingface_hub serves that one; with an empty cache there is nothing to use.
    nowhere = {"HF_ENDPOINT": f"http://127.0.0.1:{free_port()}", "HF_HOME": str(tmp_path / "hf")}
    result = run_zoo("pull", "alice/tiny-vae", env=nowhere)
    assert result.returncode == 2
    assert_one_line_error(result.stderr, "cannot reach the Hub", "HF_ENDPOINT")


def test_push_refuses_a_folder_that_does_not_load(hub, tiny_run, tmp_path):
    run = shutil.copytree(tiny_run.path, tmp_path / "run")
    (run / WEIGHTS_FILE).write_bytes(b"junk")
    count = len(hub.requests)
    result = zoo_cli("push", str(run), "alice/junk")
    assert result.exit_code == 2 and "not a readable safetensors file" in result.stderr
    assert len(hub.requests) == count and "alice/junk" not in hub.repos


def test_a_push_replaces_what_an_earlier_push_published_and_keeps_other_files(hub, tiny_run, tmp_path):
    """An eval.json, recipe or sample grid of earlier weights must not stay beside new ones."""
    run = shutil.copytree(tiny_run.path, tmp_path / "run")
    from zoo.evaluation.report import FORMAT

    (run / "eval.json").write_text(json.dumps({"format": FORMAT, "data": "digits", "metrics": {"mse": 0.5}}))
    assert zoo_cli("push", str(run), "alice/replaced").exit_code == 0
    repo = hub.repos["alice/replaced"]
    first = repo.commits[repo.branches["main"]]
    assert {"eval.json", "recipe.yaml", "samples/epoch-002.png"} <= set(first) and "mse" in first["README.md"].decode()
    hub.add_commit("alice/replaced", "main", {"LICENSE": b"MIT\n"})
    model = zoo.create("vae", input_shape=(1, 8, 8), latent_dim=3, channels=[4], hidden_dim=0)
    pushed = model.push_to_hub("alice/replaced")
    tree = repo.commits[repo.branches["main"]]
    assert set(tree) - {".gitattributes"} == {*pushed.files, "LICENSE"}
    assert set(pushed.files) == {"config.json", "model.safetensors", "README.md", "samples/samples.png"}
    assert "mse" not in tree["README.md"].decode()  # the card speaks of the new weights only


def test_private_refuses_an_existing_public_repo_before_uploading(hub, tiny_run, pushed):
    repo = hub.repos["alice/tiny-vae"]
    commit = repo.branches["main"]
    result = zoo_cli("push", str(tiny_run.path), "alice/tiny-vae", "--private")
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, "alice/tiny-vae exists and is public", "--private")
    assert repo.branches["main"] == commit and not repo.private


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ("link out", ["samples/epoch-002.png", "not a file inside"]),
        ("checkpoint", ["checkpoint.safetensors", "publishes only .png"]),
    ],
)
def test_a_card_may_show_only_image_files_inside_the_folder(hub, tiny_run, tmp_path, change, words):
    run = shutil.copytree(tiny_run.path, tmp_path / "run")
    if change == "link out":
        (tmp_path / "secret.png").write_bytes(b"not for the Hub")
        (run / "samples" / "epoch-002.png").unlink()
        (run / "samples" / "epoch-002.png").symlink_to(tmp_path / "secret.png")
    else:
        card = (run / "README.md").read_text()
        (run / "README.md").write_text(card.replace("samples/epoch-002.png", "checkpoint.safetensors"))
    count = len(hub.requests)
    result = zoo_cli("push", str(run), "alice/leak")
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, *words)
    assert len(hub.requests) == count and "alice/leak" not in hub.repos


def test_push_while_offline_says_so(hub, tiny_run):
    result = run_zoo("push", str(tiny_run.path), "alice/offline", env={"HF_HUB_OFFLINE": "1"})
    assert result.returncode == 2
    assert_one_line_error(result.stderr, "HF_HUB_OFFLINE is set", "pushing to alice/offline")
    assert "alice/offline" not in hub.repos


def test_a_pull_that_falls_back_on_the_cache_says_so(hub, pushed):
    """huggingface_hub hands back the cached copy of a branch when the Hub does not answer,
    without a word; the copy may be older than the repo."""
    first = zoo_cli("pull", "alice/tiny-vae")
    assert first.exit_code == 0 and "note:" not in first.stderr
    nowhere = {"HF_ENDPOINT": f"http://127.0.0.1:{free_port()}"}
    again = run_zoo("pull", "alice/tiny-vae", env=nowhere)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[-1] == first.stdout.splitlines()[-1]  # the same snapshot folder
    assert again.stderr.startswith("note: the Hub did not answer (") and "the copy in the cache" in again.stderr
    pinned = run_zoo("pull", f"alice/tiny-vae@{hub.repos['alice/tiny-vae'].branches['main']}", env=nowhere)
    assert pinned.returncode == 0 and pinned.stderr == ""  # a commit never changes: nothing to say


def test_push_refuses_an_eval_json_of_other_weights(hub, tiny_run, tmp_path):
    """eval.json outlived further training (`--resume --epochs N`) and its figures went into
    the card of weights they were not measured on."""
    run = shutil.copytree(tiny_run.path, tmp_path / "run")
    other = zoo.create("vae", **{k: v for k, v in tiny_run.model.config_dict().items()})
    zoo.evaluate(other, zoo.load_dataset("digits"), "recon").write(run / "eval.json")
    count = len(hub.requests)
    result = zoo_cli("push", str(run), "alice/stale-eval")
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, "eval.json holds figures of other weights", "zoo eval")
    assert len(hub.requests) == count
    zoo.evaluate(tiny_run.model, zoo.load_dataset("digits"), "recon").write(run / "eval.json")
    assert zoo_cli("push", str(run), "alice/stale-eval").exit_code == 0

import json
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from tests.conftest import TINY, assert_one_line_error, run_zoo
from zoo.modelfile import WEIGHTS_FILE


def test_help_works_on_every_command(cli):
    commands = [[], ["list"], ["info"], ["train"], ["sample"], ["reconstruct"], ["push"], ["pull"], ["plugin"]]
    commands += [["plugin", "new"], ["plugin", "check"]]
    for command in commands:
        result = cli(*command, "--help")
        assert result.exit_code == 0 and "Usage:" in result.output


def test_cli_start_up_imports_neither_torch_nor_plugins():
    heavy = "('torch', 'timm', 'zoo_vae', 'matplotlib')"
    code = f"import sys, zoo_cli.main; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_list_shows_families_recipes_and_datasets(cli):
    data = json.loads(cli("list", "--json").output)
    vae = next(f for f in data["families"] if f["name"] == "vae")
    assert vae["status"] == "ok" and vae["first_party"] and {"mnist", "digits"} <= set(vae["recipes"])
    assert {"mnist-5k", "digits"} <= {d["name"] for d in data["datasets"]}
    assert data["models"] == []
    table = cli("list").output
    assert "vae" in table and "mnist-5k" in table and "Datasets" in table
    assert json.loads(cli("list", "mnist*", "--json").output)["families"] == []


def test_info_shows_config_fields_and_capabilities(cli):
    data = json.loads(cli("info", "vae", "--json").output)
    assert {f["name"] for f in data["config"]} >= {"latent_dim", "beta", "channels", "input_shape"}
    assert data["capabilities"] == ["sample", "reconstruct", "encode", "decode", "nll"]
    assert "latent_dim" in cli("info", "vae").output


def test_train_sample_reconstruct_end_to_end(cli, tmp_path):
    result = cli("train", "vae", "--quiet", "--out", str(tmp_path / "runs"), *[a for o in TINY for a in ("--set", o)])
    assert result.exit_code == 0, result.output
    assert "nelbo" in result.output and "run folder:" in result.output
    (run,) = (tmp_path / "runs").iterdir()

    result = cli("sample", str(run), "-n", "16", "-o", str(tmp_path / "s.png"))
    assert result.exit_code == 0, result.output
    grid = np.asarray(Image.open(tmp_path / "s.png").convert("L"))
    assert grid.shape == (42 * 7, 42 * 7)  # 4×4 tiles of 8×8 px with 2 px padding, enlarged 7×
    assert grid.std() > 20  # not blank

    result = cli("reconstruct", str(run), "-n", "8", "-o", str(tmp_path / "r.png"))
    assert result.exit_code == 0, result.output
    picture = np.asarray(Image.open(tmp_path / "r.png").convert("L")).astype(float)
    # 4 columns: 2 rows of originals, a blank row, 2 rows of reconstructions
    assert picture.shape == (52 * 7, 42 * 7)
    tile = 10 * 7
    originals, separator, reconstructions = (
        picture[: 2 * tile],
        picture[2 * tile : 3 * tile],
        picture[3 * tile : 5 * tile],
    )
    assert separator.min() == 255 and originals.std() > 20 and reconstructions.std() > 20


def test_same_seed_samples_are_identical_and_the_run_is_untouched(cli, tiny_run, tmp_path):
    before = {p.name: p.stat().st_mtime_ns for p in tiny_run.path.rglob("*")}
    for name in ("a.png", "b.png"):
        assert cli("sample", str(tiny_run.path), "--seed", "3", "-o", str(tmp_path / name)).exit_code == 0
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    assert {p.name: p.stat().st_mtime_ns for p in tiny_run.path.rglob("*")} == before


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["train", "vea"], ["no family named 'vea'", "did you mean 'vae'"]),
        (["train", "vae", "--set", "model.bta=3"], ["unknown key 'model.bta'", "beta"]),
        (["train", "vae", "--set", "train.epochs=zero"], ["train.epochs must be an integer"]),
        (["train", "vae", "--recipe", "nope"], ["no recipe 'nope'"]),
        (["train", "vae", "--data", "cifar"], ["no dataset named 'cifar'"]),
        (["train", "vae", "--device", "cuda:7"], ["cuda"]),
        (["train", "vae", "--device", "tpu"], ["device 'tpu'"]),
        (["train", "--resume", "/nonexistent/run"], ["is not a zoo run folder"]),
        (["sample", "/nonexistent/run"], ["no model folder at '/nonexistent/run'"]),
        (["info", "gann"], ["no family named 'gann'"]),
    ],
)
def test_user_errors_are_one_red_line_exit_2(args, words):
    result = run_zoo(*args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert_one_line_error(result.stderr, *words)


@pytest.mark.parametrize("command", ["train vae", "sample RUN", "eval RUN", "denoise RUN"])
@pytest.mark.parametrize("seed", ["-1", "4294967296", "99999999999999999999"])
def test_seeds_outside_32_bits_are_refused_as_usage_errors(cli, tiny_run, command, seed):
    """A recipe's range (numpy's legacy seeding takes 32 bits); torch's int64 overflowed past it."""
    args = [str(tiny_run.path) if a == "RUN" else a for a in command.split()]
    result = cli(*args, "--seed", seed)
    assert result.exit_code == 2
    words = f"Invalid value for '--seed': {seed} is not in the range 0<=x<=4294967295", f"{args[0]} --help)"
    assert_one_line_error(result.stderr, *words)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--bogus"], ["No such option '--bogus'", "zoo_cli --help)"]),
        (["sampel"], ["No such command 'sampel'", "Did you mean 'sample'", "zoo_cli --help)"]),
        (["train", "--bogus"], ["No such option '--bogus'", "zoo_cli train --help)"]),
        (["sample"], ["Missing argument 'MODEL'", "zoo_cli sample --help)"]),
        (["plugin", "check", "x", "--rows", "3"], ["No such option '--rows'", "zoo_cli plugin check --help)"]),
    ],
)
def test_usage_errors_are_one_line_naming_the_help_to_read(args, words):
    result = run_zoo(*args)
    assert result.returncode == 2
    assert_one_line_error(result.stderr, *words)
    assert result.stdout == ""


def test_a_command_group_without_a_command_shows_its_help():
    result = run_zoo("plugin")
    assert "Commands:" in result.stderr and "check" in result.stderr and "error:" not in result.stderr


def test_corrupt_weights_and_bad_output_path_are_one_line_errors_and_nothing_is_lost(tiny_run, tmp_path):
    run = shutil.copytree(tiny_run.path, tmp_path / "run")
    result = run_zoo("sample", str(run), "-o", str(tmp_path / "no" / "such" / "dir.png"))
    assert result.returncode == 2
    assert_one_line_error(result.stderr, "does not exist")
    result = run_zoo("sample", str(run), "-o", str(tmp_path / "grid.jpg"))
    assert_one_line_error(result.stderr, "must end in .png")

    weights = run / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:100])
    damaged = weights.read_bytes()
    result = run_zoo("sample", str(run), "-o", str(tmp_path / "x.png"))
    assert result.returncode == 2
    assert_one_line_error(result.stderr, "model.safetensors", "not a readable safetensors file")
    assert weights.read_bytes() == damaged and not (tmp_path / "x.png").exists()


def test_ctrl_c_saves_exits_zero_and_resume_finishes(tmp_path):
    out = tmp_path / "runs"
    args = [
        sys.executable,
        "-m",
        "zoo_cli",
        "train",
        "vae",
        "--out",
        str(out),
        "--quiet",
        *[a for o in [*TINY, "train.epochs=20", "train.log_every=1"] for a in ("--set", o)],
    ]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(out.glob("*/metrics.jsonl")):
        time.sleep(0.2)
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    assert "interrupted at step" in stdout and "zoo train --resume" in stdout
    (run,) = out.iterdir()
    result = run_zoo("train", "--resume", str(run), "--quiet")
    assert result.returncode == 0, result.stderr
    assert "nelbo" in result.stdout


def test_image_models_refuse_an_npy_output_before_any_work(cli, tiny_run, tmp_path):
    result = cli("sample", str(tiny_run.path), "-o", str(tmp_path / "s.npy"))
    assert result.exit_code == 2 and "must end in .png" in result.output
    assert not (tmp_path / "s.npy").exists()


def test_help_says_which_splits_and_revision_the_commands_use(cli):
    def help_text(command: str) -> str:
        return " ".join(cli(command, "--help").output.split())

    assert "its train and test splits" in help_text("encode")
    assert "--split picks" in help_text("anomaly") and "test split" not in help_text("anomaly")
    assert "Default: the one the file records for its model" in help_text("decompress")

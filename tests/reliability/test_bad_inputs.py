"""The bad-input matrix: each case hands zoo something broken and checks the exit code
(2), a one-line message naming the problem, no traceback, and that no file in the run
folder was lost or modified."""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file, save_file

Case = tuple[str, Callable[[Path, Path], list[str]], list[str]]


def snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def weights_edit(edit: Callable[[dict], dict]) -> Callable[[Path, Path], list[str]]:
    def setup(run: Path, tmp: Path) -> list[str]:
        tensors = load_file(str(run / "model.safetensors"))
        save_file(edit(tensors), str(run / "model.safetensors"))
        return ["sample", str(run), "-o", str(tmp / "out.png")]

    return setup


def weights_bytes(make: Callable[[bytes], bytes]) -> Callable[[Path, Path], list[str]]:
    def setup(run: Path, tmp: Path) -> list[str]:
        path = run / "model.safetensors"
        path.write_bytes(make(path.read_bytes()))
        return ["sample", str(run), "-o", str(tmp / "out.png")]

    return setup


def config_edit(edit: Callable[[dict], object], *args: str) -> Callable[[Path, Path], list[str]]:
    """Edit config.json, then run `args` (RUN and TMP replaced; default: sample RUN)."""

    def setup(run: Path, tmp: Path) -> list[str]:
        meta = json.loads((run / "config.json").read_text())
        edit(meta)
        (run / "config.json").write_text(json.dumps(meta))
        command = args or ("sample", "RUN", "-o", "TMP/out.png")
        return [a.replace("RUN", str(run)).replace("TMP", str(tmp)) for a in command]

    return setup


def file_write(name: str, content: str | bytes, args: list[str]) -> Callable[[Path, Path], list[str]]:
    def setup(run: Path, tmp: Path) -> list[str]:
        path = run / name
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
        return [a.replace("RUN", str(run)).replace("TMP", str(tmp)) for a in args]

    return setup


def argv(*args: str) -> Callable[[Path, Path], list[str]]:
    return lambda run, tmp: [a.replace("RUN", str(run)).replace("TMP", str(tmp)) for a in args]


def png(height: int, width: int = 8, seed: int = 0) -> bytes:
    """A grey PNG of random pixels."""
    import io

    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 256, (height, width), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def float_tiff_with_nan() -> bytes:
    """A 32-bit float (mode F) TIFF, 8×8, with one NaN pixel: the one image format here that holds NaN."""
    import io

    import numpy as np
    from PIL import Image

    pixels = np.full((8, 8), 0.5, dtype=np.float32)
    pixels[3, 4] = np.nan
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="F").save(buffer, format="TIFF")
    return buffer.getvalue()


def image_folder(files: dict[str, bytes]) -> Callable[[Path, Path], list[str]]:
    """Train on `folder:TMP/images` holding `files` (name → bytes)."""

    def setup(run: Path, tmp: Path) -> list[str]:
        folder = tmp / "images"
        folder.mkdir()
        for name, data in files.items():
            (folder / name).write_bytes(data)
        return [*TRAIN, "--data", f"folder:{folder}", "--batch-size", "2"]

    return setup


#: Ten good 8×8 images, to which each data case adds its fault.
GOOD_IMAGES = {f"{i}.png": png(8, seed=i) for i in range(10)}


def nan_digits():  # -> Splits
    """digits with one NaN pixel in the training split (the loader of the 'nan-digits' dataset)."""
    from zoo.datasets.builtin import load_digits

    splits = load_digits()
    splits.train.x[5, 0, 2, 3] = float("nan")
    return splits


def _pickle_bytes(_: bytes) -> bytes:
    return pickle.dumps({"weight": [1.0, 2.0]})


def _zip_bytes(_: bytes) -> bytes:
    import io

    buffer = io.BytesIO()
    torch.save({"w": torch.zeros(3)}, buffer)
    return buffer.getvalue()


def _drop_first(t: dict) -> dict:
    return dict(list(t.items())[1:])


def _reshape_first(t: dict) -> dict:
    key = next(iter(t))
    return {**t, key: torch.zeros(t[key].numel() + 1)}


def _to_double(t: dict) -> dict:
    return {k: v.double() for k, v in t.items()}


def _nan_first(t: dict) -> dict:
    key = next(k for k, v in t.items() if v.is_floating_point())
    return {**t, key: torch.full_like(t[key], float("nan"))}


TRAIN = ["train", "vae", "--quiet", "--out", "TMP/runs"]

CASES: list[Case] = [
    # weights
    ("weights truncated", weights_bytes(lambda b: b[: len(b) // 2]), ["model.safetensors", "not a readable"]),
    ("weights empty", weights_bytes(lambda b: b""), ["model.safetensors", "not a readable"]),
    ("weights header garbage", weights_bytes(lambda b: b"\x07" * 8 + b[8:]), ["not a readable"]),
    ("weights header length huge", weights_bytes(lambda b: struct.pack("<Q", 2**62) + b[8:]), ["not a readable"]),
    ("weights header not json", weights_bytes(lambda b: b[:8] + b"{" * 10 + b[18:]), ["not a readable"]),
    ("weights are a pickle", weights_bytes(_pickle_bytes), ["not a readable"]),
    ("weights are a torch zip", weights_bytes(_zip_bytes), ["not a readable"]),
    (
        "weights extra tensor",
        weights_edit(lambda t: {**t, "extra.weight": torch.zeros(2)}),
        ["unexpected extra.weight"],
    ),
    ("weights missing tensor", weights_edit(_drop_first), ["does not fit this model", "missing"]),
    ("weights mis-shaped", weights_edit(_reshape_first), ["the model needs"]),
    ("weights wrong dtype", weights_edit(_to_double), ["torch.float64", "the model needs torch.float32"]),
    ("weights NaN", weights_edit(_nan_first), ["NaN or infinite"]),
    (
        "weights file missing",
        lambda run, tmp: [(run / "model.safetensors").unlink(), "sample", str(run)][1:],
        ["missing weights file"],
    ),
    # configs
    (
        "config missing",
        lambda run, tmp: [(run / "config.json").unlink(), "sample", str(run)][1:],
        ["not a model folder"],
    ),
    ("config not json", file_write("config.json", "{family: vae", ["sample", "RUN"]), ["not valid JSON"]),
    ("config not an object", file_write("config.json", "[1, 2]", ["sample", "RUN"]), ["JSON object"]),
    ("config unknown family", config_edit(lambda m: m.update(family="vea")), ["no family named 'vea'", "'vae'"]),
    ("config unknown key", config_edit(lambda m: m["config"].update(latent=3)), ["unknown key 'model.latent'"]),
    ("config wrong type", config_edit(lambda m: m["config"].update(latent_dim="four")), ["must be an integer"]),
    ("config out of range", config_edit(lambda m: m["config"].update(beta=-2.0)), ["beta must be ≥ 0"]),
    ("config newer format", config_edit(lambda m: m.update(format_version=7)), ["format version 7", "upgrade"]),
    (
        "config format version not an integer",
        config_edit(lambda m: m.update(format_version="1")),
        ['format_version must be an integer, got "1"'],
    ),
    (
        "config data not a name (reconstruct)",
        config_edit(lambda m: m.update(data=5), "reconstruct", "RUN", "-o", "TMP/r.png"),
        ["'data' must be a dataset name", "got 5"],
    ),
    (
        "config data not a name (eval)",
        config_edit(lambda m: m.update(data=[1]), "eval", "RUN"),
        ["'data' must be a dataset name", "got [1]"],
    ),
    (
        "config newer plugin",
        config_edit(lambda m: (m.update(package_version="9.0"), m["config"].update(new_knob=1))),
        ["unknown key 'model.new_knob'", "saved by zoo 9.0"],
    ),
    # recipes and overrides
    ("recipe bad yaml", file_write("r.yaml", "train: [1,\n", [*TRAIN, "--recipe", "RUN/r.yaml"]), ["not valid YAML"]),
    ("recipe not mapping", file_write("r.yaml", "- 1\n", [*TRAIN, "--recipe", "RUN/r.yaml"]), ["YAML mapping"]),
    ("recipe file missing", argv(*TRAIN, "--recipe", "TMP/none.yaml"), ["no recipe file"]),
    ("recipe name unknown", argv(*TRAIN, "--recipe", "mnst"), ["no recipe 'mnst'", "did you mean 'mnist'"]),
    (
        "recipe unknown key",
        file_write("r.yaml", "trian: {}\n", [*TRAIN, "--recipe", "RUN/r.yaml"]),
        ["unknown key 'trian'", "'train'"],
    ),
    ("set unknown path", argv(*TRAIN, "--set", "train.optimizer.lrr=1"), ["unknown key", "'lr'"]),
    ("set wrong type", argv(*TRAIN, "--set", "train.batch_size=big"), ["train.batch_size must be an integer"]),
    ("set out of range", argv(*TRAIN, "--set", "train.epochs=0"), ["train.epochs must be ≥ 1"]),
    ("set no equals", argv(*TRAIN, "--set", "model.beta"), ["key=value"]),
    ("set into a value", argv(*TRAIN, "--set", "seed.x=1"), ["'seed' is not a section"]),
    ("set seed past 32 bits", argv(*TRAIN, "--set", "seed=99999999999999999999"), ["seed must be in 0..4294967295"]),
    (
        "interpolate from a class past int64",
        argv("interpolate", "RUN", "--from", "99999999999999999999", "--to", "3", "-o", "TMP/i.png"),
        ["classes 0..9, not 99999999999999999999"],
    ),
    ("set model to a value", argv("sample", "RUN", "-o", "TMP/q.png", "--set", "model=3"), ["'model' is a section"]),
    # a slip of -o replaced the model's own files: its weights, config or pictures
    ("-o onto the weights", argv("compress", "RUN", "-o", "RUN/model.safetensors"), ["is a file of the model folder"]),
    (
        "eval -o onto config.json",
        argv("eval", "RUN", "-m", "recon", "-o", "RUN/config.json"),
        ["config.json", "is a file of the model folder"],
    ),
    (
        "sample -o onto the loss plot",
        argv("sample", "RUN", "-o", "RUN/loss.png"),
        ["loss.png", "is a file of the model folder"],
    ),
    (
        "eval too few fid samples",
        argv("eval", "RUN", "-m", "fid", "--fid-samples", "3"),
        ["--fid-samples 3 is too few"],
    ),
    ("set unknown optimizer", argv(*TRAIN, "--set", "train.optimizer.name=adamm"), ["no optimizer 'adamm'"]),
    ("set unknown scheduler", argv(*TRAIN, "--set", "train.scheduler.name=cosin"), ["unknown scheduler 'cosin'"]),
    ("set bad precision", argv(*TRAIN, "--set", "train.precision=fp8"), ["must be one of"]),
    ("set infinite", argv(*TRAIN, "--set", "model.beta=.inf"), ["model.beta must be a finite number"]),
    ("set model beyond memory", argv(*TRAIN, "--set", "model.latent_dim=100000000000"), ["out of memory"]),
    ("resume into another folder", argv("train", "--resume", "RUN", "--out", "TMP/runs"), ["--out", "--resume"]),
    ("denoise with nan noise", argv("denoise", "RUN", "--noise", "nan", "-o", "TMP/d.png"), ["--noise", "nan"]),
    ("batch larger than data", argv(*TRAIN, "--data", "digits", "--batch-size", "5000"), ["larger than the 1438"]),
    (
        "input shape vs data",
        argv(*TRAIN, "--data", "digits", "--set", "model.input_shape=[1,28,28]"),
        ["does not match data 'digits'"],
    ),
    # names and data
    ("unknown family", argv(*[a if a != "vae" else "vea" for a in TRAIN]), ["no family named 'vea'"]),
    ("unknown dataset", argv(*TRAIN, "--data", "mnist5k"), ["no dataset named 'mnist5k'", "'mnist-5k'"]),
    ("empty model name", argv("sample", ""), ["empty model reference"]),
    ("model path missing", argv("sample", "TMP/nothing-here"), ["no model folder"]),
    (
        "reconstruct unknown data",
        argv("reconstruct", "RUN", "--data", "cifar", "-o", "TMP/r.png"),
        ["no dataset named 'cifar'"],
    ),
    (
        "reconstruct data of another shape",
        argv("reconstruct", "RUN", "--data", "mnist-5k", "-o", "TMP/r.png"),
        ["has shape [1, 28, 28]", "takes [1, 8, 8]"],
    ),
    ("hub id path traversal", argv("sample", "hf-hub:../etc"), ["'../etc' is not a Hub repo id"]),
    (
        "pull a missing folder",
        argv("pull", "TMP/a/b/c"),
        ["a/b/c' is neither a Hub repo id nor an existing folder"],
    ),
    (
        "push eval metric not a number",
        file_write("eval.json", '{"format": 1, "metrics": {"nelbo": "abc"}}', ["push", "RUN", "user/name"]),
        ["eval.json: metric 'nelbo' is \"abc\", not a finite number"],
    ),
    (
        "push eval not JSON",
        file_write("eval.json", "{", ["push", "RUN", "user/name"]),
        ["eval.json is not readable JSON"],
    ),
    (
        "push card not UTF-8",
        file_write("README.md", b"\xff\xfe", ["push", "RUN", "user/name"]),
        ["README.md is not UTF-8 text"],
    ),
    ("hub revision path traversal", argv("sample", "alice/tiny@../../refs"), ["'../../refs' is not a valid revision"]),
    # data
    ("data folder missing", argv(*TRAIN, "--data", "folder:TMP/no-images"), ["no image folder at", "no-images"]),
    # rich read the brackets as markup: a MarkupError traceback, or text left out
    ("data folder with brackets", argv(*TRAIN, "--data", "folder:TMP/scans[/x]"), ["no image folder at", "scans[/x]"]),
    ("data folder empty", image_folder({"notes.txt": b"no pictures"}), ["no images (.png", "images'"]),
    (
        "data image unreadable",
        image_folder({**GOOD_IMAGES, "bad.png": b"\x89PNG\r\n\x1a\n" + b"junk" * 10}),
        ["cannot read image", "bad.png"],
    ),
    (
        "data images of mixed sizes",
        image_folder({**GOOD_IMAGES, "tall.png": png(9)}),
        ["images differ in size", "tall.png is 8×9", "size=N"],
    ),
    (
        "data image with NaN pixels",
        image_folder({**GOOD_IMAGES, "nan.tiff": float_tiff_with_nan()}),
        ["nan.tiff has NaN or infinite pixel values"],
    ),
    (
        "data loader gives NaN",
        argv(*TRAIN, "--data", "nan-digits"),
        ["dataset 'nan-digits' has 1 NaN or infinite values in its train split"],
    ),
    # outputs and devices
    ("output folder missing", argv("sample", "RUN", "-o", "TMP/no/dir/out.png"), ["does not exist"]),
    ("output not png", argv("sample", "RUN", "-o", "TMP/out.jpg"), ["must end in .png"]),
    ("device absent", argv("sample", "RUN", "--device", "cuda"), ["no CUDA GPU"]),
    ("device unknown", argv("sample", "RUN", "--device", "abacus"), ["unknown device 'abacus'"]),
    # runs
    ("resume not a run", argv("train", "--resume", "TMP"), ["is not a zoo run folder"]),
    ("resume finished run", argv("train", "--resume", "RUN"), ["is finished after 2 epochs"]),
    ("resume with other options", argv("train", "vae", "--resume", "RUN"), ["only --epochs may change"]),
    (
        "resume corrupt checkpoint",
        file_write("checkpoint.safetensors", b"junk" * 10, ["train", "--resume", "RUN"]),
        ["not a readable zoo checkpoint"],
    ),
    (
        "resume run of another family",
        lambda run, tmp: [
            (run / "recipe.yaml").write_text((run / "recipe.yaml").read_text().replace("family: vae", "family: other")),
            "train",
            "--resume",
            str(run),
        ][1:],
        ["no family named 'other'"],
    ),
]


@pytest.fixture(scope="module")
def pristine(tiny_run):
    return tiny_run.path


@pytest.fixture(scope="module", autouse=True)
def nan_dataset():
    """'nan-digits', a dataset whose loader hands back NaN, registered for this module only."""
    from zoo.plugin import DatasetSpec
    from zoo.registry import datasets

    datasets.register(DatasetSpec("nan-digits", loader=nan_digits, shape=(1, 8, 8), num_classes=10))
    yield
    datasets.unregister("nan-digits")


@pytest.mark.parametrize(("name", "setup", "words"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_nothing_changes(pristine, tmp_path, name, setup, words):
    from zoo_cli.main import main

    run = Path(shutil.copytree(pristine, tmp_path / "run"))
    args = setup(run, tmp_path)
    before = snapshot(run)
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert snapshot(run) == before
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_the_matrix_has_at_least_forty_cases():
    assert len(CASES) >= 40

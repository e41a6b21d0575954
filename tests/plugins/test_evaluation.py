"""`zoo eval` and the image-task commands on short mnist-5k runs of the first-party families."""

from __future__ import annotations

import json
import math
import re
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

import zoo
from tests.conftest import assert_one_line_error, run_zoo
from zoo.classifier import digit_classifier, embed
from zoo.evaluation.samples import frechet_distance


def snapshot(folder) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def vae_eval(short_run, tmp_path_factory):
    """A copy of the short vae run, its files before `zoo eval`, and the printed eval document."""
    from click.testing import CliRunner
    from zoo_cli.main import main

    run = tmp_path_factory.mktemp("eval") / "vae-run"
    shutil.copytree(short_run("vae").path, run)
    before = snapshot(run)
    result = CliRunner().invoke(
        main, ["eval", str(run), "--nll-k", "50", "--fid-samples", "1000", "--json"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return run, before, json.loads(result.output)


def test_eval_runs_every_group_that_applies_and_writes_only_eval_json(vae_eval):
    run, before, document = vae_eval
    assert document["format"] == 1 and document["family"] == "vae" and document["data"] == "mnist-5k"
    assert document["groups"] == ["family", "nll", "recon", "fid", "probe"]
    assert set(document["skipped"]) == {"disentanglement"}
    assert document["examples"] == 1000 and document["settings"]["nll_k"] == 50
    expected = {"nelbo", "nll", "nll_stderr", "bits_per_dim", "mse", "psnr", "ssim", "fid", "precision", "recall"}
    expected |= {"density", "coverage"}
    assert expected <= set(document["metrics"]) and list(document["metrics"]) == sorted(document["metrics"])
    after = snapshot(run)
    assert json.loads(after.pop("eval.json")) == document
    assert after == before


def test_the_family_group_hands_the_model_its_test_batches_on_the_models_device(short_run, monkeypatch):
    """Its test split stays on the CPU; on a GPU, batches left there failed in the first layer.
    A model on the meta device stands in for one on a GPU."""
    from zoo.evaluation.report import EvalSettings, _family

    model = zoo.load(short_run("vae").path).to("meta")
    seen = []

    def evaluate_split(batches, stage, data_name):
        seen.extend({b.x.device.type, b.y.device.type} for b in batches)
        return {"nelbo": 0.0}

    monkeypatch.setattr(model, "evaluate_split", evaluate_split)
    _family(model, zoo.load_dataset("mnist-5k"), EvalSettings())  # the group alone: meta weights have no digest
    assert seen and all(devices == {"meta"} for devices in seen)


def test_importance_sampled_nll_is_below_the_single_sample_bound(vae_eval):
    metrics = vae_eval[2]["metrics"]
    assert metrics["nll"] < metrics["nelbo"] - 1  # K = 50 tightens the bound by more than a nat
    assert 0 < metrics["nll_stderr"] < 3
    assert metrics["bits_per_dim"] == pytest.approx(metrics["nll"] / (784 * np.log(2)))


def test_codes_of_a_trained_vae_classify_digits_better_than_chance(vae_eval):
    metrics = vae_eval[2]["metrics"]
    assert metrics["probe_linear"] > 0.75 and metrics["probe_knn"] > 0.75  # 8-d codes after 2 epochs
    # The raw-pixel baseline docs/eval.md reports.
    assert metrics["probe_linear_pixels"] == pytest.approx(0.915, abs=0.01)
    assert metrics["probe_knn_pixels"] == pytest.approx(0.876, abs=0.01)


def test_fid_of_samples_lies_between_real_images_and_noise(vae_eval):
    metrics = vae_eval[2]["metrics"]
    test = zoo.load_dataset("mnist-5k").test.x
    classifier = digit_classifier("mnist-5k")
    noise = torch.rand(test.shape, generator=torch.Generator().manual_seed(0))
    noise_fid = frechet_distance(embed(classifier, test), embed(classifier, noise))
    assert metrics["fid_train_images"] < metrics["fid"] < noise_fid / 1.5
    assert 0 < metrics["precision"] <= 1 and 0 < metrics["recall"] <= 1


def test_pushed_card_carries_the_eval_metrics(vae_eval, tmp_path):
    from zoo.hub import _stage

    run, _, document = vae_eval
    model = zoo.load(run)
    staged = _stage(run, tmp_path, model, "alice/vae")
    card = (tmp_path / "README.md").read_text()
    assert "eval.json" in staged and json.loads((tmp_path / "eval.json").read_text()) == document
    assert f"| fid | {document['metrics']['fid']:.4g} |" in card
    assert f"value: {round(document['metrics']['nll'], 4)}" in card and "name: test nll" in card


def test_a_partial_eval_adds_its_figures_to_the_eval_json_of_the_same_weights(vae_eval, cli, tmp_path):
    """`-m nll` after a full eval keeps the other groups' figures and the settings that made
    them (here --fid-samples 1000); a seed that differs, which made them too, replaces the
    document, as do other weights, and the note says so."""
    from zoo.evaluation.report import EvalReport, why_apart

    run, _, document = vae_eval
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    result = cli("eval", str(copy), "-m", "nll", "--nll-k", "20")
    assert result.exit_code == 0, result.output
    assert "(with the earlier figures of family, recon, fid, probe)" in result.output
    after = json.loads((copy / "eval.json").read_text())
    assert after["groups"] == document["groups"] and after["skipped"] == document["skipped"]
    assert after["settings"] == {**document["settings"], "nll_k": 20}
    changed = {k for k, v in document["metrics"].items() if after["metrics"][k] != v}
    assert changed == {"nll", "nll_stderr", "bits_per_dim"} and after.keys() == document.keys()

    result = cli("eval", str(copy), "-m", "recon", "--seed", "1")
    assert "(replacing the earlier eval.json: it was made with seed 0, and this run with 1)" in result.output
    assert json.loads((copy / "eval.json").read_text())["groups"] == ["recon"]
    other = EvalReport(**{k: v for k, v in document.items() if k not in ("format", "zoo_version")})
    assert why_apart({**document, "weights_sha256": "0" * 64}, other) == "it was of other weights"
    assert why_apart(document, other) is None

    (copy / "eval.json").write_text("{")
    result = cli("eval", str(copy), "-m", "recon")
    assert "(replacing eval.json, which was not a zoo eval report)" in result.output


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["-m", "nll,bogus"], ["unknown metric group", "bogus"]),
        (["-m", "disentanglement"], ["disentanglement", "no ground-truth factors"]),
        (["--data", "digits"], ["shape", "[1, 8, 8]"]),
        (["-o", "eval.txt"], ["must end in .json"]),
        (["-o", "missing/eval.json"], ["does not exist"]),
    ],
)
def test_eval_refuses_bad_requests_in_one_line(short_run, args, words):
    completed = run_zoo("eval", str(short_run("vae").path), *args)
    assert completed.returncode == 2
    assert_one_line_error(completed.stderr, *words)


def image_of(path) -> np.ndarray:
    with Image.open(path) as picture:
        return np.asarray(picture.convert("L"), dtype=np.float64)


def assert_readable(path, rows: int, columns: int) -> None:
    """A PNG of `rows` labelled rows of `columns` 28×28 images (each row a grid of 2-pixel
    padding, enlarged twice), not blank, with dark label text in its left margin."""
    pixels = image_of(path)
    strip = (columns * 30 + 2) * 2
    assert pixels.shape[0] == rows * 64 and pixels.shape[1] > strip
    assert pixels.std() > 20
    assert (pixels[:, : pixels.shape[1] - strip] < 100).any(), "no label text"


def test_interpolate_writes_labelled_rows_between_two_classes(short_run, cli, tmp_path):
    out = tmp_path / "interp.png"
    result = cli("interpolate", str(short_run("vae").path), "--from", "3", "--to", "8", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "wrote 4 interpolations of 8 steps" in result.output
    assert_readable(out, rows=4, columns=10)


def test_denoise_restores_noisy_digits_with_a_denoising_ae(short_run, cli, tmp_path):
    out = tmp_path / "denoise.png"
    run = short_run("ae", "model.noise_std=0.3")
    result = cli("denoise", str(run.path), "--noise", "0.5", "-n", "16", "-o", str(out))
    assert result.exit_code == 0, result.output
    noisy, restored = (float(w) for w in result.output.split("PSNR ")[1].split(" dB restored")[0].split(" dB noisy → "))
    assert restored > noisy + 2
    assert_readable(out, rows=3, columns=16)


@pytest.mark.parametrize("task", ["denoise", "inpaint"])
def test_restoration_refuses_images_outside_the_unit_interval(short_run, tmp_path, task):
    """Their noise, masks and PSNR assume images in [0, 1]; an autoencoder takes other data."""
    wide = np.random.default_rng(0).uniform(-1, 1, (40, 1, 28, 28)).astype(np.float32)
    np.save(tmp_path / "wide.npy", wide)
    out = tmp_path / "out.png"
    completed = run_zoo(task, str(short_run("ae").path), "--data", f"npy:{tmp_path / 'wide.npy'}", "-o", str(out))
    assert completed.returncode == 2 and not out.exists()
    assert_one_line_error(completed.stderr, "has values in -0.99", f"{task} works on images in [0, 1]")


def test_inpaint_fills_missing_pixels_far_better_than_grey(short_run, cli, tmp_path):
    out = tmp_path / "inpaint.png"
    result = cli("inpaint", str(short_run("vae").path), "--mask", "random", "-n", "16", "-o", str(out))
    assert result.exit_code == 0, result.output
    grey, filled = (float(w.split()[0]) for w in result.output.split("MSE in the hole ")[1].split(" → "))
    assert filled < grey / 4
    assert_readable(out, rows=3, columns=16)


def test_anomaly_ranks_noise_images_above_digits(short_run, cli, tmp_path):
    digits = zoo.load_dataset("mnist-5k").test.x[:30]
    for split, images in (("train", digits[:25]), ("test", torch.cat([digits[25:], torch.rand(5, 1, 28, 28)]))):
        (tmp_path / "data" / split).mkdir(parents=True)
        for i, image in enumerate(images):
            pixels = (image[0] * 255).round().to(torch.uint8).numpy()
            Image.fromarray(pixels, mode="L").save(tmp_path / "data" / split / f"{i:02d}.png")
    out = tmp_path / "odd.png"
    result = cli(
        "anomaly",
        str(short_run("vae").path),
        "--data",
        f"folder:{tmp_path / 'data'}",
        "-k",
        "10",
        "--top",
        "5",
        "--json",
        "-o",
        str(out),
    )
    assert result.exit_code == 0, result.output
    ranking = json.loads(result.output)["ranking"]
    assert len(ranking) == 35
    assert {row["image"] for row in ranking[:5]} == {f"test/{i:02d}.png" for i in range(5, 10)}
    assert image_of(out).std() > 20


def test_encode_writes_codes_and_labels_for_both_splits(short_run, cli, tmp_path):
    out = tmp_path / "latents.npz"
    result = cli("encode", str(short_run("vae").path), "-o", str(out))
    assert result.exit_code == 0, result.output
    with np.load(out, allow_pickle=False) as arrays:
        assert arrays["train_codes"].shape == (4000, 8) and arrays["test_codes"].shape == (1000, 8)
        assert arrays["test_labels"].tolist() == zoo.load_dataset("mnist-5k").test.y.tolist()


def test_plot_draws_the_latent_map(short_run, cli, tmp_path):
    out = tmp_path / "latents.png"
    result = cli("plot", str(short_run("vae").path), "latents", "-o", str(out))
    assert result.exit_code == 0, result.output
    pixels = image_of(out)
    assert pixels.shape == (500, 600) and pixels.std() > 10


def test_a_latent_map_refuses_discrete_and_one_dimensional_codes_and_takes_two():
    from zoo.errors import InvalidInputError
    from zoo.plots import check_map_codes

    with pytest.raises(InvalidInputError, match="discrete"):
        check_map_codes(torch.zeros(2, 7, 7, dtype=torch.long))
    with pytest.raises(InvalidInputError, match="at least 2 dimensions"):
        check_map_codes(torch.zeros(2, 1))
    check_map_codes(torch.zeros(2, 2))


def test_eval_on_dsprites_scores_disentanglement_above_chance(tmp_path):
    data = "dsprites?n=2000"
    overrides = ["train.epochs=3", "train.batch_size=32", "train.optimizer.lr=3e-3", "train.scheduler.warmup_epochs=0"]
    small = ["model.latent_dim=6", "model.hidden_dim=0", "model.channels=[8, 16]", "train.sample_grid=0"]
    run = zoo.train("vae", data=data, overrides=[*overrides, *small], out=str(tmp_path))
    report = zoo.evaluate(run.model, zoo.load_dataset(data), ["disentanglement"])
    assert report.groups == ["disentanglement"]
    # Chance is 1/5 (five factors); 170 steps already tell position apart (0.505 measured).
    assert report.metrics["beta_vae_score"] > 0.35
    assert 0 <= report.metrics["mig"] <= 1


def test_fid_on_too_few_images_is_skipped_or_refused_with_the_reason_and_nll_of_one_image_stays_json():
    """Too few test images crashed precision and recall (k=3 neighbours), too few training
    images the classifier's training; the standard error of one image's NLL was NaN."""
    from zoo.datasets.splits import Splits, TensorData
    from zoo.errors import InvalidInputError
    from zoo.evaluation.report import EvalSettings

    digits = zoo.load_dataset("digits")
    model = zoo.create("vae", input_shape=(1, 8, 8), latent_dim=2, channels=(4,), hidden_dim=8)
    for train, test, reason in (
        (200, 3, "has 3 test images; precision and recall need more than 3"),
        (40, 20, "40 training images are too few for the classifier that judges samples (it needs 72)"),
    ):
        small = Splits("small", TensorData(*digits.train.head(train)), TensorData(*digits.test.head(test)), 10)
        with pytest.raises(InvalidInputError, match=re.escape("metric group 'fid' does not apply: data 'small'")):
            zoo.evaluate(model, small, "fid")
        report = zoo.evaluate(model, small, settings=EvalSettings(nll_k=4))
        assert reason in report.skipped["fid"] and "nll" in report.metrics
    one = zoo.evaluate(model, digits, "nll", EvalSettings(nll_k=4, nll_examples=1))
    assert "nll_stderr" not in one.metrics and math.isfinite(one.metrics["nll"])
    json.dumps(one.to_json(), allow_nan=False)  # eval.json is JSON: NaN is not

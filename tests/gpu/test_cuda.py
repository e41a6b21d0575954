"""zoo on a CUDA GPU: every family trains there in reduced precision and learns, with no
training step waiting for the GPU; the speed options and fp16's grad scaling work there, and
a model trained on the GPU loads on the CPU to the same outputs. Skipped where no GPU is
present (CI has none): run `pytest tests/gpu` on a machine with one."""

import json

import pytest
import torch

import zoo
from tests.plugins.conftest import EXTRA, SHORT
from tests.plugins.test_families import baselines
from tests.plugins.vqvae.test_vqvae import SHORT as VQVAE_SHORT
from zoo.trainer import Trainer

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")

#: The vae's short run under each precision and speed option.
OPTIONS = {
    "fp32": [],
    "bf16": ["train.precision=bf16"],
    "fp16": ["train.precision=fp16"],
    "fastest": [
        "train.precision=bf16",
        "train.channels_last=true",
        "train.matmul_conv=true",
        "train.optimizer.fused=true",
    ],
}


def short_gpu_run(tmp_path, family: str, *extra: str) -> zoo.Run:
    overrides = {
        "vqvae": VQVAE_SHORT,
        "gan": ["model.channels=[64, 128]", "train.sample_grid=16", "train.epochs=2"],
    }.get(family, [*SHORT, *EXTRA.get(family, [])])
    return zoo.train(family, overrides=[*overrides, *extra], out=str(tmp_path), device="cuda")


@pytest.fixture
def steps_never_wait(monkeypatch):
    """Every training step runs in CUDA's sync debug mode 'error': an operation in it that
    makes the host wait for the GPU (a value read on the host, a blocking copy) raises.
    fp16's grad scaler reads whether a step overflowed, so its runs are left out."""
    step = Trainer._train_step

    def strict(self, *args, **kwargs):
        torch.cuda.set_sync_debug_mode("error")
        try:
            return step(self, *args, **kwargs)
        finally:
            torch.cuda.set_sync_debug_mode("default")

    monkeypatch.setattr(Trainer, "_train_step", strict)


def assert_on_gpu(model: zoo.Family) -> None:
    assert {p.device.type for p in model.parameters()} == {"cuda"}


@pytest.mark.parametrize("option", OPTIONS)
def test_the_vae_learns_on_the_gpu_with_each_precision_and_speed_option(tmp_path, option, request):
    if option != "fp16":
        request.getfixturevalue("steps_never_wait")
    run = short_gpu_run(tmp_path, "vae", *OPTIONS[option])
    assert_on_gpu(run.model)
    _, mean_nll = baselines(zoo.load_dataset("mnist-5k"))  # 206 nats
    assert run.metrics["nelbo"] < 0.85 * mean_nll and run.metrics["kl"] > 5
    if option == "fp16":  # grad scaling kept every step or skipped few: the loss went down
        losses = [
            r["loss"] for r in map(json.loads, (run.path / "metrics.jsonl").read_text().splitlines()) if "loss" in r
        ]
        assert losses[-1] < 0.8 * losses[0]


@pytest.mark.usefixtures("steps_never_wait")
@pytest.mark.parametrize("family", ["ae", "cvae", "iwae", "vqvae", "gan"])
def test_every_family_trains_on_the_gpu_in_bf16(tmp_path, family):
    run = short_gpu_run(tmp_path, family, "train.precision=bf16")
    assert_on_gpu(run.model)
    assert all(torch.isfinite(torch.tensor(v)) for v in run.metrics.values()), run.metrics
    data = zoo.load_dataset("mnist-5k")
    mean_mse, mean_nll = baselines(data)
    if family in ("ae", "vqvae"):
        assert run.metrics["mse"] < 0.7 * mean_mse
    elif family != "gan":
        assert run.metrics[type(run.model).headline_metric] < 0.85 * mean_nll
    conditions = {"label": 3} if run.model.conditional else {}
    images = run.model.sample(8, generator=torch.Generator().manual_seed(0), **conditions)
    assert images.device.type == "cuda" and images.shape == (8, 1, 28, 28)


def test_a_model_trained_on_the_gpu_loads_on_the_cpu_to_the_same_outputs(tmp_path):
    """Equal up to rounding: cuDNN's float32 convolutions round through TF32 by default, and
    the algorithm it picks can differ from one model object to the next."""
    run = short_gpu_run(tmp_path, "vae")
    x = zoo.load_dataset("mnist-5k").test.head(64).x
    run.model.eval()
    on_gpu = run.model.reconstruct(x.cuda()).cpu()
    assert torch.allclose(zoo.load(run.path, device="cpu").reconstruct(x), on_gpu, atol=1e-4)
    assert torch.allclose(zoo.load(run.path, device="cuda").reconstruct(x.cuda()).cpu(), on_gpu, atol=1e-4)


def test_a_vqvae_trained_on_the_gpu_encodes_to_the_same_codes_on_the_cpu(tmp_path):
    """A code whose two nearest codebook vectors are closer than the rounding may flip; the
    rest match, and so do the reconstructions from the same codes."""
    run = short_gpu_run(tmp_path, "vqvae")
    on_cpu = zoo.load(run.path, device="cpu")
    x = zoo.load_dataset("mnist-5k").test.head(64).x
    codes = run.model.encode(x.cuda()).cpu()
    assert (on_cpu.encode(x) == codes).float().mean() > 0.99
    assert torch.allclose(on_cpu.decode(codes), run.model.decode(codes.cuda()).cpu(), atol=2e-3)  # TF32 convolutions


def test_channels_last_with_compile_is_refused_before_the_run_has_a_folder(tmp_path):
    with pytest.raises(zoo.InvalidInputError, match="pytorch/pytorch#171622"):
        short_gpu_run(tmp_path / "runs", "vae", "train.channels_last=true", "train.compile=true")
    assert not (tmp_path / "runs").exists()


def test_the_cli_samples_and_evaluates_on_the_gpu(tmp_path, cli):
    run = short_gpu_run(tmp_path, "vae")
    result = cli("sample", str(run.path), "-n", "16", "--device", "cuda", "-o", str(tmp_path / "s.png"))
    assert result.exit_code == 0, result.output
    result = cli("eval", str(run.path), "--device", "cuda", "-m", "family,nll,recon", "--nll-k", "20")
    assert result.exit_code == 0, result.output
    metrics = json.loads((run.path / "eval.json").read_text())["metrics"]
    assert {"nelbo", "nll", "mse", "psnr"} <= set(metrics)


def test_a_run_resumes_on_another_kind_of_device(tmp_path):
    """The checkpoint of a GPU run resumes on the CPU and that of a CPU run on the GPU."""
    for first, then in (("cuda", "cpu"), ("cpu", "cuda")):
        out = tmp_path / first
        run = zoo.train("vae", overrides=[*SHORT, "train.epochs=1"], out=str(out), device=first)
        resumed = zoo.train(resume=run.path, epochs=2, device=then)
        assert resumed.steps == 2 * run.steps and resumed.metrics["nelbo"] < run.metrics["nelbo"]


def test_density_and_coverage_of_gpu_features_equal_the_cpus():
    from zoo.evaluation.samples import density_coverage

    real, fake = (torch.randn(500, 16, generator=torch.Generator().manual_seed(s)) for s in (0, 1))
    on_gpu = density_coverage(real.cuda(), fake.cuda())
    assert on_gpu == pytest.approx(density_coverage(real, fake))

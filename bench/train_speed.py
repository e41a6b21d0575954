"""Training speed: zoo's trainer against a bare PyTorch loop and pythae's trainer.

Same networks (the default vae recipe's conv 32-64-128 with a 16-d code), same data
(mnist-5k train split, 4,000 images), batch size 64, Adam at a constant 2e-3, seed 0,
each epoch followed by a test evaluation. Each measurement runs in its own process (so
peak RSS is its own), imports and data loading excluded; systems are interleaved over
rounds (--repeats, 5): images/s is the median over rounds, a ratio the median of the
rounds' ratios.
Also: zoo's speed options, time to a target test −ELBO, achieved FLOP/s against the
machine's matmul rates, sampling throughput, CLI start-up.

    python bench/train_speed.py [PART ...]   # all parts (creates bench/.venv-pythae first)
    python bench/train_speed.py --quick      # 1 repeat, 2 epochs: a smoke test
    python bench/train_speed.py --device cuda  # every system on the GPU (add the bf16 rows there)

PART: throughput (the systems interleaved), pairs (zoo fp32 against the bare loop and pythae,
the fastest options against pythae, fused Adam against the bare loop, each pair run back to
back in alternating order; medians with a 95% interval), flops
(zoo's achieved FLOP/s from the throughput figures, against the device's float32 and bfloat16
matmul rates), sampling (samples/s of zoo's vae against the same decoder called bare and
pythae's NormalSampler, and of the default gan and vqvae), target (the default recipe as it
ships against pythae's own nets), startup, profile (where a step's time goes, in float32,
with bf16 + channels_last, and fastest), loading (µs per image for zoo's `folder:` loader on
PNG files, against decoding them in one thread and in a pool of threads), overhead (where the
time of a float32 run of zoo's trainer goes, part by part, against the bare loop's, in one
process).
Prints a table and merges the figures into bench/train_speed.json (train_speed_cuda.json
for --device cuda).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import json
import math
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
PYTHAE_VENV = HERE / ".venv-pythae"
RESULTS = HERE / "results"
BATCH, LR, SEED, LATENT = 64, 2e-3, 0, 16
EVAL_BATCH = 256  # test images per forward pass, in every system (zoo's default)
SAMPLES = 1000  # per timed sampling call
TARGET_NELBO = 152.0  # pythae's 3-epoch test −ELBO on this split (issue figure)


# ----------------------------------------------------------------------------- networks
def plain_vae_nets():
    """The default vae recipe's encoder and decoder as plain torch modules (for pythae,
    which cannot import zoo): conv 32-64-128 (k4 s2 p1, SiLU), linear heads."""
    from torch import nn

    encoder = nn.Sequential(
        nn.Conv2d(1, 32, 4, 2, 1),
        nn.SiLU(),
        nn.Conv2d(32, 64, 4, 2, 1),
        nn.SiLU(),
        nn.Conv2d(64, 128, 4, 2, 1),
        nn.SiLU(),
        nn.Flatten(),
        nn.Linear(128 * 3 * 3, 2 * LATENT),
    )
    decoder = nn.Sequential(
        nn.Linear(LATENT, 128 * 3 * 3),
        nn.SiLU(),
        nn.Unflatten(1, (128, 3, 3)),
        nn.ConvTranspose2d(128, 64, 4, 2, 1, output_padding=1),
        nn.SiLU(),
        nn.ConvTranspose2d(64, 32, 4, 2, 1),
        nn.SiLU(),
        nn.ConvTranspose2d(32, 1, 4, 2, 1),
    )
    return encoder, decoder


def bench_vae():
    """zoo's vae with the default recipe's nets and a LATENT-d code (the nets above)."""
    import zoo

    return zoo.create("vae", {**zoo.load_recipe("vae").model, "latent_dim": LATENT})


def init_device(device: str) -> None:
    """Start CUDA before the clock, as the bare loop and pythae do when they move their model."""
    import torch

    torch.empty(0, device=device)


def synchronize(device: str) -> None:
    """Wait for the GPU's queued work: a timed call returns before its kernels end."""
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ----------------------------------------------------------------------------- workers
def worker_zoo(args) -> dict:
    import_zoo_trainer()
    return train_zoo(args)


def import_zoo_trainer() -> None:
    """What zoo's trainer imports on first use (timm, the plugin, matplotlib): imports are
    excluded from the timings."""
    import timm.optim  # noqa: F401
    import timm.scheduler  # noqa: F401
    import timm.utils  # noqa: F401

    from zoo.plots import pyplot

    bench_vae()
    pyplot()


def train_zoo(args) -> dict:
    """One run of zoo's trainer on the nets and settings above (and the `--option`s)."""
    import zoo

    overrides = ["train.scheduler.name=none", f"train.optimizer.lr={LR}", f"train.batch_size={BATCH}"]
    overrides += [f"train.eval_batch_size={EVAL_BATCH}"]
    overrides += [f"model.latent_dim={LATENT}"]
    overrides += [f"train.{k}" for k in args.option]
    with tempfile.TemporaryDirectory() as out:
        zoo.load_dataset("mnist-5k")
        init_device(args.device)
        start = time.perf_counter()
        run = zoo.train("vae", epochs=args.epochs, seed=SEED, overrides=overrides, out=out, device=args.device)
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "images": run.steps * BATCH, "nelbo": run.metrics["nelbo"]}


def worker_bare(args) -> dict:
    return train_bare(args.epochs, args.device)


def train_bare(epochs: int, device: str, clock: PartClock | None = None) -> dict:
    """The bare loop; with a `clock`, the time of its steps and of its evaluations kept there."""
    import torch

    import zoo

    part = clock.part if clock else lambda label: contextlib.nullcontext()
    data = zoo.load_dataset("mnist-5k")
    torch.manual_seed(SEED)
    model = bench_vae().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    x, test = data.train.x.to(device), data.test.x.to(device)
    steps = len(x) // BATCH
    start = time.perf_counter()
    for _ in range(epochs):
        model.train()
        with part("steps"):
            order = torch.randperm(len(x), device=device)
            for b in range(steps):
                loss = model.loss(zoo.Batch(x[order[b * BATCH : (b + 1) * BATCH]])).total
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
        model.eval()
        with part("evaluation"), torch.no_grad():
            batches = (test[i : i + EVAL_BATCH] for i in range(0, len(test), EVAL_BATCH))
            nelbo = sum(model.loss(zoo.Batch(b)).terms["nelbo"].item() * len(b) for b in batches) / len(test)
    return {"seconds": time.perf_counter() - start, "images": epochs * steps * BATCH, "nelbo": nelbo}


class PartClock:
    """Seconds spent in named parts of a run, a GPU's queued work included (it is waited for
    at each part's start and end)."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.seconds: dict[str, float] = {}
        self.running = False

    @contextlib.contextmanager
    def part(self, label: str):
        """Time the block as `label`; a part inside another counts as the outer one's."""
        if self.running:
            yield
            return
        self.running = True
        synchronize(self.device)
        start = time.perf_counter()
        try:
            yield
        finally:
            synchronize(self.device)
            self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - start
            self.running = False

    @contextlib.contextmanager
    def timing(self, calls: dict[str, tuple[object, str]]):
        """Inside: every call of each `owner.name` in `calls` (label → (owner, name)) is timed
        as the part `label`."""
        originals = {label: getattr(owner, name) for label, (owner, name) in calls.items()}

        def timed(label: str, call: Callable) -> Callable:
            @functools.wraps(call)
            def wrapper(*args, **kwargs):
                with self.part(label):
                    return call(*args, **kwargs)

            return wrapper

        for label, (owner, name) in calls.items():
            setattr(owner, name, timed(label, originals[label]))
        try:
            yield
        finally:
            for label, (owner, name) in calls.items():
                setattr(owner, name, originals[label])


def worker_overhead(args) -> dict:
    """Where the time of a float32 run of zoo's trainer goes, against the bare loop's, in one
    process: after a warm-up run of each, `--repeats` rounds of one run each, in alternating
    order (an even number of rounds, so that each system goes first as often); seconds per
    run, medians over the rounds, and zoo's speed as a multiple of the bare loop's (the median
    of the rounds' ratios, not the ratio of the medians). zoo's parts are its trainer's calls
    (one called inside another, as a periodic checkpoint inside an epoch's steps, counts as
    the outer one); "rest" is what they leave of the run's time."""
    import zoo.trainer

    import_zoo_trainer()
    trainer = zoo.trainer.Trainer
    calls = {
        "build": (trainer, "_build"),
        "steps": (trainer, "_run_epoch"),
        "evaluation": (zoo.trainer, "evaluate"),
        "epoch outputs": (trainer, "_write_epoch_outputs"),
        "checkpoints": (trainer, "_save_checkpoint"),
        "loss plot": (zoo.trainer, "loss_curve"),
        "model card": (trainer, "_finish"),
    }
    warm_up = argparse.Namespace(**{**vars(args), "epochs": 1})
    train_zoo(warm_up)
    train_bare(1, args.device)
    # The imports' objects (timm's, matplotlib's: over 400,000) are left out of the garbage
    # collector's walks for both systems, as zoo's trainer leaves them out of its own (which
    # then freezes nothing itself: a process that froze objects keeps its choice).
    gc.collect()
    gc.freeze()
    runs: dict[str, list[dict[str, float]]] = {"zoo": [], "bare loop": []}
    for r in range(args.repeats):
        for system in alternating(("zoo", "bare loop"), r):
            clock = PartClock(args.device)
            if system == "zoo":
                with clock.timing(calls):
                    total = train_zoo(args)["seconds"]
            else:
                total = train_bare(args.epochs, args.device, clock)["seconds"]
            runs[system].append({**clock.seconds, "rest": total - sum(clock.seconds.values()), "total": total})
    # zoo's speed as a multiple of the bare loop's (the same images), round by round
    ratios = [bare["total"] / zoo_run["total"] for zoo_run, bare in zip(runs["zoo"], runs["bare loop"], strict=True)]
    return {
        **{
            system: {label: statistics.median(run[label] for run in rows) for label in rows[0]}
            for system, rows in runs.items()
        },
        "zoo / bare loop": ratio_figures(ratios),
    }


def pythae_vae(pythae_nets: bool):
    """pythae's VAE with the nets above (zoo's parameterisation of the posterior scale), or
    with pythae's own MNIST benchmark nets."""
    import torch
    from pythae.models import VAE, VAEConfig
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder

    config = VAEConfig(input_dim=(1, 28, 28), latent_dim=LATENT, reconstruction_loss="bce")
    torch.manual_seed(SEED)
    if pythae_nets:
        from pythae.models.nn.benchmarks.mnist import Decoder_Conv_AE_MNIST, Encoder_Conv_VAE_MNIST

        return VAE(config, encoder=Encoder_Conv_VAE_MNIST(config), decoder=Decoder_Conv_AE_MNIST(config))

    class Encoder(BaseEncoder):
        def __init__(self):
            super().__init__()
            self.net = plain_vae_nets()[0]

        def forward(self, x):
            mu, raw = self.net(x).chunk(2, dim=1)
            scale = torch.nn.functional.softplus(raw) + 1e-4  # zoo's parameterisation
            return ModelOutput(embedding=mu, log_covariance=2 * scale.log())

    class Decoder(BaseDecoder):
        def __init__(self):
            super().__init__()
            self.net = plain_vae_nets()[1]

        def forward(self, z):
            return ModelOutput(reconstruction=torch.sigmoid(self.net(z)))

    return VAE(config, encoder=Encoder(), decoder=Decoder())


def worker_pythae(args) -> dict:
    """pythae's own trainer with the same nets (or with its MNIST benchmark nets)."""
    import numpy as np
    import torch
    from pythae.data.datasets import BaseDataset
    from pythae.trainers import BaseTrainer, BaseTrainerConfig

    arrays = np.load(args.data)
    train, test = arrays["train"], arrays["test"]
    model = pythae_vae(args.pythae_nets)
    with tempfile.TemporaryDirectory() as out:
        trainer_config = BaseTrainerConfig(
            output_dir=out,
            num_epochs=args.epochs,
            learning_rate=LR,
            per_device_train_batch_size=BATCH,
            per_device_eval_batch_size=EVAL_BATCH,
            optimizer_cls="Adam",
            scheduler_cls=None,
            seed=SEED,
            no_cuda=args.device == "cpu",
            steps_saving=None,
        )
        datasets = [BaseDataset(torch.from_numpy(a), torch.zeros(len(a))) for a in (train, test)]
        trainer = BaseTrainer(
            model, train_dataset=datasets[0], eval_dataset=datasets[1], training_config=trainer_config
        )
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
    model.eval()
    with torch.no_grad():
        x = torch.from_numpy(test).to(args.device)
        out = model.encoder(x)
        std = torch.exp(0.5 * out.log_covariance)
        z = out.embedding + std * torch.randn_like(std)
        probs = model.decoder(z).reconstruction.clamp(1e-7, 1 - 1e-7)
        rec = torch.nn.functional.binary_cross_entropy(probs, x, reduction="none").flatten(1).sum(1)
        kl = -0.5 * (1 + out.log_covariance - out.embedding.pow(2) - out.log_covariance.exp()).sum(1)
        nelbo = (rec + kl).mean().item()
    params = sum(p.numel() for p in model.parameters())
    return {
        "seconds": seconds,
        "images": args.epochs * (len(train) // BATCH) * BATCH,
        "nelbo": nelbo,
        "parameters": params,
    }


def worker_default_recipe(args) -> dict:
    """The default vae recipe as `zoo train vae` runs it; time to the first epoch whose test
    −ELBO reaches the target, counted from process start (imports included)."""
    import zoo

    with tempfile.TemporaryDirectory() as out:
        called = time.perf_counter() - PROCESS_START
        run = zoo.train("vae", out=out, device=args.device)
        records = [json.loads(line) for line in (run.path / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in records if r["event"] == "eval"]
    reached = next((r for r in evals if r["nelbo"] <= TARGET_NELBO), None)
    return {
        "seconds": run.seconds,
        "nelbo": run.metrics["nelbo"],
        "epochs": len(evals),
        "seconds_to_target": None if reached is None else called + reached["seconds"],
        "epoch_to_target": None if reached is None else reached["epoch"],
    }


def worker_flops(args) -> dict:
    """FLOPs of one training image (forward + backward) of the nets above, and the device's
    matmul rates in float32 and bfloat16 (best of 5, 2048×2048)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    import zoo

    model = bench_vae()
    x = zoo.load_dataset("mnist-5k").train.x[:BATCH]
    with FlopCounterMode(display=False) as counter:
        model.loss(zoo.Batch(x)).total.backward()
    rates = {}
    for name, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
        a, b = (torch.randn(2048, 2048, device=args.device, dtype=dtype) for _ in range(2))
        best = float("inf")
        for _ in range(5):
            synchronize(args.device)
            start = time.perf_counter()
            for _ in range(5):
                a @ b
            synchronize(args.device)
            best = min(best, (time.perf_counter() - start) / 5)
        rates[name] = 2 * 2048**3 / best
    return {"flops_per_image": counter.get_total_flops() / BATCH, "matmul_flops": rates}


def sampling_rates(calls: dict, rounds: int, device: str) -> dict[str, float]:
    """Samples/s of each sampler in `calls` (label → (call, samples per call)): one warm-up
    call each, then `rounds` rounds that call each once, so drifts in machine load hit all
    alike; the median of each."""
    seconds: dict[str, list[float]] = {label: [] for label in calls}
    for call, _ in calls.values():
        call()
    for _ in range(rounds):
        for label, (call, _) in calls.items():
            synchronize(device)
            start = time.perf_counter()
            call()
            synchronize(device)
            seconds[label].append(time.perf_counter() - start)
    return {label: n / statistics.median(seconds[label]) for label, (_, n) in calls.items()}


def worker_sampling(args) -> dict:
    """Samples/s of zoo's vae with the nets above against the same decoder called bare, and of
    the default recipes' gan and vqvae (whose PixelCNN prior draws the 7×7 codes one at a
    time, so it is timed on fewer samples). Untrained weights: the speed does not depend on them."""
    import torch

    import zoo

    vae = bench_vae().to(args.device).eval()

    def bare() -> None:
        with torch.no_grad():
            torch.sigmoid(vae.decoder.logits(torch.randn(SAMPLES, LATENT, device=args.device)))

    same_nets = {"zoo vae": (functools.partial(vae.sample, SAMPLES), SAMPLES), "bare decoder": (bare, SAMPLES)}
    recipes = {}
    for family, n in (("gan", SAMPLES), ("vqvae", SAMPLES // 10)):
        model = zoo.create(family, zoo.load_recipe(family).model).to(args.device).eval()
        recipes[f"zoo {family}"] = (functools.partial(model.sample, n), n)
    return {
        "same nets": sampling_rates(same_nets, rounds=15, device=args.device),
        "default recipes": sampling_rates(recipes, rounds=3, device=args.device),
    }


def worker_pythae_sampling(args) -> dict:
    """Samples/s of pythae's NormalSampler on its VAE with the same nets."""
    from pythae.samplers import NormalSampler

    sampler = NormalSampler(pythae_vae(pythae_nets=False).to(args.device).eval())
    call = functools.partial(sampler.sample, num_samples=SAMPLES, batch_size=SAMPLES, return_gen=True)
    return {"same nets": sampling_rates({"pythae": (call, SAMPLES)}, rounds=15, device=args.device)}


def worker_profile(args) -> dict:
    """Where a training step's time goes, in float32, with bf16 autocast + channels_last, and
    with those and matmul convolutions + fused Adam (`fastest`): ms per step and each op's own
    time per step (torch.profiler, 30 steps after 10 warm-up)."""
    import zoo

    x = zoo.load_dataset("mnist-5k").train.x.to(args.device)
    return {
        "fp32": profile_steps(x, low_precision=False),
        "bf16+channels_last": profile_steps(x, low_precision=True),
        "fastest": profile_steps(x, low_precision=True, fastest=True),
    }


def profile_steps(x, low_precision: bool, fastest: bool = False) -> dict:
    import torch
    from torch.profiler import ProfilerActivity, profile

    import zoo
    from zoo.matmul_conv import use_matmul_convolutions

    torch.manual_seed(SEED)
    model = bench_vae().to(x.device)
    if low_precision:
        model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    if fastest:
        use_matmul_convolutions(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR, fused=fastest or None)

    def step(b: int) -> None:
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=low_precision):
            loss = model.loss(zoo.Batch(x[b * BATCH : (b + 1) * BATCH])).total
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for b in range(10):
        step(b)
    start = time.perf_counter()
    for b in range(10, 40):
        step(b)
    ms_per_step = (time.perf_counter() - start) / 30 * 1000
    with profile(activities=[ProfilerActivity.CPU]) as trace:
        for b in range(10, 40):
            step(b)
    ops = sorted(trace.key_averages(), key=lambda e: -e.self_cpu_time_total)[:8]
    return {"ms_per_step": ms_per_step, "self_ms_per_step": {e.key: e.self_cpu_time_total / 30 / 1000 for e in ops}}


LOADING_IMAGES = 4000  # the mnist-5k training digits, written as PNG files


def worker_loading(args) -> dict:
    """µs per image to load file-backed data: zoo's `folder:` loader on the mnist-5k training
    digits written as 28×28 PNG files (and enlarged to 96×96 RGB), against decoding the same
    files (open, decode, convert, to float, stack) in one thread and in a pool of threads, one
    per core. Interleaved, 5 rounds, medians; the page cache holds the files after the first.
    Also the most memory zoo's loader holds at once, as a multiple of the loaded data's size."""
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np
    from PIL import Image

    import zoo

    digits = (zoo.load_dataset("mnist-5k").train.x[:LOADING_IMAGES, 0].numpy() * 255).astype(np.uint8)

    def decode(path: Path, mode: str) -> np.ndarray:
        with Image.open(path) as image:
            return np.asarray(image.convert(mode), dtype=np.float32) / 255.0

    def threads(files: list[Path], mode: str) -> None:
        with ThreadPoolExecutor(os.cpu_count()) as pool:
            np.stack(list(pool.map(functools.partial(decode, mode=mode), files)))

    report = {}
    with tempfile.TemporaryDirectory() as folder:
        for label, mode, size in (("28x28 grey", "L", 28), ("96x96 RGB", "RGB", 96)):
            files = [Path(folder, label.replace(" ", "-"), f"{i:05d}.png") for i in range(len(digits))]
            files[0].parent.mkdir()
            for path, digit in zip(files, digits, strict=True):
                Image.fromarray(digit).resize((size, size)).convert(mode).save(path)
            loaders = {
                "zoo": functools.partial(zoo.load_dataset, f"folder:{files[0].parent}"),
                "one_thread": lambda files=files, mode=mode: np.stack([decode(f, mode) for f in files]),
                "threads": functools.partial(threads, files, mode),
            }
            seconds: dict[str, list[float]] = {name: [] for name in loaders}
            for _ in range(5):
                for name, load in loaders.items():
                    start = time.perf_counter()
                    load()
                    seconds[name].append(time.perf_counter() - start)
            report[label] = {f"{k}_us_per_image": statistics.median(v) / len(files) * 1e6 for k, v in seconds.items()}
            data_bytes = len(files) * len(mode) * size * size * 4  # float32, 1 (L) or 3 (RGB) channels
            report[label]["zoo_peak_memory_over_data"] = traced_peak(loaders["zoo"]) / data_bytes
    return report


def traced_peak(call) -> int:
    """The most memory (bytes) that numpy and Python objects held at once during `call()`,
    by tracemalloc (untimed: tracing slows allocation)."""
    import tracemalloc

    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


WORKERS = {
    "zoo": worker_zoo,
    "bare": worker_bare,
    "pythae": worker_pythae,
    "default-recipe": worker_default_recipe,
    "flops": worker_flops,
    "profile": worker_profile,
    "sampling": worker_sampling,
    "pythae-sampling": worker_pythae_sampling,
    "loading": worker_loading,
    "overhead": worker_overhead,
}
PROCESS_START = time.perf_counter()


# ----------------------------------------------------------------------------- driver
DEVICE = "cpu"  # set by --device: every worker trains there


class WorkerFailed(Exception):
    """A worker process exited with an error; `reason` is the last line it wrote."""

    def __init__(self, name: str, stderr: str):
        super().__init__(f"worker {name} failed:\n{stderr[-3000:]}")
        self.reason = (stderr.strip().splitlines() or ["no output"])[-1]


def run_worker(name: str, epochs: int, python: str = sys.executable, extra: list[str] | None = None) -> dict:
    command = [python, str(Path(__file__).resolve()), "worker", name, "--epochs", str(epochs), "--device", DEVICE]
    command += extra or []
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if result.returncode != 0:
        raise WorkerFailed(name, result.stderr)
    return json.loads(result.stdout.strip().splitlines()[-1])


def worker_figures(name: str, epochs: int, extra: list[str] | None = None) -> dict:
    """A worker's figures, less its peak RSS (for the parts that do not report it)."""
    return {k: v for k, v in run_worker(name, epochs, extra=extra).items() if k != "peak_rss_mb"}


def ensure_pythae() -> str:
    python = PYTHAE_VENV / "bin" / "python"
    if not python.exists() or subprocess.run([str(python), "-c", "import pythae"], capture_output=True).returncode:
        subprocess.run([sys.executable, "-m", "venv", str(PYTHAE_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "pythae"], check=True)
    return str(python)


def export_data(path: Path) -> None:
    import numpy as np

    import zoo

    splits = zoo.load_dataset("mnist-5k")
    np.savez(path, train=splits.train.x.numpy(), test=splits.test.x.numpy())


def zoo_command() -> str:
    """The `zoo` command of the environment running this script, activated or not."""
    beside = Path(sys.executable).with_name("zoo")
    found = str(beside) if beside.exists() else shutil.which("zoo")
    if found is None:
        raise SystemExit("no `zoo` command here: install zoo into this environment first (pip install -e .)")
    return found


def startup_seconds(args: list[str], repeats: int = 5) -> float:
    command = zoo_command()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([command, *args], capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def cpu_model() -> str:
    """The processor's name: the figures differ from one machine of this kind to the next."""
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return names[0] if names else platform.processor()


PARTS = ("throughput", "pairs", "flops", "sampling", "target", "startup", "profile", "loading", "overhead")


def report_path() -> Path:
    """The figures of DEVICE's runs: the CPU's and a GPU's are kept apart."""
    return HERE / ("train_speed.json" if DEVICE == "cpu" else f"train_speed_{DEVICE.replace(':', '')}.json")


def _saved_report() -> dict:
    return json.loads(report_path().read_text()) if report_path().exists() else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("parts", nargs="*", help=f"Which figures: {', '.join(PARTS)} (default: all).")
    parser.add_argument("--quick", action="store_true", help="1 repeat, 2 epochs")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu", help="where every system trains: cpu or cuda")
    parser.add_argument(
        "--skip", action="append", default=[], metavar="SYSTEM", help="leave a system out of the throughput part"
    )
    options = parser.parse_args()
    global DEVICE
    DEVICE = options.device
    unknown = set(options.parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts: {', '.join(sorted(unknown))}")
    unknown = set(options.skip) - set(benchmark_systems(0, "", Path()))
    if unknown:
        parser.error(f"unknown systems: {', '.join(sorted(unknown))}")
    needed = set(options.skip) & set(REQUIRED)
    if needed:
        parser.error(f"every ratio needs {', '.join(sorted(needed))}: it cannot be skipped")
    parts = options.parts or PARTS
    epochs, repeats = (2, 1) if options.quick else (options.epochs, options.repeats)
    if "startup" in parts:
        zoo_command()  # fail now, not after the long parts
    if "flops" in parts and "throughput" not in parts and "throughput" not in _saved_report():
        parser.error("the flops part needs the throughput figures: run the throughput part first")
    RESULTS.mkdir(exist_ok=True)
    pythae_python = ensure_pythae()
    data = RESULTS / "mnist-5k.npz"
    export_data(data)
    report = _saved_report()
    report.update({"batch_size": BATCH, "threads": os.cpu_count(), "device": DEVICE, "cpu": cpu_model()})
    if DEVICE != "cpu":
        import torch

        report["gpu"] = torch.cuda.get_device_name(torch.device(DEVICE))

    def save(figures: dict) -> None:
        report.update(figures)
        report_path().write_text(json.dumps(report, indent=2) + "\n")

    even_rounds = repeats + repeats % 2  # for the parts that alternate two systems' order
    measures = {
        "throughput": lambda: measure_throughput(epochs, repeats, pythae_python, data, save, options.skip),
        "pairs": lambda: report.update(pairs=measure_pairs(epochs, even_rounds, pythae_python, data)),
        "flops": lambda: report.update(flops=measure_flops(report["throughput"])),
        "sampling": lambda: report.update(sampling=measure_sampling(repeats, pythae_python)),
        "target": lambda: report.update(measure_time_to_target(pythae_python, data)),
        "startup": lambda: report.update(
            startup_seconds={"zoo --help": startup_seconds(["--help"]), "zoo list": startup_seconds(["list"])}
        ),
        "profile": lambda: report.update(profile=worker_figures("profile", 0)),
        "loading": lambda: report.update(loading=worker_figures("loading", 0)),
        "overhead": lambda: report.update(
            overhead={
                "epochs": epochs,
                "rounds": even_rounds,
                **worker_figures("overhead", epochs, extra=["--repeats", str(even_rounds)]),
            }
        ),
    }
    for part in PARTS:
        if part in parts:
            try:
                measures[part]()
            except WorkerFailed as err:
                raise SystemExit(str(err)) from None
            save({})  # after each part: a late failure keeps it
    print_report(report)


# (ratio key in the report, the throughput row it is a ratio to)
REFERENCES = (("vs_bare", "bare loop"), ("vs_pythae", "pythae"))
REQUIRED = ("zoo fp32", *dict(REFERENCES).values())  # the systems every ratio needs


def images_per_s(run: dict) -> float:
    return run["images"] / run["seconds"]


def benchmark_systems(epochs: int, pythae_python: str, data: Path) -> dict:
    """Each system of the throughput table: a call that trains it once in its own process."""
    speed_options = {
        "bf16": ["precision=bf16"],
        "channels_last": ["channels_last=true"],
        "compile": ["compile=true"],
        "bf16+matmul_conv": ["precision=bf16", "matmul_conv=true"],
        "fused adam": ["optimizer.fused=true"],
        "bf16+cl+compile": ["precision=bf16", "channels_last=true", "compile=true"],
        "fastest": ["precision=bf16", "channels_last=true", "matmul_conv=true", "optimizer.fused=true"],
    }
    systems = {
        "zoo fp32": functools.partial(run_worker, "zoo", epochs),
        "bare loop": functools.partial(run_worker, "bare", epochs),
        "pythae": functools.partial(run_worker, "pythae", epochs, pythae_python, ["--data", str(data)]),
    }
    for label, opts in speed_options.items():
        extra = [a for o in opts for a in ("--option", o)]
        systems[f"zoo {label}"] = functools.partial(run_worker, "zoo", epochs, extra=extra)
    return systems


def measure_throughput(
    epochs: int, repeats: int, pythae_python: str, data: Path, save: Callable, skip: Sequence[str] = ()
) -> None:
    """images/s of every system (median over interleaved rounds) and its ratios to the bare
    loop and to pythae (each the median of the ratios within a round: a round runs every
    system back to back, under much the same machine load, and a load spike spoils one
    round's ratios, not the median). The figures of the rounds so far are saved after each.
    A speed option that fails (a torch version's compiler can) is reported and left out, as
    are the systems in `skip`."""
    systems = benchmark_systems(epochs, pythae_python, data)
    labels = [label for label in systems if label not in skip]
    runs: dict[str, list[dict]] = {label: [] for label in labels}
    failed: dict[str, str] = {}
    for r in range(repeats):  # interleaved, each round starting one system later
        for label in labels[r % len(labels) :] + labels[: r % len(labels)]:
            if label in failed:
                continue
            try:
                runs[label].append(systems[label]())
            except WorkerFailed as err:
                if label in REQUIRED:
                    raise
                failed[label] = err.reason
                del runs[label]
        save({"epochs": epochs, "throughput": summarise_rounds(runs), "throughput_failed": failed})


def summarise_rounds(runs: dict[str, list[dict]]) -> dict:
    """Each system's median images/s, −ELBO and peak RSS, and its ratios to the references."""

    def rates(label: str) -> list[float]:
        return [images_per_s(run) for run in runs[label]]

    summary = {}
    for label, results in runs.items():
        vs = {ref: [a / b for a, b in zip(rates(label), rates(name), strict=True)] for ref, name in REFERENCES}
        summary[label] = {
            "images_per_s": statistics.median(rates(label)),
            "nelbo": statistics.median(r["nelbo"] for r in results),
            "peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in results),
            "repeats": len(results),
            **{ref: statistics.median(ratios) for ref, ratios in vs.items()},
            **{f"{ref}_range": [min(ratios), max(ratios)] for ref, ratios in vs.items()},
        }
    return summary


# (system, the system it is compared with): the headline ratios, and what torch's fused Adam
# step (an option of zoo's, not its default) does against the bare loop
PAIRS = (
    ("zoo fp32", "bare loop"),
    ("zoo fp32", "pythae"),
    ("zoo fastest", "pythae"),
    ("zoo fused adam", "bare loop"),
)


def measure_pairs(epochs: int, rounds: int, pythae_python: str, data: Path) -> dict:
    """The headline ratios measured head to head: each pair's two systems run right after
    each other, in alternating order, `rounds` times. In the throughput part the two systems
    of a ratio can run minutes apart, and this machine's load changes within minutes; here
    they run seconds apart, so each ratio is measured under much the same load."""
    systems = benchmark_systems(epochs, pythae_python, data)
    ratios: dict[str, list[float]] = {f"{a} / {b}": [] for a, b in PAIRS}
    for r in range(rounds):
        for a, b in PAIRS:
            rate = {label: images_per_s(systems[label]()) for label in alternating((a, b), r)}
            ratios[f"{a} / {b}"].append(rate[a] / rate[b])
    return {name: ratio_figures(values) for name, values in ratios.items()}


def alternating(pair: tuple[str, str], round_index: int) -> tuple[str, str]:
    """The order two systems run in, in a round: each goes first in every other round."""
    return pair if round_index % 2 == 0 else (pair[1], pair[0])


def ratio_figures(ratios: list[float]) -> dict:
    """Rounds' ratios summed up: their median, its 95% interval, their range, the ratios."""
    return {
        "median": statistics.median(ratios),
        "ci95": median_interval(ratios),
        "range": [min(ratios), max(ratios)],
        "rounds": len(ratios),
        "ratios": ratios,
    }


def median_interval(values: list[float], level: float = 0.95) -> list[float]:
    """A distribution-free confidence interval of the median: the k-th smallest and k-th
    largest value, k the largest with P(Binomial(n, 1/2) < k) ≤ (1 - level) / 2; at least
    `level` coverage (the whole range when there are too few values for more)."""
    n, ordered = len(values), sorted(values)
    k = 1
    while sum(math.comb(n, i) for i in range(k + 1)) / 2**n <= (1 - level) / 2:
        k += 1
    return [ordered[k - 1], ordered[n - k]]


# (key in the report, matmul precision it is measured against, throughput row)
FLOPS_ROWS = (
    ("float32", "float32", "zoo fp32"),
    ("bfloat16", "bfloat16", "zoo bf16"),
    ("fastest", "bfloat16", "zoo fastest"),
)


def measure_flops(throughput: dict) -> dict:
    """zoo's achieved training FLOP/s in float32 and with bf16 autocast (from the throughput
    figures), each as a fraction of the device's matmul rate in that precision."""
    flops = worker_figures("flops", 0)
    for key, precision, row in FLOPS_ROWS:
        if row not in throughput:  # figures from before that row existed
            continue
        achieved = flops["flops_per_image"] * throughput[row]["images_per_s"]
        peak = flops["matmul_flops"][precision]
        flops[key] = {"achieved_flops": achieved, "fraction_of_matmul": achieved / peak}
    return flops


def measure_sampling(repeats: int, pythae_python: str) -> dict:
    """Samples/s of every sampler (workers interleaved, medians); on the same nets, also
    against pythae's."""
    runs: dict[str, dict[str, list[float]]] = {}
    for _ in range(repeats):
        for result in (run_worker("sampling", 0), run_worker("pythae-sampling", 0, pythae_python)):
            for group, rates in result.items():
                if group != "peak_rss_mb":
                    for label, rate in rates.items():
                        runs.setdefault(group, {}).setdefault(label, []).append(rate)
    report = {
        group: {label: {"samples_per_s": statistics.median(r)} for label, r in rows.items()}
        for group, rows in runs.items()
    }
    pythae = report["same nets"]["pythae"]["samples_per_s"]
    for row in report["same nets"].values():
        row["vs_pythae"] = row["samples_per_s"] / pythae
    return report


def measure_time_to_target(pythae_python: str, data: Path) -> dict:
    """When the default recipe reaches TARGET_NELBO, against pythae's 3 epochs on its own nets."""
    default = run_worker("default-recipe", 0)
    pythae_own = run_worker("pythae", 3, pythae_python, ["--data", str(data), "--pythae-nets"])
    reached = default["seconds_to_target"]
    return {
        "default_recipe": default,
        "pythae_own_nets_3_epochs": pythae_own,
        "time_to_target": {
            "target_nelbo": TARGET_NELBO,
            "zoo_seconds": reached,
            "pythae_seconds_3_epochs": pythae_own["seconds"],
            "speedup": pythae_own["seconds"] / reached if reached else None,
        },
    }


def print_report(report: dict) -> None:
    print(
        f"{'system':<18}{'images/s':>10}{'× bare':>8}{'× pythae':>10}{'(rounds)':>13}"
        f"{'test −ELBO':>12}{'peak RSS MB':>13}"
    )
    for label, row in report.get("throughput", {}).items():
        low, high = row["vs_pythae_range"]
        print(
            f"{label:<18}{row['images_per_s']:>10.0f}{row['vs_bare']:>8.2f}{row['vs_pythae']:>10.2f}"
            f"{f'{low:.2f}–{high:.2f}':>13}{row['nelbo']:>12.1f}{row['peak_rss_mb']:>13.0f}"
        )
    for label, reason in report.get("throughput_failed", {}).items():
        print(f"{label:<18}failed: {reason[:200]}")
    for name, pair in report.get("pairs", {}).items():
        low, high = pair["range"]
        interval = f"95% interval {pair['ci95'][0]:.2f}–{pair['ci95'][1]:.2f}, " if "ci95" in pair else ""
        rounds = f"rounds {low:.2f}–{high:.2f}, {pair['rounds']} rounds"
        print(f"head to head, {name}: {pair['median']:.2f} ({interval}{rounds})")
    if "time_to_target" in report:
        default, pythae_own, t = report["default_recipe"], report["pythae_own_nets_3_epochs"], report["time_to_target"]
        reached = "never" if t["zoo_seconds"] is None else f"in {t['zoo_seconds']:.1f} s from process start"
        print(
            f"\ndefault recipe: test −ELBO {default['nelbo']:.1f} after {default['epochs']} epochs, "
            f"{default['seconds']:.0f} s; reaches {TARGET_NELBO:.0f} nats {reached}"
        )
        print(
            f"pythae, its own MNIST nets ({pythae_own['parameters']:,} parameters), 3 epochs: "
            f"{pythae_own['seconds']:.0f} s, test −ELBO {pythae_own['nelbo']:.1f}"
            + (f"; zoo is {t['speedup']:.1f}× sooner" if t["speedup"] else "")
        )
    for key, precision, row in FLOPS_ROWS:
        f = report.get("flops", {}).get(key)
        if f:
            print(
                f"{row}: achieved {f['achieved_flops'] / 1e9:.1f} GFLOP/s = {f['fraction_of_matmul']:.1%} "
                f"of {precision} matmul ({report['flops']['matmul_flops'][precision] / 1e9:.0f} GFLOP/s)"
            )
    for group, rows in report.get("sampling", {}).items():
        for label, row in rows.items():
            versus = f" ({row['vs_pythae']:.2f}× pythae)" if "vs_pythae" in row else ""
            print(f"sampling, {group}: {label} {row['samples_per_s']:,.0f} samples/s{versus}")
    if "startup_seconds" in report:
        s = report["startup_seconds"]
        print(f"start-up: zoo --help {s['zoo --help']:.2f} s, zoo list {s['zoo list']:.2f} s")
    for label, row in report.get("loading", {}).items():
        print(
            f"loading {label} PNGs, µs/image: zoo {row['zoo_us_per_image']:.0f}, decoding in one thread "
            f"{row['one_thread_us_per_image']:.0f}, in a pool of threads {row['threads_us_per_image']:.0f}"
            + (
                f"; zoo's peak memory {row['zoo_peak_memory_over_data']:.2f}× the data"
                if "zoo_peak_memory_over_data" in row
                else ""
            )
        )
    if "overhead" in report:
        o = report["overhead"]
        zoo_run, bare = o["zoo"], o["bare loop"]
        print(
            f"where a {o['epochs']}-epoch float32 run's time goes, seconds (medians of {o['rounds']} rounds "
            "in one process), zoo's extra as a share of the bare loop's run:"
        )
        for label in zoo_run:
            extra = (zoo_run[label] - bare.get(label, 0.0)) / bare["total"]
            print(f"  {label:<14}zoo {zoo_run[label]:7.3f}   bare loop {bare.get(label, 0.0):7.3f}   {extra:+7.1%}")
        ratio = o["zoo / bare loop"]
        low, high = ratio["ci95"]
        print(f"  zoo's speed: {ratio['median']:.3f}× the bare loop's (95% interval {low:.3f}–{high:.3f})")
    for mode, p in report.get("profile", {}).items():
        ops = ", ".join(f"{name} {ms:.1f}" for name, ms in list(p["self_ms_per_step"].items())[:4])
        print(f"profile {mode}: {p['ms_per_step']:.1f} ms/step; own ms/step: {ops}")


def worker_main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("worker")
    parser.add_argument("name", choices=WORKERS)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--option", action="append", default=[])
    parser.add_argument("--data")
    parser.add_argument("--pythae-nets", action="store_true")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int)  # the overhead worker's rounds
    args = parser.parse_args()
    result = WORKERS[args.name](args)
    result["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(result))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        worker_main()
    else:
        main()

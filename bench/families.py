"""Quality figures of the first-party families from their default recipes on mnist-5k.

    python bench/families.py [PART ...] [--out bench-runs] [--json bench/families.json]
                             [--k 1000] [--nll-images 1000] [--threads N]

Each PART trains default-recipe runs (mnist-5k, seed 0), computes its figures, prints them
and merges them into the JSON file (so parts can run separately or side by side):
- ae: test MSE per pixel of the default ae (asked: ≤ 0.012 with a 16-dim code);
- cvae: share of `label=k` samples that the mnist-5k judge (zoo.classifier) classifies as
  k, 100 samples per k, averaged over k = 0…9 (asked: ≥ 0.80);
- beta: test KL and reconstruction term of the vae with β = 1 and β = 4 (β = 4: lower KL,
  higher rec), and the β = 1 vae's importance-sampled NLL (K = --k samples, on the first
  --nll-images test images, mean ± standard error);
- iwae: the same NLL of the iwae (K = 5 in training), whose recipe is the vae's otherwise
  (asked: lower than the vae's);
- denoising: test digits with Gaussian noise (σ = 0.3) through the plain and the denoising ae;
- dsprites, dsprites_plain: the vae's `dsprites` recipe (Burgess et al.'s capacity annealing)
  and the same nets and schedule as a plain vae (gamma = 0): held-out −ELBO, KL, β-VAE
  score and MIG.
Default: all parts. Takes tens of minutes on 2 CPU cores (the iwae trains ~3× slower than
the vae; the NLL with K = 1000 on 1,000 images is 10⁶ decoder passes per model).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

import zoo

PARTS = ("ae", "cvae", "beta", "iwae", "denoising", "dsprites", "dsprites_plain")
_runs: dict[tuple, tuple[zoo.Run, float]] = {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("parts", nargs="*", help=f"Which figures: {', '.join(PARTS)} (default: all).")
    parser.add_argument("--out", default="bench-runs", help="Folder for the run folders.")
    parser.add_argument("--json", default="bench/families.json", help="JSON file the figures are merged into.")
    parser.add_argument("--k", type=int, default=1000, help="Importance samples for the NLL.")
    parser.add_argument("--nll-images", type=int, default=1000, help="Test images the NLL is averaged over.")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default).")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    unknown = sorted(set(args.parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown parts {unknown}; choose from {', '.join(PARTS)}")
    for part in args.parts or PARTS:
        figures = globals()[f"bench_{part}"](args)
        figures["threads"] = torch.get_num_threads()
        print(json.dumps({part: figures}, indent=2), flush=True)
        path = Path(args.json)
        merged = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({**merged, part: figures}, indent=2) + "\n", encoding="utf-8")


def train(args, family: str, recipe: str | None = None, overrides: tuple[str, ...] = ()) -> tuple[zoo.Run, float]:
    """A finished run and its training seconds; trained once per process."""
    key = (family, recipe, overrides)
    if key not in _runs:
        start = time.perf_counter()
        run = zoo.train(family, recipe, overrides=list(overrides), out=args.out)
        _runs[key] = run, round(time.perf_counter() - start, 1)
        print(f"{family} {recipe or ''} {' '.join(overrides)}: {_runs[key][1]} s, {run.path}", flush=True)
    return _runs[key]


def test_split() -> zoo.TensorData:
    return zoo.load_dataset("mnist-5k").test


def bench_ae(args) -> dict:
    run, seconds = train(args, "ae")
    return {"latent_dim": run.model.config.latent_dim, "test_mse_per_pixel": run.metrics["mse"], "seconds": seconds}


def bench_cvae(args) -> dict:
    from zoo.classifier import digit_classifier

    run, seconds = train(args, "cvae")
    judge = digit_classifier("mnist-5k")
    generator = torch.Generator().manual_seed(0)
    per_label = [
        (judge(run.model.sample(100, generator, label=k)).argmax(1) == k).float().mean().item() for k in range(10)
    ]
    return {"label_accuracy": sum(per_label) / 10, "per_label": per_label, "test_nelbo": run.metrics["nelbo"]}


def nll(args, run: zoo.Run) -> dict:
    x = test_split().x[: args.nll_images]
    m = run.model
    estimate = zoo.importance_sampled_nll(m.encoder, m.prior, m.decoder, x, k=args.k)
    return {"is_nll": estimate.mean, "is_nll_stderr": estimate.stderr, "k": args.k, "nll_images": len(x)}


def bench_beta(args) -> dict:
    figures = {}
    for key, overrides in [("beta1", ()), ("beta4", ("model.beta=4",))]:
        run, seconds = train(args, "vae", overrides=overrides)
        figures[key] = {name: run.metrics[name] for name in ("kl", "rec", "nelbo")} | {"seconds": seconds}
    figures["beta1"] |= nll(args, train(args, "vae")[0])
    return figures


def bench_iwae(args) -> dict:
    run, seconds = train(args, "iwae")
    figures = {name: run.metrics[name] for name in ("iwnelbo", "nelbo", "kl", "rec")}
    return figures | {"seconds": seconds} | nll(args, run)


def bench_denoising(args) -> dict:
    x = test_split().x
    noisy = (x + 0.3 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    errors = {}
    for recipe in ("mnist", "denoising"):
        run, _ = train(args, "ae", recipe)
        errors[recipe] = (run.model.reconstruct(noisy) - x).pow(2).mean().item()
    return {"noisy_test_mse_plain": errors["mnist"], "noisy_test_mse_denoising": errors["denoising"]}


def disentanglement(args, overrides: tuple[str, ...] = ()) -> dict:
    from zoo.evaluation.report import evaluate

    run, seconds = train(args, "vae", "dsprites", overrides)
    scores = evaluate(run.model, zoo.load_dataset("dsprites"), ["disentanglement"]).metrics
    return {name: run.metrics[name] for name in ("nelbo", "kl", "rec")} | scores | {"seconds": seconds}


def bench_dsprites(args) -> dict:
    return disentanglement(args)


def bench_dsprites_plain(args) -> dict:
    return disentanglement(args, ("model.gamma=0",))


if __name__ == "__main__":
    main()

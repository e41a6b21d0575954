"""`zoo eval` figures of the default vae recipe on the mnist-5k test split, with the references
they are judged against: the raw-pixel probes, and the FID of noise images and of as many
training images in the same feature space.

    python bench/evaluation.py [--run RUN] [--out bench-runs] [--json bench/evaluation.json] [--k 1000]

Trains `zoo train vae` (default recipe, seed 0) unless --run names a finished run, evaluates
it with every group (importance-sampled NLL with K = --k on all 1,000 test images), prints a
Markdown table and writes the JSON. Several minutes on 2 CPU cores (the NLL with K = 1000 is
10⁶ decoder passes).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

import zoo
from zoo.classifier import digit_classifier, embed
from zoo.evaluation.report import EvalSettings, evaluate
from zoo.evaluation.samples import frechet_distance

ROWS = [
    ("test −ELBO (nats)", "nelbo"),
    ("importance-sampled NLL, K = 1000 (nats)", "nll"),
    ("bits/dim", "bits_per_dim"),
    ("reconstruction MSE per pixel", "mse"),
    ("PSNR (dB)", "psnr"),
    ("SSIM", "ssim"),
    ("linear-probe accuracy, codes", "probe_linear"),
    ("linear-probe accuracy, raw pixels", "probe_linear_pixels"),
    ("5-NN accuracy, codes", "probe_knn"),
    ("5-NN accuracy, raw pixels", "probe_knn_pixels"),
    ("FID (zoo classifier features), samples", "fid"),
    ("FID, training images (floor)", "fid_train_images"),
    ("FID, uniform noise images", "fid_noise"),
    ("precision / recall", "precision"),
    ("density / coverage", "density"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", help="A finished vae run folder (default: train one).")
    parser.add_argument("--out", default="bench-runs", help="Folder for the run folder.")
    parser.add_argument("--json", default="bench/evaluation.json", help="Where the figures go.")
    parser.add_argument("--k", type=int, default=1000, help="Importance samples for the NLL.")
    args = parser.parse_args()
    started = time.perf_counter()
    path = Path(args.run) if args.run else zoo.train("vae", out=args.out).path
    trained = time.perf_counter() - started
    model = zoo.load(path)
    splits = zoo.load_dataset("mnist-5k")
    started = time.perf_counter()
    report = evaluate(model, splits, settings=EvalSettings(nll_k=args.k), reference=str(path))
    seconds = time.perf_counter() - started
    report.write(path / "eval.json")
    classifier = digit_classifier("mnist-5k")
    noise = torch.rand(splits.test.x.shape, generator=torch.Generator().manual_seed(0))
    metrics = dict(report.metrics)
    metrics["fid_noise"] = frechet_distance(embed(classifier, splits.test.x), embed(classifier, noise))
    document = {
        "run": str(path),
        "train_seconds": round(trained, 1) if not args.run else None,
        "eval_seconds": round(seconds, 1),
        "eval": report.to_json(),
        "metrics": metrics,
    }
    Path(args.json).write_text(json.dumps(document, indent=2) + "\n")
    print("| figure | value |\n|---|---|")
    for label, key in ROWS:
        second = {"precision": "recall", "density": "coverage"}.get(key)
        value = f"{metrics[key]:.3g} / {metrics[second]:.3g}" if second else f"{metrics[key]:.4g}"
        print(f"| {label} | {value} |")
    print(f"\neval took {seconds:.0f} s; wrote {args.json}")


if __name__ == "__main__":
    main()

"""Quality figures of the vqvae and gan default recipes on mnist-5k (issue 3's targets).

    python bench/vqvae_gan.py                       # trains both default recipes, then judges them
    python bench/vqvae_gan.py --vqvae RUN --gan RUN # judges existing runs

Prints a table and writes the figures as JSON (--json, default bench/vqvae_gan.json).
Samples are judged by zoo's mnist-5k classifier (zoo.digit_classifier): a sample counts as
confidently classified when its top class has probability ≥ 0.9.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

import zoo

TARGETS = {
    "vqvae test MSE per pixel": ("≤", 0.010),
    "vqvae codebook usage on test": ("≥", 0.90),
    "vqvae prior samples confidently classified": ("≥", 0.70),
    "gan samples confidently classified": ("≥", 0.70),
    "gan classes among 1,000 samples": ("≥", 10),
}


def judge_samples(model: zoo.Family, n: int = 1000, seed: int = 0) -> tuple[float, int]:
    """Fraction of n samples the classifier labels with confidence ≥ 0.9, and how many
    classes those confident samples cover."""
    classifier = zoo.digit_classifier("mnist-5k")
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        samples = torch.cat([model.sample(250, generator=generator) for _ in range(n // 250)])
        probs = classifier(samples).softmax(1)
    confidence, label = probs.max(1)
    confident = confidence >= 0.9
    return confident.float().mean().item(), len(label[confident].unique())


def trained(family: str, run: str | None) -> tuple[Path, dict[str, float], float]:
    if run:
        lines = (Path(run) / "metrics.jsonl").read_text().splitlines()
        end = [r for r in map(json.loads, lines) if r["event"] == "end"][-1]
        metrics = {k: v for k, v in end.items() if k not in ("event", "step", "seconds", "kept_epoch")}
        return Path(run), metrics, end["seconds"]
    start = time.perf_counter()
    result = zoo.train(family, out="runs")
    return result.path, result.metrics, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vqvae", help="existing vqvae run folder (default: train the default recipe)")
    parser.add_argument("--gan", help="existing gan run folder (default: train the default recipe)")
    parser.add_argument("--json", default=str(Path(__file__).with_suffix(".json")), help="where to write the figures")
    args = parser.parse_args()

    vq_path, vq_metrics, vq_seconds = trained("vqvae", args.vqvae)
    gan_path, gan_metrics, gan_seconds = trained("gan", args.gan)
    vq_confident, _ = judge_samples(zoo.load(vq_path))
    gan_confident, gan_classes = judge_samples(zoo.load(gan_path))
    figures = {
        "vqvae test MSE per pixel": vq_metrics["mse"],
        "vqvae codebook usage on test": vq_metrics["usage"],
        "vqvae prior samples confidently classified": vq_confident,
        "gan samples confidently classified": gan_confident,
        "gan classes among 1,000 samples": gan_classes,
    }
    rows = []
    for name, value in figures.items():
        op, target = TARGETS[name]
        ok = value <= target if op == "≤" else value >= target
        rows.append({"figure": name, "value": value, "target": f"{op} {target}", "met": ok})
    report = {
        "runs": {"vqvae": str(vq_path), "gan": str(gan_path)},
        "train_seconds": {"vqvae": vq_seconds, "gan": gan_seconds},
        "vqvae_metrics": vq_metrics,
        "gan_metrics": gan_metrics,
        "figures": rows,
        "torch_threads": torch.get_num_threads(),
    }
    Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    width = max(len(r["figure"]) for r in rows)
    print(f"{'figure':<{width}}  {'value':>8}  {'target':>8}  met")
    for r in rows:
        print(f"{r['figure']:<{width}}  {r['value']:>8.4g}  {r['target']:>8}  {'yes' if r['met'] else 'NO'}")
    print(f"train seconds: vqvae {vq_seconds:.0f}, gan {gan_seconds:.0f}; runs: {vq_path}, {gan_path}")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()

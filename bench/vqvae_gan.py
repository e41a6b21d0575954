"""Quality figures of the vqvae and gan default recipes on mnist-5k (issue 3's targets).

    python bench/vqvae_gan.py                       # trains both default recipes, then judges them
    python bench/vqvae_gan.py --vqvae RUN --gan RUN # judges existing runs

Prints a table and writes the figures as JSON (--json, default bench/vqvae_gan.json).
Samples are judged by zoo's mnist-5k classifier (zoo.digit_classifier): a sample counts as
confidently classified when its top class has probability ≥ 0.9. Also reports the same
judgement of the real test digits and of noise (the judge's own reference), and, for the
vqvae, of samples drawn with top-k cuts of its prior (`model.top_k`).
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from pathlib import Path

import torch

import zoo
from zoo.classifier import CONFIDENT, classify, confidently_classified, embed

TARGETS = {
    "vqvae test MSE per pixel": ("≤", 0.010),
    "vqvae codebook usage on test": ("≥", 0.90),
    "vqvae prior samples confidently classified": ("≥", 0.70),
    "gan samples confidently classified": ("≥", 0.70),
    "gan classes among 1,000 samples": ("≥", 10),
}
PRIOR_TOP_K = (0, 16, 8, 5, 3)


def judge_samples(model: zoo.Family, n: int = 1000, seed: int = 0) -> dict:
    """For n samples: the fraction the classifier labels with confidence ≥ 0.9, how many
    classes those confident samples cover, how many samples fall in each class, and the
    Fréchet distance to the test split in the classifier's features (variety as well as
    quality: it grows when the samples crowd into a few classes)."""
    classifier = zoo.digit_classifier("mnist-5k")
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        samples = torch.cat([model.sample(250, generator=generator) for _ in range(n // 250)])
    features = embed(classifier, samples)
    label, confidence = classify(classifier, features)
    judged = confidently_classified(label, confidence)
    return {
        "confident": judged["confident"],
        "classes": int(judged["classes"]),
        "per_class": torch.bincount(label, minlength=classifier.head.out_features).tolist(),
        "fd": zoo.frechet_distance(test_features(), features),
    }


def judge_reference() -> dict:
    """The classifier on the real test digits (what samples are up against), on uniform
    noise and on 50/50 blends of two test digits of different classes: its accuracy, and
    the fraction it labels with confidence ≥ 0.9 (of the test digits: how many of those rightly);
    and the Fréchet distance of as many training digits as there are test digits, the floor."""
    classifier, splits = zoo.digit_classifier("mnist-5k"), zoo.load_dataset("mnist-5k")
    train, test = splits.train, splits.test
    generator = torch.Generator().manual_seed(0)
    noise = torch.rand(test.x.shape, generator=generator)
    partner = torch.randperm(len(test.x), generator=generator)
    differ = test.y != test.y[partner]
    blends = (test.x[differ] + test.x[partner][differ]) / 2
    label, confidence = classify(classifier, test_features())
    confident, right = confidence >= CONFIDENT, label == test.y
    noise_confidence, blend_confidence = (classify(classifier, embed(classifier, x))[1] for x in (noise, blends))
    return {
        "test_accuracy": right.float().mean().item(),
        "test_confident": confident.float().mean().item(),
        "test_confident_right": right[confident].float().mean().item(),
        "noise_confident": (noise_confidence >= CONFIDENT).float().mean().item(),
        "blend_confident": (blend_confidence >= CONFIDENT).float().mean().item(),
        "train_digits_fd": zoo.frechet_distance(test_features(), embed(classifier, train.x[: len(test.x)])),
    }


@functools.cache
def test_features() -> torch.Tensor:
    """The classifier's features of the mnist-5k test split, computed once."""
    return embed(zoo.digit_classifier("mnist-5k"), zoo.load_dataset("mnist-5k").test.x)


def prior_sampling(vqvae: zoo.Family, run: Path, judged: dict) -> list[dict]:
    """The vqvae's samples under top-k cuts of its prior: more confident, less varied.
    `judged` is `judge_samples(vqvae)`, reused for the run's own top_k (sampling is slow)."""
    return [
        {"top_k": k, **(judged if k == vqvae.config.top_k else judge_samples(zoo.load(run, settings={"top_k": k})))}
        for k in PRIOR_TOP_K
    ]


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
    vqvae, gan = zoo.load(vq_path), zoo.load(gan_path)
    vq_samples, gan_samples = judge_samples(vqvae), judge_samples(gan)
    figures = {
        "vqvae test MSE per pixel": vq_metrics["mse"],
        "vqvae codebook usage on test": vq_metrics["usage"],
        "vqvae prior samples confidently classified": vq_samples["confident"],
        "gan samples confidently classified": gan_samples["confident"],
        "gan classes among 1,000 samples": gan_samples["classes"],
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
        "samples": {"vqvae": vq_samples, "gan": gan_samples},
        "judge": judge_reference(),
        "vqvae_prior_top_k": prior_sampling(vqvae, vq_path, vq_samples),
        "torch_threads": torch.get_num_threads(),
    }
    Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    width = max(len(r["figure"]) for r in rows)
    print(f"{'figure':<{width}}  {'value':>8}  {'target':>8}  met")
    for r in rows:
        print(f"{r['figure']:<{width}}  {r['value']:>8.4g}  {r['target']:>8}  {'yes' if r['met'] else 'NO'}")
    judge = report["judge"]
    print(
        f"the judge on real test digits: accuracy {judge['test_accuracy']:.3f}, confident "
        f"{judge['test_confident']:.3f} ({judge['test_confident_right']:.3f} of those rightly); "
        f"confident on noise {judge['noise_confident']:.3f}, on blends {judge['blend_confident']:.3f}; "
        f"fd of training digits {judge['train_digits_fd']:.1f}"
    )
    print("vqvae prior top_k  confident  fd     samples per class")
    for r in report["vqvae_prior_top_k"]:
        print(f"{r['top_k']:>15}  {r['confident']:>9.3f}  {r['fd']:>5.1f}  {r['per_class']}")
    print(f"train seconds: vqvae {vq_seconds:.0f}, gan {gan_seconds:.0f}; runs: {vq_path}, {gan_path}")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()

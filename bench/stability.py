"""Training-stability figures of the vae on mnist-5k.

    python bench/stability.py [PART ...] [--out bench-runs] [--json bench/stability.json] [--threads N]

Each PART prints its figures and merges them into the JSON file:
- seeds: the default vae recipe trained with seeds 0, 1 and 2: every logged training loss
  finite, and the test −ELBO of each (asked: spread below 3 nats);
- logvar: the first 30 Adam steps (lr 0.05, batch 64, the default recipe's nets) from the
  same initial weights with each posterior scale parameterisation (`model.posterior_scale`):
  the largest training KL and the step (if any) where the loss became non-finite. Measured
  here, not in a run, so that every step is seen even after a blow-up.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch

import zoo

PARTS = ("seeds", "logvar")
SEEDS = (0, 1, 2)
SCALES = ("exp", "clamp", "softplus")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("parts", nargs="*", help=f"Which figures: {', '.join(PARTS)} (default: all).")
    parser.add_argument("--out", default="bench-runs", help="Folder for the run folders.")
    parser.add_argument("--json", default="bench/stability.json", help="JSON file the figures are merged into.")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default).")
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=list(SEEDS),
        help="Seeds of the seeds part (runs already in the "
        "JSON file are kept, so seeds can train in separate processes).",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    unknown = sorted(set(args.parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown parts {unknown}; choose from {', '.join(PARTS)}")
    path = Path(args.json)
    for part in args.parts or PARTS:
        figures = globals()[f"bench_{part}"](args)
        figures["threads"] = torch.get_num_threads()
        merged = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        if part == "seeds":
            figures = _with_earlier_seeds(figures, merged.get("seeds", {}))
        print(json.dumps({part: figures}, indent=2), flush=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({**merged, part: figures}, indent=2) + "\n", encoding="utf-8")


def bench_seeds(args) -> dict:
    figures: dict = {"recipe": "vae/mnist (default)", "runs": {}}
    for seed in args.seeds:
        start = time.perf_counter()
        run = zoo.train("vae", seed=seed, out=args.out)
        seconds = round(time.perf_counter() - start, 1)
        records = [json.loads(line) for line in (run.path / "metrics.jsonl").read_text().splitlines()]
        losses = [r["loss"] for r in records if r["event"] == "train"]
        figures["runs"][str(seed)] = {
            "test_nelbo": run.metrics["nelbo"],
            "test_kl": run.metrics["kl"],
            "all_losses_finite": all(math.isfinite(v) for v in losses),
            "logged_windows": len(losses),
            "max_grad_norm": max((r.get("grad_norm", 0.0) for r in records if r["event"] == "train"), default=None),
            "seconds": seconds,
            "path": str(run.path),
        }
        print(f"seed {seed}: test nelbo {run.metrics['nelbo']:.2f} in {seconds} s", flush=True)
    return figures


def _with_earlier_seeds(figures: dict, earlier: dict) -> dict:
    """The runs of this process and those already recorded; the spread over all of them."""
    runs = {**earlier.get("runs", {}), **figures["runs"]}
    nelbos = [r["test_nelbo"] for r in runs.values()]
    return {
        **figures,
        "runs": dict(sorted(runs.items())),
        "nelbo_spread": max(nelbos) - min(nelbos),
        "all_finite": all(r["all_losses_finite"] for r in runs.values()),
    }


def bench_logvar(args) -> dict:
    data = zoo.load_dataset("mnist-5k").train
    recipe = zoo.load_recipe("vae")
    figures: dict = {"lr": 0.05, "steps": 30, "batch_size": 64}
    for scale in SCALES:
        torch.manual_seed(0)
        model = zoo.create("vae", {**recipe.model, "posterior_scale": scale})
        optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
        generator = torch.Generator().manual_seed(0)
        max_kl, non_finite_at = 0.0, None
        for step in range(30):
            batch = data.batch(torch.randint(len(data), (64,), generator=generator))
            out = model.loss(batch)
            if not torch.isfinite(out.total):
                non_finite_at = step
                break
            max_kl = max(max_kl, out.terms["kl"].item())
            optimizer.zero_grad()
            out.total.backward()
            optimizer.step()
        figures[scale] = {"max_kl": max_kl, "non_finite_at_step": non_finite_at}
    return figures


if __name__ == "__main__":
    main()

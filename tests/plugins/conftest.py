"""Short mnist-5k runs of the first-party families, trained once per session and shared."""

from __future__ import annotations

import pytest

import zoo

#: Small nets and a hot schedule, 2 epochs (250 steps) on mnist-5k: a few seconds per run.
SHORT = [
    "train.epochs=2",
    "train.batch_size=32",
    "train.optimizer.lr=3e-3",
    "train.scheduler.warmup_epochs=0",
    "model.latent_dim=8",
    "model.hidden_dim=0",
    "model.channels=[16, 32]",
    "train.log_every=50",
    "train.sample_grid=16",
]
#: Per family additions: the iwae's bound with 3 samples (each costs a decoder pass).
EXTRA = {"iwae": ["model.k=3"]}


@pytest.fixture(scope="session")
def short_run(tmp_path_factory):
    """short_run("vae", "model.beta=4") → a finished run on mnist-5k (read-only, cached)."""
    runs: dict[tuple[str, ...], zoo.Run] = {}

    def get(family: str, *extra: str) -> zoo.Run:
        key = (family, *extra)
        if key not in runs:
            out = str(tmp_path_factory.mktemp(f"{family}-runs"))
            runs[key] = zoo.train(family, overrides=[*SHORT, *EXTRA.get(family, []), *extra], out=out)
        return runs[key]

    return get

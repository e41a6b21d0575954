"""The gan's held-out score: the Fréchet distance between its samples and held-out images in
the feature space of zoo's digit classifier for the training data (zoo.frechet_distance)."""

from __future__ import annotations

import functools

import torch

import zoo


@functools.lru_cache(maxsize=4)
def judge(data: str, device: str) -> torch.nn.Module:
    """zoo's classifier for `data` (trained once and cached on disk), kept per process."""
    try:
        return zoo.digit_classifier(data, device=device)
    except zoo.InvalidInputError as err:
        raise zoo.InvalidInputError(
            f"the gan's held-out Fréchet distance needs a classifier for '{data}': {err}; "
            "train without it with --set model.fd_samples=0 --set train.keep_best=false"
        ) from None

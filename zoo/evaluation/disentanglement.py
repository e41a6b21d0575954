"""Disentanglement of codes against known generative factors (dsprites): the β-VAE metric
(Higgins et al. 2017) and the mutual information gap, MIG (Chen et al. 2018).

Both take codes (N, D) of examples and their factor indices (N, F). Factors that take a
single value in the data are left out.
"""

from __future__ import annotations

import numpy as np
from torch import Tensor

MIG_BINS = 20


def beta_vae_score(
    codes: Tensor, factors: Tensor, *, pairs: int = 64, train_votes: int = 800, test_votes: int = 400, seed: int = 0
) -> float:
    """Accuracy of a linear classifier that tells which factor was held fixed from the mean
    absolute code difference of `pairs` example pairs sharing that factor's value (chance is
    1/number of factors). Pairs are drawn from the examples given, not rendered anew."""
    from sklearn.linear_model import LogisticRegression

    z, f = _arrays(codes, factors)
    varying = [k for k in range(f.shape[1]) if len(np.unique(f[:, k])) > 1]
    rng = np.random.Generator(np.random.PCG64(seed))
    by_value = {k: {v: np.flatnonzero(f[:, k] == v) for v in np.unique(f[:, k])} for k in varying}

    def votes(n: int) -> tuple[np.ndarray, np.ndarray]:
        features, targets = np.empty((n, z.shape[1])), np.empty(n, dtype=np.int64)
        for i in range(n):
            k = rng.choice(varying)
            pool = by_value[k][f[rng.integers(len(f)), k]]
            first, second = rng.choice(pool, pairs), rng.choice(pool, pairs)
            features[i] = np.abs(z[first] - z[second]).mean(0)
            targets[i] = k
        return features, targets

    x_train, y_train = votes(train_votes)
    x_test, y_test = votes(test_votes)
    return float(LogisticRegression(max_iter=5000).fit(x_train, y_train).score(x_test, y_test))


def mutual_information_gap(codes: Tensor, factors: Tensor, bins: int = MIG_BINS) -> float:
    """Mean over factors of (I(z_a; v) − I(z_b; v)) / H(v), where z_a and z_b are the two code
    dimensions most informative about factor v; each code dimension is discretised into
    `bins` equal-width bins. In [0, 1]; higher means each factor lives in one dimension."""
    from sklearn.metrics import mutual_info_score

    z, f = _arrays(codes, factors)
    if z.shape[1] < 2:
        raise ValueError("MIG needs codes with at least 2 dimensions")
    discrete = [np.digitize(col, np.histogram_bin_edges(col, bins)[1:-1]) for col in z.T]
    gaps = []
    for v in f.T:
        if len(np.unique(v)) < 2:
            continue
        information = sorted((mutual_info_score(v, d) for d in discrete), reverse=True)
        gaps.append((information[0] - information[1]) / mutual_info_score(v, v))
    return float(np.mean(gaps))


def _arrays(codes: Tensor, factors: Tensor) -> tuple[np.ndarray, np.ndarray]:
    if len(codes) != len(factors):
        raise ValueError(f"{len(codes)} codes but {len(factors)} factor rows")
    return codes.detach().flatten(1).double().cpu().numpy(), factors.cpu().numpy()

"""Classification from codes: how much of the label a representation makes linearly (or
locally) readable. Classifiers are fitted on the train split and scored on the test split."""

from __future__ import annotations

import hashlib
import json

import numpy as np
from torch import Tensor

from zoo import atomic

KNN_NEIGHBOURS = 5
#: Inverse L2 strengths the linear probe chooses from, by accuracy on a held-out fifth of the
#: train split (the test split is never seen before the final score).
PROBE_C = (0.01, 0.1, 1.0, 10.0, 100.0)
PROBE_SEED = 0


def probe_accuracy(train: Tensor, train_y: Tensor, test: Tensor, test_y: Tensor) -> dict[str, float]:
    """linear: accuracy of a multinomial logistic regression on standardised features, its
    L2 strength chosen on a held-out fifth of the train split and then refitted on all of it;
    knn: accuracy of a 5-nearest-neighbour vote (Euclidean, standardised features)."""
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.preprocessing import StandardScaler

    x_train, x_test = _flat(train), _flat(test)
    y_train, y_test = train_y.cpu().numpy(), test_y.cpu().numpy()
    scaler = StandardScaler().fit(x_train)
    x_train, x_test = scaler.transform(x_train), scaler.transform(x_test)
    linear = _logistic(_chosen_c(x_train, y_train)).fit(x_train, y_train)
    knn = KNeighborsClassifier(n_neighbors=KNN_NEIGHBOURS).fit(x_train, y_train)
    return {"linear": float(linear.score(x_test, y_test)), "knn": float(knn.score(x_test, y_test))}


def pixel_probe_accuracy(train: Tensor, train_y: Tensor, test: Tensor, test_y: Tensor) -> dict[str, float]:
    """probe_accuracy on the inputs themselves, the baseline for codes. It does not depend on
    a model, so it is cached on disk under a hash of the data, the probe's settings and the
    scikit-learn version (the six fits take ~15 s for mnist-5k)."""
    import sklearn

    from zoo.classifier import cache_dir

    digest = hashlib.sha256(repr((PROBE_C, PROBE_SEED, KNN_NEIGHBOURS, sklearn.__version__)).encode())
    for tensor in (train, train_y, test, test_y):
        digest.update(repr((tuple(tensor.shape), str(tensor.dtype))).encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    path = cache_dir() / "probes" / f"pixels-{digest.hexdigest()[:32]}.json"
    try:
        return {k: float(v) for k, v in json.loads(path.read_text(encoding="utf-8")).items()}
    except (OSError, ValueError, AttributeError):  # absent or unreadable: compute it again
        pass
    accuracy = probe_accuracy(train, train_y, test, test_y)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(path, json.dumps(accuracy))
    return accuracy


def _chosen_c(x: np.ndarray, y: np.ndarray) -> float:
    """The PROBE_C value with the best accuracy on a stratified held-out fifth of (x, y); ties
    go to the stronger regularisation."""
    from sklearn.model_selection import train_test_split

    stratify = y if np.unique(y, return_counts=True)[1].min() >= 2 else None
    fit_x, val_x, fit_y, val_y = train_test_split(x, y, test_size=0.2, stratify=stratify, random_state=PROBE_SEED)
    scores = [_logistic(c).fit(fit_x, fit_y).score(val_x, val_y) for c in PROBE_C]
    return PROBE_C[int(np.argmax(scores))]


def _logistic(c: float):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, max_iter=2000)


def _flat(features: Tensor) -> np.ndarray:
    return features.detach().flatten(1).double().cpu().numpy()

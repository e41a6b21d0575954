"""Classification from codes: how much of the label a representation makes linearly (or
locally) readable. Classifiers are fitted on the train split and scored on the test split."""

from __future__ import annotations

import numpy as np
from torch import Tensor

KNN_NEIGHBOURS = 5


def probe_accuracy(train: Tensor, train_y: Tensor, test: Tensor, test_y: Tensor) -> dict[str, float]:
    """linear: accuracy of a multinomial logistic regression on standardised features;
    knn: accuracy of a 5-nearest-neighbour vote (Euclidean, standardised features)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.preprocessing import StandardScaler

    x_train, x_test = _flat(train), _flat(test)
    y_train, y_test = train_y.cpu().numpy(), test_y.cpu().numpy()
    scaler = StandardScaler().fit(x_train)
    x_train, x_test = scaler.transform(x_train), scaler.transform(x_test)
    linear = LogisticRegression(max_iter=2000).fit(x_train, y_train)
    knn = KNeighborsClassifier(n_neighbors=KNN_NEIGHBOURS).fit(x_train, y_train)
    return {"linear": float(linear.score(x_test, y_test)), "knn": float(knn.score(x_test, y_test))}


def _flat(features: Tensor) -> np.ndarray:
    return features.detach().flatten(1).double().cpu().numpy()

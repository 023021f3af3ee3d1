"""The numpy logistic model: scaling by declared bounds, loss, and training against
scikit-learn on the same data."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss as sklearn_log_loss
from sklearn.model_selection import train_test_split

from ailedger.federated.logistic import (
    ModelInputError,
    accuracy,
    log_loss,
    predict_proba,
    scale,
    train_centralised,
)


def test_scale_maps_declared_bounds_to_minus_one_one_and_clamps() -> None:
    x = np.array([[0.0, 5.0, 7.0], [10.0, -100.0, 7.0], [5.0, 100.0, 7.0]])
    scaled = scale(x, [0.0, 0.0, 7.0], [10.0, 10.0, 7.0])
    assert scaled.tolist() == [[-1.0, 0.0, 0.0], [1.0, -1.0, 0.0], [0.0, 1.0, 0.0]]


def test_probabilities_and_log_loss_agree_with_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    x, weights = rng.uniform(-1, 1, size=(50, 3)), np.array([3.0, -2.0, 4.0, 0.5])
    y = (rng.uniform(size=50) < 0.5).astype(float)
    p = predict_proba(weights, x)
    assert p == pytest.approx(1 / (1 + np.exp(-(x @ weights[:-1] + weights[-1]))))
    assert log_loss(weights, x, y) == pytest.approx(sklearn_log_loss(y, p), rel=1e-9)
    # A confident wrong model stays finite, where log(sigmoid) would round to log(0).
    assert np.isfinite(log_loss(weights * 1000, x, y))


def test_centralised_training_is_close_to_scikit_learn() -> None:
    data = load_breast_cancer()
    x = scale(data.data, data.data.min(axis=0), data.data.max(axis=0))
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, data.target, test_size=0.2, random_state=0, stratify=data.target
    )
    weights = train_centralised(
        x_tr, y_tr, epochs=100, lr=2.0, batch=32, rng=np.random.default_rng(0)
    )
    reference = LogisticRegression(max_iter=5000).fit(x_tr, y_tr).score(x_te, y_te)
    assert accuracy(weights, x_te, y_te) >= reference - 0.03


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: predict_proba(np.zeros(3), np.zeros((4, 3))), "expect one weight per feature"),
        (lambda: accuracy(np.zeros(3), np.zeros((2, 2)), [0, 2]), "each 0 or 1"),
        (lambda: scale(np.zeros((2, 2)), [0, 1], [1, 0]), "lower <= upper"),
        (lambda: scale(np.zeros((2, 2)), [0], [1]), "one lower and one upper bound"),
        (lambda: scale([[np.nan, 0.0]], [0, 0], [1, 1]), "NaN or infinity"),
        (lambda: train_centralised(np.zeros((2, 2)), [0, 1], 1, 0.0, 1), "finite lr > 0"),
    ],
)
def test_mismatched_inputs_are_refused(call: object, message: str) -> None:
    with pytest.raises(ModelInputError, match=message):
        call()  # type: ignore[operator]

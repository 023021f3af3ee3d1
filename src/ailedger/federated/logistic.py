"""Logistic regression in numpy: the model federated rounds train, and what the requester
needs to judge it (probabilities, accuracy, log-loss on its committed validation set).

A model is one float vector: one weight per feature, then the bias (last). Features are
scaled to [-1, 1] by *declared* bounds, clamped (never by data statistics, which would
differ between institutions and leak), so every participant and the requester see the
same inputs for the same raw row. Training is plain mini-batch gradient descent on the mean
log-loss; its gradient is exact in closed form, ``mean((sigmoid(Xw + b) - y) * [X, 1])``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.special import expit

from ailedger.errors import AiledgerError

Vector = npt.NDArray[np.float64]
Matrix = npt.NDArray[np.float64]


class ModelInputError(AiledgerError):
    """Weights, features, labels or bounds that do not fit together (the message says
    which shapes or values disagree); fix the task definition or the data."""


def _features(weights: npt.ArrayLike, x: npt.ArrayLike) -> tuple[Vector, Matrix]:
    w = np.asarray(weights, dtype=np.float64)
    rows = np.asarray(x, dtype=np.float64)
    if w.ndim != 1 or rows.ndim != 2 or w.shape[0] != rows.shape[1] + 1:
        raise ModelInputError(
            f"weights of shape {w.shape} do not fit features of shape {rows.shape}: "
            "expect one weight per feature column plus the bias, last"
        )
    return w, rows


def _labels(y: npt.ArrayLike, rows: int) -> Vector:
    labels = np.asarray(y, dtype=np.float64)
    if labels.shape != (rows,) or not np.all((labels == 0) | (labels == 1)):
        raise ModelInputError(
            f"labels must be {rows} values, each 0 or 1; got shape {labels.shape}"
        )
    return labels


def logits(weights: npt.ArrayLike, x: npt.ArrayLike) -> Vector:
    """``X @ w + b`` for every row of (already scaled) ``x``."""
    w, rows = _features(weights, x)
    return np.asarray(rows @ w[:-1] + w[-1], dtype=np.float64)


def predict_proba(weights: npt.ArrayLike, x: npt.ArrayLike) -> Vector:
    """The probability of the positive label for every row of (already scaled) ``x``."""
    return np.asarray(expit(logits(weights, x)), dtype=np.float64)


def accuracy(weights: npt.ArrayLike, x: npt.ArrayLike, y: npt.ArrayLike) -> float:
    """Share of rows whose label the model predicts (positive iff probability > 0.5)."""
    z = logits(weights, x)
    labels = _labels(y, z.shape[0])
    return float(np.mean((z > 0) == (labels == 1)))


def log_loss(weights: npt.ArrayLike, x: npt.ArrayLike, y: npt.ArrayLike) -> float:
    """Mean negative log-likelihood of the labels, in nats.

    Computed from the logits as ``log(1 + e^z) - y z`` (``logaddexp``), which stays finite
    where ``log(sigmoid(z))`` would round to ``log(0)`` for a confident wrong model.
    """
    z = logits(weights, x)
    labels = _labels(y, z.shape[0])
    return float(np.mean(np.logaddexp(0.0, z) - labels * z))


def gradient(weights: npt.ArrayLike, x: npt.ArrayLike, y: npt.ArrayLike) -> Vector:
    """Gradient of :func:`log_loss` with respect to the weights (bias last)."""
    w, rows = _features(weights, x)
    labels = _labels(y, rows.shape[0])
    residual = expit(rows @ w[:-1] + w[-1]) - labels
    grad = np.empty_like(w)
    grad[:-1] = residual @ rows / rows.shape[0]
    grad[-1] = residual.mean()
    return grad


def scale(x: npt.ArrayLike, lower: npt.ArrayLike, upper: npt.ArrayLike) -> Matrix:
    """Features mapped from their declared ``[lower, upper]`` to [-1, 1], clamped first.

    A feature declared constant (``lower == upper``) maps to 0: it carries no information.
    """
    rows = np.asarray(x, dtype=np.float64)
    lo = np.asarray(lower, dtype=np.float64)
    hi = np.asarray(upper, dtype=np.float64)
    if rows.ndim != 2 or lo.shape != (rows.shape[1],) or hi.shape != lo.shape:
        raise ModelInputError(
            f"bounds of shapes {lo.shape} and {hi.shape} do not fit features of shape "
            f"{rows.shape}: declare one lower and one upper bound per feature column"
        )
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)) and np.all(lo <= hi)):
        raise ModelInputError("every bound must be finite, with lower <= upper: fix the task")
    if not np.all(np.isfinite(rows)):
        raise ModelInputError("features hold NaN or infinity: clean or drop those rows first")
    span = hi - lo
    wide = span > 0
    unit = np.zeros_like(rows)
    unit[:, wide] = (np.clip(rows, lo, hi)[:, wide] - lo[wide]) / span[wide]
    scaled = 2.0 * unit - 1.0
    scaled[:, ~wide] = 0.0
    return scaled


def train_local(
    weights: npt.ArrayLike,
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    *,
    epochs: int,
    lr: float,
    batch: int,
    rng: np.random.Generator | None = None,
) -> Vector:
    """``epochs`` passes of mini-batch gradient descent from ``weights`` over scaled ``x``:
    what a participant does with the global model each round.

    Rows are shuffled each epoch when ``rng`` is given, else visited in order (the same
    result every time, which tests and reference runs want).
    """
    w, rows = _features(weights, x)
    labels = _labels(y, rows.shape[0])
    if epochs < 0 or batch < 1 or not (np.isfinite(lr) and lr > 0):
        raise ModelInputError(
            f"need epochs >= 0, batch >= 1 and a finite lr > 0; got {epochs}, {batch}, {lr}"
        )
    w = w.copy()
    for _ in range(epochs):
        order = rng.permutation(rows.shape[0]) if rng is not None else np.arange(rows.shape[0])
        for start in range(0, rows.shape[0], batch):
            chosen = order[start : start + batch]
            w -= lr * gradient(w, rows[chosen], labels[chosen])
    return w


def train_centralised(
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    epochs: int,
    lr: float,
    batch: int,
    rng: np.random.Generator | None = None,
) -> Vector:
    """The same training from zero weights on all the data in one place: the reference a
    federated run is compared with."""
    rows = np.asarray(x, dtype=np.float64)
    if rows.ndim != 2:
        raise ModelInputError(f"features must be a 2-D table, got shape {rows.shape}")
    start = np.zeros(rows.shape[1] + 1)
    return train_local(start, rows, y, epochs=epochs, lr=lr, batch=batch, rng=rng)

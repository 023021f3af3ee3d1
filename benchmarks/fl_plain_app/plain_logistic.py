"""The training math of ailedger's federated job, for the plain reference app.

Flower's virtualenv has numpy and flwr, not ailedger, so this is a copy of what
ailedger's institution desk runs each round: ``ailedger.federated.task.read_table`` (the
CSV scaled to [-1, 1] by the task's declared bounds, clamped; the label 1 iff it equals
``positive``) and ``ailedger.federated.logistic.train_local`` (mini-batch gradient descent
on the mean log-loss, rows shuffled each epoch by ``rng``), and the FedAvg of
``ailedger.federated.aggregation.aggregate``. Same formulas in the same order, so both
sides train the same model from the same rows; fl_rounds.py checks that they do.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

Vector = npt.NDArray[np.float64]
Matrix = npt.NDArray[np.float64]


def read_table(task: dict[str, Any], path: Path) -> tuple[Matrix, Vector]:
    """(X scaled to [-1, 1], y in {0, 1}) from a CSV with the task's columns."""
    rows, labels = [], []
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            rows.append([float(row[f]) for f in task["features"]])
            labels.append(1.0 if row[task["label"]] == task["positive"] else 0.0)
    lower, upper = np.array(task["lower"]), np.array(task["upper"])
    x = np.clip(2 * (np.array(rows) - lower) / (upper - lower) - 1, -1.0, 1.0)
    return x, np.array(labels)


def _sigmoid(z: Vector) -> Vector:
    return np.asarray(1.0 / (1.0 + np.exp(-z)), dtype=np.float64)


def gradient(w: Vector, x: Matrix, y: Vector) -> Vector:
    """Gradient of the mean log-loss with respect to the weights (bias last)."""
    residual = _sigmoid(x @ w[:-1] + w[-1]) - y
    grad = np.empty_like(w)
    grad[:-1] = residual @ x / x.shape[0]
    grad[-1] = residual.mean()
    return grad


def train_local(
    weights: Vector, x: Matrix, y: Vector, *, epochs: int, lr: float, batch: int, seed: int
) -> Vector:
    """``epochs`` passes of mini-batch gradient descent from ``weights``, the rows of each
    epoch in an order drawn from ``default_rng(seed)`` (ailedger seeds it with the round)."""
    rng = np.random.default_rng(seed)
    w = np.array(weights, dtype=np.float64)
    for _ in range(epochs):
        order = rng.permutation(x.shape[0])
        for start in range(0, x.shape[0], batch):
            chosen = order[start : start + batch]
            w -= lr * gradient(w, x[chosen], y[chosen])
    return w


def fedavg(updates: list[Vector], examples: list[int]) -> Vector:
    """The mean of the updates weighted by their example counts."""
    return np.asarray(np.average(np.stack(updates), axis=0, weights=examples), dtype=np.float64)

"""A DP linear model: logistic regression trained by DP-SGD, in numpy.

DP-SGD (Abadi et al. 2016, "Deep Learning with Differential Privacy") bounds each row's
influence on every step: rows are Poisson-sampled with probability ``q``, each row's
gradient is clipped to L2 norm ``clip_norm``, the clipped gradients are summed and
Gaussian noise of standard deviation ``noise_multiplier * clip_norm`` is added. For
logistic regression the per-example gradient is exact in closed form,
``(sigmoid(w.x + b) - y) * [x, 1]``, so the whole step is a few vectorized numpy lines and
is *exactly* the DP-SGD step that Opacus computes with autograd hooks: no torch needed.
Each step is one sampled Gaussian mechanism (sensitivity ``clip_norm`` under adding or
removing a row); the run is :class:`Charge` ``sampled_gaussian`` with ``count`` = steps,
accounted by dp-accounting's PLD accountant (:mod:`.accountant`), and the noise
multiplier is calibrated so that this charge costs ``epsilon`` at ``delta``.

Choices that matter for privacy:

* Features are scaled to [-1, 1] by their *declared* bounds (clamped first), never by data
  statistics (a mean or standard deviation would itself leak).
* The noisy sum is divided by the *expected* batch size ``q * rows``, not the drawn one,
  whose size would otherwise enter the update unnoised.
* ``q = batch_size / rows`` uses the real row count, as Opacus does; the row count itself is
  not protected by this accounting (it is a count of the owner's dataset, usually public in
  its registration). Rows whose label is not a declared category are left out.
* Noise comes from ``numpy.random.Generator`` seeded from the OS (``secrets``) unless a
  generator is passed (tests and benchmarks, for reproducibility). numpy's floating-point
  Gaussian has the usual floating-point caveats (Mironov 2012) that OpenDP avoids; the
  queries module uses OpenDP for that reason, training accepts it as Opacus does.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dp_accounting
import numpy as np
from dp_accounting import pld
from dp_accounting.mechanism_calibration import NoBracketIntervalFoundError
from scipy.special import expit

from ailedger.privacy.accountant import VALUE_DISCRETIZATION_INTERVAL, rdp_epsilon, spent_epsilon
from ailedger.privacy.charges import MAX_COUNT, MAX_NOISE_MULTIPLIER, MIN_NOISE_MULTIPLIER, Charge
from ailedger.privacy.errors import ChargeError, QueryError
from ailedger.privacy.table import Column, parse_column, read_columns

MAX_ROWS = 1_000_000
MAX_EPOCHS = 200
MAX_FEATURES = 100
MAX_EPSILON = 10.0
SEARCH_DISCRETIZATION_INTERVAL = 1e-3
DEFAULTS = {"epochs": 10, "batch_size": 256, "learning_rate": 4.0, "clip_norm": 1.0}
"""Tuned on scikit-learn's breast-cancer data at epsilon 1 (``benchmarks/dp_training.py``)."""


@dataclass(frozen=True)
class TrainSpec:
    """A checked training request (see :func:`parse_training` for its JSON)."""

    label: Column
    features: tuple[Column, ...]
    epochs: int
    batch_size: int
    learning_rate: float
    clip_norm: float
    epsilon: float
    delta: float


@dataclass(frozen=True)
class TrainResult:
    """The released model, the charge it cost, and the row count it was trained on."""

    model: dict[str, Any]
    charges: list[Charge]
    rows: int


def _int(name: str, value: Any, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
        raise QueryError(f"{name} must be an integer in [1, {high}], got {value!r}")
    return value


def _float(name: str, value: Any, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise QueryError(f"{name} must be a number, got {value!r}")
    if not (math.isfinite(value) and 0 < value <= high):
        raise QueryError(f"{name} must be in (0, {high:g}], got {value!r}")
    return float(value)


def parse_training(raw: Any) -> TrainSpec:
    """A :class:`TrainSpec` from JSON such as::

        {"columns": {"y": {"type": "category", "categories": ["benign", "malignant"]},
                     "radius": {"type": "float", "lower": 5, "upper": 30}},
         "label": "y", "features": ["radius"], "epsilon": 1.0, "delta": 1e-5,
         "epochs": 10, "batch_size": 256, "learning_rate": 4.0, "clip_norm": 1.0}

    The label's second category is the positive class. ``epochs``, ``batch_size`` (the
    expected Poisson batch), ``learning_rate`` and ``clip_norm`` default to
    :data:`DEFAULTS`; ``delta`` to 1e-5."""
    required = {"columns", "label", "features", "epsilon"}
    allowed = required | {"delta", *DEFAULTS}
    if not isinstance(raw, dict) or not required <= set(raw) or not set(raw) <= allowed:
        raise QueryError(
            f"a training spec has {sorted(required)} and optionally {sorted(allowed - required)}"
        )
    if not isinstance(raw["columns"], dict):
        raise QueryError("'columns' declares the label and feature columns by name")
    columns = {name: parse_column(name, decl) for name, decl in raw["columns"].items()}
    label = columns.get(raw["label"]) if isinstance(raw["label"], str) else None
    if label is None or label.numeric or len(label.categories) != 2:
        raise QueryError("'label' names a declared category column with exactly two categories")
    names = raw["features"]
    if not isinstance(names, list) or not 1 <= len(names) <= MAX_FEATURES:
        raise QueryError(f"'features' is a list of 1 to {MAX_FEATURES} column names")
    if len(set(map(str, names))) != len(names) or label.name in names:
        raise QueryError("'features' lists each column once, and not the label")
    features = []
    for name in names:
        column = columns.get(name) if isinstance(name, str) else None
        if column is None or not column.numeric:
            raise QueryError(f"feature {name!r} must be a declared int or float column")
        features.append(column)
    options = {**DEFAULTS, **{k: raw[k] for k in DEFAULTS if k in raw}}
    return TrainSpec(
        label=label,
        features=tuple(features),
        epochs=_int("epochs", options["epochs"], MAX_EPOCHS),
        batch_size=_int("batch_size", options["batch_size"], MAX_ROWS),
        learning_rate=_float("learning_rate", options["learning_rate"], 100.0),
        clip_norm=_float("clip_norm", options["clip_norm"], 100.0),
        epsilon=_float("epsilon", raw["epsilon"], MAX_EPSILON),
        delta=_float("delta", raw.get("delta", 1e-5), 0.1),
    )


def schedule(spec: TrainSpec, rows: int) -> tuple[float, int]:
    """(sampling rate q, number of steps) for ``rows`` rows: ``epochs / q`` steps."""
    if rows < 2:
        raise QueryError(f"training needs at least 2 labelled rows, the data has {rows}")
    if spec.delta >= 1 / rows:
        raise QueryError(f"delta {spec.delta:g} must be below 1/rows = {1 / rows:.3g}")
    q = min(1.0, spec.batch_size / rows)
    steps = max(1, round(spec.epochs / q))
    if steps > MAX_COUNT:
        raise QueryError(f"{steps} steps is over {MAX_COUNT}: raise batch_size or lower epochs")
    return q, steps


def _sampled(q: float, steps: int, noise: float) -> Charge:
    return Charge("sampled_gaussian", noise_multiplier=noise, sampling_rate=q, count=steps)


def _rdp_noise(q: float, steps: int, epsilon: float, delta: float) -> float:
    """The noise multiplier at which RDP accounting gives ``epsilon`` (bisection in log
    space, rounded up), or :class:`QueryError` if none in the charge's range does."""
    # Just inside the range a charge accepts (exp(log(x)) may round past x).
    low, high = math.log(MIN_NOISE_MULTIPLIER) + 1e-9, math.log(MAX_NOISE_MULTIPLIER) - 1e-9

    def cost(log_noise: float) -> float:
        return rdp_epsilon([[_sampled(q, steps, math.exp(log_noise))]], delta)

    if cost(high) > epsilon:
        raise QueryError(f"epsilon {epsilon} is too small for {steps} steps: train fewer epochs")
    if cost(low) <= epsilon:
        return math.exp(low)
    while high - low > 1e-3:
        middle = (low + high) / 2
        low, high = (low, middle) if cost(middle) <= epsilon else (middle, high)
    return math.exp(high)


def plan_charges(spec: TrainSpec, rows: int) -> list[Charge]:
    """The one charge :func:`train` applies: the noise multiplier at which ``steps``
    sampled Gaussian steps cost ``spec.epsilon`` at ``spec.delta`` (within 1%, never over)."""
    q, steps = schedule(spec, rows)

    def event(noise: float) -> dp_accounting.DpEvent:
        return _sampled(q, steps, noise).dp_event()

    # RDP is cheap and never below PLD: its answer bounds the search from above, and a
    # PLD over a far too small noise (a huge loss range) is never built. The search runs on
    # a coarse grid (faster, more pessimistic, so its noise is if anything too large); the
    # accountant's own grid then checks the result, and redoes the search if it is too loose.
    ceiling = _rdp_noise(q, steps, spec.epsilon, spec.delta)
    for interval in (SEARCH_DISCRETIZATION_INTERVAL, VALUE_DISCRETIZATION_INTERVAL):
        noise = _calibrate(event, spec, ceiling, interval)
        charge = _sampled(q, steps, noise)
        spent = spent_epsilon([[charge]], spec.delta)
        if 0.99 * spec.epsilon <= spent <= spec.epsilon:
            return [charge]
    raise QueryError(f"could not calibrate the noise to epsilon {spec.epsilon} (got {spent})")


def _calibrate(
    event: Callable[[float], dp_accounting.DpEvent],
    spec: TrainSpec,
    ceiling: float,
    interval: float,
) -> float:
    try:
        noise = dp_accounting.calibrate_dp_mechanism(
            lambda: pld.PLDAccountant(value_discretization_interval=interval),
            event,
            spec.epsilon,
            spec.delta,
            bracket_interval=dp_accounting.ExplicitBracketInterval(0.5 * ceiling, ceiling),
            tol=1e-3 * ceiling,
        )
    except (ValueError, ChargeError, NoBracketIntervalFoundError):
        raise QueryError(f"epsilon {spec.epsilon} is out of reach for this schedule") from None
    return float(noise)


def scale_features(x: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Raw features clamped to their declared bounds and mapped to [-1, 1]."""
    clamped = np.clip(x, lower, upper)
    return np.asarray(2.0 * (clamped - lower) / (upper - lower) - 1.0)


def sgd_logistic(
    x: np.ndarray,
    y: np.ndarray,
    *,
    q: float,
    steps: int,
    learning_rate: float,
    rng: np.random.Generator,
    clip_norm: float | None,
    noise_multiplier: float,
    initial: np.ndarray | None = None,
) -> np.ndarray:
    """Weights (bias last) of logistic regression by Poisson-sampled SGD on scaled ``x``,
    from ``initial`` (zeros if None; a federated round starts from the global model).
    With ``clip_norm`` and ``noise_multiplier`` > 0 it is DP-SGD; with ``None`` and 0 the
    same loop without privacy (the benchmarks' time reference)."""
    rows = x.shape[0]
    design = np.hstack([x, np.ones((rows, 1))])
    weights = np.zeros(design.shape[1]) if initial is None else np.array(initial, dtype=float)
    expected = q * rows  # data-independent normalisation, see the module docstring
    for _ in range(steps):
        chosen = rng.random(rows) < q
        batch, labels = design[chosen], y[chosen]
        # Per-example gradients of the logistic loss, exact: (p - y) * x.
        residual = expit(batch @ weights) - labels
        if clip_norm is not None:
            norms = np.abs(residual) * np.linalg.norm(batch, axis=1)
            residual = residual * np.minimum(1.0, clip_norm / np.maximum(norms, 1e-12))
        gradient = residual @ batch
        if noise_multiplier > 0 and clip_norm is not None:
            gradient = gradient + rng.normal(0.0, noise_multiplier * clip_norm, weights.shape)
        weights -= learning_rate * gradient / expected
    return weights


def _matrix(spec: TrainSpec, data: dict[str, list[Any]]) -> tuple[np.ndarray, np.ndarray]:
    keep = [i for i, v in enumerate(data[spec.label.name]) if v is not None]
    positive = spec.label.categories[1]
    y = np.array([data[spec.label.name][i] == positive for i in keep], dtype=float)
    raw = np.array([[data[f.name][i] for f in spec.features] for i in keep], dtype=float)
    return raw.reshape(len(keep), len(spec.features)), y


def _bounds(spec: TrainSpec) -> tuple[np.ndarray, np.ndarray]:
    return (
        np.array([f.lower for f in spec.features], dtype=float),
        np.array([f.upper for f in spec.features], dtype=float),
    )


def train(spec: TrainSpec, csv_path: Path, rng: np.random.Generator | None = None) -> TrainResult:
    """DP-SGD over the CSV at ``csv_path``; the model is safe to release at the charge."""
    data = read_columns(csv_path, (spec.label, *spec.features), max_rows=MAX_ROWS)
    raw, y = _matrix(spec, data)
    charges = plan_charges(spec, len(y))
    q, steps = schedule(spec, len(y))
    lower, upper = _bounds(spec)
    generator = rng if rng is not None else np.random.default_rng(secrets.randbits(128))
    weights = sgd_logistic(
        scale_features(raw, lower, upper),
        y,
        q=q,
        steps=steps,
        learning_rate=spec.learning_rate,
        rng=generator,
        clip_norm=spec.clip_norm,
        noise_multiplier=charges[0].noise_multiplier,
    )
    model = {
        "kind": "logistic_regression",
        "features": [f.name for f in spec.features],
        "lower": lower.tolist(),
        "upper": upper.tolist(),
        "weights": weights[:-1].tolist(),
        "bias": float(weights[-1]),
        "label": spec.label.name,
        "categories": list(spec.label.categories),
    }
    return TrainResult(model=model, charges=charges, rows=len(y))


def predict_proba(model: dict[str, Any], rows: np.ndarray) -> np.ndarray:
    """Probability of the positive (second) category for raw feature rows, shape (n, d)."""
    x = scale_features(
        np.asarray(rows, dtype=float), np.array(model["lower"]), np.array(model["upper"])
    )
    logits = x @ np.array(model["weights"]) + float(model["bias"])
    return np.asarray(expit(logits))

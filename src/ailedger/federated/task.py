"""A federated task: what the requester posts, and the hashes that bind it on chain.

A task is a TOML file the requester writes::

    features = ["mean radius", "mean texture"]
    label = "diagnosis"
    positive = "malignant"
    rule = "fedavg"            # or median, trimmed-mean, krum
    local_epochs = 5
    learning_rate = 0.5
    batch_size = 32

    [bounds]
    "mean radius" = [6.0, 30.0]
    "mean texture" = [9.0, 40.0]

The model is a logistic regression over the features scaled to [-1, 1] by the declared
bounds. The task's canonical JSON is hashed into the job's ``task_hash`` on chain, and
the validation set (a CSV with the same columns) into ``validation_hash``, before anyone
joins: the requester cannot change the task or the yardstick of contributions later.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ailedger.errors import ConfigError

MAX_FEATURES = 256
MAX_VALIDATION_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Task:
    features: tuple[str, ...]
    label: str
    positive: str
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    rule: str = "fedavg"
    local_epochs: int = 5
    learning_rate: float = 0.5
    batch_size: int = 32

    def as_json(self) -> dict[str, Any]:
        """What the Flower apps read (the run config's ``task``) and what is hashed."""
        return {
            "features": list(self.features),
            "label": self.label,
            "positive": self.positive,
            "lower": list(self.lower),
            "upper": list(self.upper),
            "rule": self.rule,
            "local_epochs": self.local_epochs,
            "learning_rate": self.learning_rate,
            "batch_size": self.batch_size,
        }

    def canonical(self) -> str:
        return json.dumps(self.as_json(), sort_keys=True, separators=(",", ":"))

    def digest(self) -> bytes:
        return hashlib.sha256(self.canonical().encode()).digest()


def read_task(path: Path) -> Task:
    """The task in ``path`` (TOML), or a ConfigError naming what is wrong."""
    from ailedger.federated.aggregation import RULES

    try:
        raw = tomllib.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read the task {path}: {exc}") from None
    features = raw.get("features")
    if (
        not isinstance(features, list)
        or not 1 <= len(features) <= MAX_FEATURES
        or not all(isinstance(f, str) and f for f in features)
        or len(set(features)) != len(features)
    ):
        raise ConfigError(f"{path}: features is a list of 1 to {MAX_FEATURES} distinct names")
    bounds = raw.get("bounds")
    if not isinstance(bounds, dict) or set(bounds) != set(features):
        raise ConfigError(f"{path}: [bounds] gives [lower, upper] for each feature, no more")
    lower, upper = [], []
    for name in features:
        pair = bounds[name]
        if not (
            isinstance(pair, list)
            and len(pair) == 2
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in pair)
            and math.isfinite(pair[0])
            and math.isfinite(pair[1])
            and pair[0] < pair[1]
        ):
            raise ConfigError(f"{path}: bounds of {name!r} must be [lower, upper], lower < upper")
        lower.append(float(pair[0]))
        upper.append(float(pair[1]))
    task = Task(
        tuple(features),
        _text(raw, "label", path),
        _text(raw, "positive", path),
        tuple(lower),
        tuple(upper),
        str(raw.get("rule", "fedavg")),
        _number(raw, "local_epochs", 5, int, 1, 100, path),
        _number(raw, "learning_rate", 0.5, float, 1e-6, 100.0, path),
        _number(raw, "batch_size", 32, int, 1, 100_000, path),
    )
    if task.rule not in RULES:
        raise ConfigError(f"{path}: rule must be one of {', '.join(RULES)}, not {task.rule!r}")
    if task.label in task.features:
        raise ConfigError(f"{path}: the label {task.label!r} cannot also be a feature")
    return task


def _text(raw: dict[str, Any], key: str, path: Path) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{path}: {key} is a non-empty string")
    return value


def _number(
    raw: dict[str, Any], key: str, default: Any, kind: type, lo: float, hi: float, path: Path
) -> Any:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        raise ConfigError(f"{path}: {key} must be a number in {lo:g} .. {hi:g}")
    if kind is int and not float(value).is_integer():
        raise ConfigError(f"{path}: {key} must be a whole number")
    return kind(value)


def validation_digest(path: Path) -> bytes:
    """The sha256 of the validation CSV's bytes, committed on chain when the job is posted."""
    size = path.stat().st_size
    if size > MAX_VALIDATION_BYTES:
        raise ConfigError(f"{path} is {size} bytes; a validation set is at most 64 MiB")
    return hashlib.sha256(path.read_bytes()).digest()


def read_table(task: Task, path: Path) -> tuple[Any, Any]:
    """(X scaled to [-1, 1], y in {0, 1}) from a CSV with the task's columns; rows with
    a missing or non-numeric feature are refused, naming the row."""
    import numpy as np

    rows, labels = [], []
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in (*task.features, task.label) if c not in (reader.fieldnames or [])]
        if missing:
            raise ConfigError(f"{path} lacks the task's column(s): {', '.join(missing)}")
        for n, row in enumerate(reader, start=2):
            try:
                rows.append([float(row[f]) for f in task.features])
            except (TypeError, ValueError):
                raise ConfigError(f"{path} line {n}: a feature is not a number") from None
            labels.append(1.0 if row[task.label] == task.positive else 0.0)
    if not rows:
        raise ConfigError(f"{path} holds no rows")
    lower, upper = np.array(task.lower), np.array(task.upper)
    x = np.clip(2 * (np.array(rows) - lower) / (upper - lower) - 1, -1.0, 1.0)
    return x, np.array(labels)

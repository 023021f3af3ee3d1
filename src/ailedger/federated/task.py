"""A federated task: what the requester posts, and the hashes that bind it on chain.

A task is a TOML file the requester writes::

    features = ["mean radius", "mean texture"]
    label = "diagnosis"
    positive = "malignant"
    rule = "fedavg"            # or median, trimmed-mean, krum
    local_epochs = 5
    learning_rate = 0.5
    batch_size = 32
    secure_aggregation = false # true: Flower's SecAgg+, the server sees the sum alone

    [bounds]
    "mean radius" = [6.0, 30.0]
    "mean texture" = [9.0, 40.0]

    [privacy]                  # optional: each institution trains by DP-SGD
    clip_norm = 1.0            # each row's gradient is clipped to this L2 norm
    noise_multiplier = 2.0     # Gaussian noise of sigma = noise_multiplier * clip_norm per step
    on_budget = "drop"         # or "stop": what a round does when a cap would be passed

The model is a logistic regression over the features scaled to [-1, 1] by the declared
bounds. The task's canonical JSON is hashed into the job's ``task_hash`` on chain, and
the validation set (a CSV with the same columns) into ``validation_hash``, before anyone
joins: the requester cannot change the task or the yardstick of contributions later.
An institution trains only under the task whose hash is on chain, so the privacy terms
it joined under are the ones it applies.

Under ``secure_aggregation`` each institution's desk masks its update (SecAgg+), so a
requester running the protocol among the real institutions learns the weighted average of
those who stayed, not one update (sybil nodes of its own are not yet kept out). Robust rules
and per-institution contribution scores need the updates themselves: such a task
aggregates by ``fedavg`` only, and each round's gain is shared by row counts (which an
institution states, so a free-rider is not told apart: the job chooses hidden updates
over contribution-proof pay).
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
ON_BUDGET = ("drop", "stop")


@dataclass(frozen=True)
class PrivacyTerms:
    """Each institution trains its round by DP-SGD: every row's gradient clipped to
    ``clip_norm``, Gaussian noise of standard deviation ``noise_multiplier * clip_norm`` on
    every step; the round is charged to its dataset's privacy budget. ``on_budget``: a
    participant whose cap the round would pass sits it out (``drop``), or the job stops
    there (``stop``)."""

    clip_norm: float
    noise_multiplier: float
    on_budget: str = "drop"

    def as_json(self) -> dict[str, Any]:
        return {
            "clip_norm": self.clip_norm,
            "noise_multiplier": self.noise_multiplier,
            "on_budget": self.on_budget,
        }


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
    privacy: PrivacyTerms | None = None
    secure_aggregation: bool = False

    def as_json(self) -> dict[str, Any]:
        """What the Flower apps carry (the run config's ``task``) and what is hashed."""
        document = {
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
        if self.privacy is not None:  # absent, not null: a task without it hashes as before
            document["privacy"] = self.privacy.as_json()
        if self.secure_aggregation:  # likewise
            document["secure_aggregation"] = True
        return document

    def canonical(self) -> str:
        return json.dumps(self.as_json(), sort_keys=True, separators=(",", ":"))

    def digest(self) -> bytes:
        return hashlib.sha256(self.canonical().encode()).digest()


def read_task(path: Path) -> Task:
    """The task in ``path`` (TOML), or a ConfigError naming what is wrong."""
    try:
        raw = tomllib.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read the task {path}: {exc}") from None
    return task_from_document(raw, str(path))


def task_from_document(raw: dict[str, Any], path: str) -> Task:
    """A task from its parsed document; ``path`` names it in errors."""
    from ailedger.federated.aggregation import RULES

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
        _privacy(raw.get("privacy"), path),
        _flag(raw, "secure_aggregation", path),
    )
    if task.rule not in RULES:
        raise ConfigError(f"{path}: rule must be one of {', '.join(RULES)}, not {task.rule!r}")
    if task.secure_aggregation and task.rule != "fedavg":
        raise ConfigError(
            f"{path}: under secure_aggregation the server sees only the sum, so the rule is "
            f"fedavg (a {task.rule} needs each update)"
        )
    if task.label in task.features:
        raise ConfigError(f"{path}: the label {task.label!r} cannot also be a feature")
    return task


def task_from_json(raw: Any) -> Task:
    """The task a Flower app carried (:meth:`Task.as_json`), checked like a task file: an
    institution rebuilds it to compare its hash with the one on chain."""
    if not isinstance(raw, dict):
        raise ConfigError("the task is a JSON object")
    features, lower, upper = raw.get("features"), raw.get("lower"), raw.get("upper")
    if not (isinstance(features, list) and isinstance(lower, list) and isinstance(upper, list)):
        raise ConfigError("the task gives features, lower and upper as lists")
    if not len(lower) == len(upper) == len(features) or not all(
        isinstance(f, str) for f in features
    ):
        raise ConfigError("the task gives named features, each with a lower and an upper bound")
    document = {k: v for k, v in raw.items() if k not in ("lower", "upper")}
    document["bounds"] = {f: [lo, hi] for f, lo, hi in zip(features, lower, upper, strict=True)}
    return task_from_document(document, "the task")


def _flag(raw: dict[str, Any], key: str, path: str) -> bool:
    value = raw.get(key, False)
    if not isinstance(value, bool):
        raise ConfigError(f"{path}: {key} is true or false")
    return value


def _privacy(raw: Any, path: str) -> PrivacyTerms | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or not set(raw) <= {"clip_norm", "noise_multiplier", "on_budget"}:
        raise ConfigError(f"{path}: [privacy] holds clip_norm, noise_multiplier and on_budget")
    on_budget = raw.get("on_budget", "drop")
    if on_budget not in ON_BUDGET:
        raise ConfigError(f"{path}: privacy.on_budget is {' or '.join(ON_BUDGET)}")
    return PrivacyTerms(
        _number(raw, "clip_norm", None, float, 1e-6, 1e6, path),
        _number(raw, "noise_multiplier", None, float, 0.05, 1e4, path),
        on_budget,
    )


def _text(raw: dict[str, Any], key: str, path: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{path}: {key} is a non-empty string")
    return value


def _number(
    raw: dict[str, Any], key: str, default: Any, kind: type, lo: float, hi: float, path: str
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
    a missing, non-numeric or non-finite feature are refused, naming the row."""
    with path.open(newline="", encoding="utf-8") as handle:
        return parse_table(task, handle.read(), str(path))


def parse_table(task: Task, text: str, name: str = "the table") -> tuple[Any, Any]:
    """:func:`read_table` over CSV text already in memory (``name`` says which in errors)."""
    import io

    import numpy as np

    rows, labels = [], []
    reader = csv.DictReader(io.StringIO(text, newline=""))
    missing = [c for c in (*task.features, task.label) if c not in (reader.fieldnames or [])]
    if missing:
        raise ConfigError(f"{name} lacks the task's column(s): {', '.join(missing)}")
    for n, row in enumerate(reader, start=2):
        try:
            values = [float(row[f]) for f in task.features]
        except (TypeError, ValueError):
            raise ConfigError(f"{name} line {n}: a feature is not a number") from None
        if not all(math.isfinite(v) for v in values):
            raise ConfigError(f"{name} line {n}: a feature is not finite (nan or inf)")
        rows.append(values)
        labels.append(1.0 if row[task.label] == task.positive else 0.0)
    if not rows:
        raise ConfigError(f"{name} holds no rows")
    lower, upper = np.array(task.lower), np.array(task.upper)
    x = np.clip(2 * (np.array(rows) - lower) / (upper - lower) - 1, -1.0, 1.0)
    return x, np.array(labels)

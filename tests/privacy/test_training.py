from __future__ import annotations

import copy
import csv
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

from ailedger.privacy.accountant import spent_epsilon
from ailedger.privacy.errors import QueryError
from ailedger.privacy.table import Column
from ailedger.privacy.training import (
    TrainSpec,
    parse_training,
    plan_charges,
    predict_proba,
    scale_features,
    train,
)

SPEC: dict[str, Any] = {
    "columns": {
        "y": {"type": "category", "categories": ["no", "yes"]},
        "a": {"type": "float", "lower": 0, "upper": 10},
        "b": {"type": "int", "lower": -5, "upper": 5},
    },
    "label": "y",
    "features": ["a", "b"],
    "epsilon": 1.0,
}


def spec(**changes: Any) -> dict[str, Any]:
    raw = copy.deepcopy(SPEC)
    raw.update(changes)
    return raw


def test_parse_defaults() -> None:
    parsed = parse_training(spec())
    assert parsed.label.categories == ("no", "yes")
    assert [f.name for f in parsed.features] == ["a", "b"]
    assert parsed.delta == 1e-5 and parsed.epochs == 10


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"label": "a"}, "two categories"),
        ({"features": ["y"]}, "not the label|int or float"),
        ({"features": ["a", "a"]}, "once"),
        ({"features": ["c"]}, "'c'"),
        ({"features": []}, "1 to 100"),
        ({"epochs": 0}, "epochs"),
        ({"epochs": 201}, "epochs"),
        ({"epochs": 2.0}, "epochs"),
        ({"batch_size": True}, "batch_size"),
        ({"learning_rate": float("nan")}, "learning_rate"),
        ({"clip_norm": -1.0}, "clip_norm"),
        ({"epsilon": float("inf")}, "epsilon"),
        ({"epsilon": 0}, "epsilon"),
        ({"delta": 0.5}, "delta"),
        ({"momentum": 0.9}, "optionally"),
    ],
)
def test_bad_specs(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(QueryError, match=message):
        parse_training(spec(**changes))


def test_delta_must_be_below_one_over_rows() -> None:
    with pytest.raises(QueryError, match="delta"):
        plan_charges(parse_training(spec(delta=0.01)), rows=1000)


@pytest.mark.parametrize("epsilon", [0.3, 1.0, 4.0])
def test_plan_reproduces_epsilon(epsilon: float) -> None:
    parsed = parse_training(spec(epsilon=epsilon))
    [charge] = plan_charges(parsed, rows=2000)
    assert charge.mechanism == "sampled_gaussian"
    assert charge.sampling_rate == pytest.approx(256 / 2000)
    assert charge.count == round(10 * 2000 / 256)
    assert 0.99 * epsilon <= spent_epsilon([[charge]], parsed.delta) <= epsilon


def test_features_are_scaled_by_declared_bounds_not_data() -> None:
    x = np.array([[0.0, -5.0], [10.0, 5.0], [5.0, 0.0], [99.0, -99.0]])
    scaled = scale_features(x, np.array([0.0, -5.0]), np.array([10.0, 5.0]))
    assert scaled.tolist() == [[-1, -1], [1, 1], [0, 0], [1, -1]]
    # Data occupying a sliver of the declared range stays a sliver.
    narrow = scale_features(np.array([[4.0], [6.0]]), np.array([0.0]), np.array([10.0]))
    assert narrow[:, 0] == pytest.approx([-0.2, 0.2])


def breast_cancer_csv(tmp_path: Path, seed: int) -> tuple[TrainSpec, Path, np.ndarray, Any]:
    data = load_breast_cancer()
    x_train, x_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=0.2, random_state=seed, stratify=data.target
    )
    # Declared bounds: the ranges published with the dataset (its DESCR), public knowledge.
    lower, upper = data.data.min(axis=0), data.data.max(axis=0)
    names = [f"f{i}" for i in range(x_train.shape[1])]
    path = tmp_path / "bc.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["label", *names])
        for row, label in zip(x_train, y_train, strict=True):
            writer.writerow([("malignant", "benign")[label], *row])
    parsed = TrainSpec(
        label=Column("label", "category", categories=("malignant", "benign")),
        features=tuple(
            Column(n, "float", lower=float(lo), upper=float(hi))
            for n, lo, hi in zip(names, lower, upper, strict=True)
        ),
        epochs=10,
        batch_size=256,
        learning_rate=4.0,
        clip_norm=1.0,
        epsilon=1.0,
        delta=1e-5,
    )
    return parsed, path, x_test, y_test


def test_breast_cancer_at_epsilon_one(tmp_path: Path) -> None:
    parsed, path, x_test, y_test = breast_cancer_csv(tmp_path, seed=0)
    result = train(parsed, path, rng=np.random.default_rng(0))
    assert result.rows == 455
    assert result.charges == plan_charges(parsed, 455)
    accuracy = np.mean((predict_proba(result.model, x_test) > 0.5) == y_test)
    assert accuracy > 0.85  # non-private logistic regression: about 0.96
    assert result.model["categories"] == ["malignant", "benign"]
    assert result.model["lower"] == [f.lower for f in parsed.features]


def test_rows_with_an_undeclared_label_are_left_out(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    rows = [f"{'yes' if i % 2 else 'no'},{i % 10},{i % 3}" for i in range(300)]
    path.write_text("\n".join(["y,a,b", *rows, "maybe,1,1", ",2,2"]) + "\n")
    result = train(parse_training(spec(delta=1e-3)), path, rng=np.random.default_rng(1))
    assert result.rows == 300
    assert set(result.model) >= {"features", "weights", "bias", "categories", "lower", "upper"}

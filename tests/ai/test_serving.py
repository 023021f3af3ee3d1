"""Serving a linear model: the scaling by declared bounds folded into its weights gives
the model's own probabilities on raw inputs, and inputs outside the bounds are refused."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from ailedger.ai.serving import load_linear_model, read_inputs
from ailedger.errors import ConfigError

MODEL = {
    "features": ["age", "bmi"],
    "weights": [1.5, -0.75],
    "bias": 0.2,
    "lower": [0.0, 10.0],
    "upper": [120.0, 50.0],
}


def _scaled_probability(age: float, bmi: float) -> float:
    x = [2 * (age - 0) / 120 - 1, 2 * (bmi - 10) / 40 - 1]
    z = 1.5 * x[0] - 0.75 * x[1] + 0.2
    return 1 / (1 + math.exp(-z))


def test_the_folded_model_decides_and_explains_raw_inputs_as_trained(tmp_path: Path) -> None:
    (tmp_path / "model.json").write_text(json.dumps(MODEL))
    model = load_linear_model(tmp_path)
    for age, bmi in ((30.0, 22.0), (0.0, 50.0), (120.0, 10.0)):
        row = model.explainer.row({"age": age, "bmi": bmi})
        got = float(model.estimator.predict_proba(row)[0, 1])
        assert got == pytest.approx(_scaled_probability(age, bmi), abs=1e-12)
        explained = model.explainer.explain(row)
        assert explained.residual <= 1e-9


def test_inputs_outside_the_trained_bounds_and_bad_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "model.json").write_text(json.dumps(MODEL))
    model = load_linear_model(tmp_path)
    with pytest.raises(ConfigError, match=r"age = 130 is outside the bounds"):
        model.check({"age": 130.0, "bmi": 20.0})
    (tmp_path / "model.json").write_text(json.dumps({**MODEL, "weights": [1.0]}))
    with pytest.raises(ConfigError, match="names 2 features for 1 weights"):
        load_linear_model(tmp_path)
    inputs = tmp_path / "inputs.jsonl"
    inputs.write_text('{"age": 30, "bmi": 22}\n{"age": true, "bmi": 1}\n')
    with pytest.raises(ConfigError, match="JSON object of numbers"):
        read_inputs(inputs)


# The same model as a compute-to-data job releases it over an aggregate-only dataset:
# numbers at declared places only, so objects by feature name (keys sorted canonically).
BY_NAME = {
    "bias": 0.2,
    "lower": {"age": 0.0, "bmi": 10.0},
    "patients": 400,
    "upper": {"age": 120.0, "bmi": 50.0},
    "weights": {"age": 1.5, "bmi": -0.75},
}


def test_a_model_released_by_feature_name_decides_as_the_list_form(tmp_path: Path) -> None:
    (tmp_path / "model.json").write_text(json.dumps(BY_NAME))
    model = load_linear_model(tmp_path)
    assert model.features == ["age", "bmi"]
    for age, bmi in ((30.0, 22.0), (0.0, 50.0), (120.0, 10.0)):
        row = model.explainer.row({"age": age, "bmi": bmi})
        got = float(model.estimator.predict_proba(row)[0, 1])
        assert got == pytest.approx(_scaled_probability(age, bmi), abs=1e-12)
    with pytest.raises(ConfigError, match=r"bmi = 60 is outside the bounds"):
        model.check({"age": 30.0, "bmi": 60.0})


@pytest.mark.parametrize(
    "change",
    [
        {"weights": {"age": 1.5, "bmi": None}},  # a weight the release suppressed
        {"lower": {"age": 0.0}},  # a feature without its bound
        {"features": ["age"]},  # a weight left out of the named order
    ],
)
def test_a_model_by_name_with_a_withheld_or_unmatched_value_is_refused(
    tmp_path: Path, change: dict[str, object]
) -> None:
    (tmp_path / "model.json").write_text(json.dumps({**BY_NAME, **change}))
    with pytest.raises(ConfigError, match="is not a served model"):
        load_linear_model(tmp_path)

"""Exact SHAP explanations of one binary classifier decision, with their additivity measured.

SHAP attributions satisfy local accuracy (Lundberg and Lee, NeurIPS 2017, property 1): the
base value plus every feature's attribution equals the model's output *in the explainer's
output space*. TreeSHAP (Lundberg et al., Nature MI 2020) and the linear explainer are
exact, so the only gap is floating-point rounding (below 1e-14 here); a decision receipt
carries the measured gap and anything above :data:`MAX_RESIDUAL` is refused, never logged.

The output space is the model's ``decision_function`` (log-odds, link ``logit``) when it
has one, else ``predict_proba[:, 1]`` (link ``identity``, e.g. random forests); the
probability a person is told is the inverse link of it, so a verifier can check both.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import shap

from ailedger.ai.errors import DecisionError, ExplanationError

MAX_RESIDUAL = 1e-6  # exact explainers land near 1e-14: anything near this is a wrong model


@dataclass(frozen=True)
class Explanation:
    """Per-feature attributions of one decision; ``raw_output`` is in the ``link`` space."""

    explainer: str
    version: str
    parameters: dict[str, Any]
    base_value: float
    attributions: dict[str, float]
    raw_output: float
    link: str
    residual: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "explainer": self.explainer,
            "version": self.version,
            "parameters": self.parameters,
            "base_value": self.base_value,
            "attributions": self.attributions,
            "raw_output": self.raw_output,
            "link": self.link,
            "residual": self.residual,
        }


class ShapExplainer:
    """A prepared SHAP explainer for one fitted binary classifier and its feature order.

    Build it once per model (``tree`` or ``linear``): constructing a SHAP explainer costs
    milliseconds, explaining one row a few hundredths of one.
    """

    def __init__(
        self, model: Any, feature_names: Sequence[str], explainer: Any, parameters: dict[str, Any]
    ) -> None:
        classes = getattr(model, "classes_", None)
        if classes is None or len(classes) != 2:
            raise DecisionError(
                "decision receipts explain fitted binary classifiers (predict_proba with two "
                "classes); fit the model first or reduce it to one class against the rest"
            )
        if len(set(feature_names)) != len(feature_names) or not feature_names:
            raise DecisionError("feature_names must be distinct names, one per model input")
        self.model, self.feature_names = model, list(feature_names)
        self.link = "logit" if hasattr(model, "decision_function") else "identity"
        self._explainer, self.parameters = explainer, parameters
        self.name = type(explainer).__name__

    @classmethod
    def tree(cls, model: Any, feature_names: Sequence[str]) -> ShapExplainer:
        """TreeSHAP, path-dependent (no background data needed), on the raw output."""
        explainer = shap.TreeExplainer(model)
        parameters = {
            "feature_perturbation": explainer.feature_perturbation,
            "model_output": "raw",
        }
        return cls(model, feature_names, explainer, parameters)

    @classmethod
    def linear(cls, model: Any, feature_names: Sequence[str], background: Any) -> ShapExplainer:
        """Linear SHAP against ``background`` rows (interventional: the features' means)."""
        explainer = shap.LinearExplainer(model, np.asarray(background, dtype=float))
        parameters = {
            "feature_perturbation": "interventional",
            "background_rows": len(background),
        }
        return cls(model, feature_names, explainer, parameters)

    def row(self, features: Mapping[str, float]) -> np.ndarray[Any, np.dtype[np.float64]]:
        """The model's input row in its feature order; refuses missing or extra features."""
        missing = [n for n in self.feature_names if n not in features]
        extra = sorted(set(features) - set(self.feature_names))
        if missing or extra:
            raise DecisionError(
                f"features do not match the model's: missing {missing}, unexpected {extra}; "
                "pass exactly the features the model was trained on"
            )
        values = [float(features[n]) for n in self.feature_names]
        if not all(math.isfinite(v) for v in values):
            raise DecisionError("feature values must be finite numbers (no NaN or infinity)")
        return np.asarray([values], dtype=float)

    def raw_output(self, row: np.ndarray[Any, np.dtype[np.float64]]) -> float:
        if self.link == "logit":
            return float(np.ravel(self.model.decision_function(row))[0])
        return float(self.model.predict_proba(row)[0, 1])

    def explain(self, row: np.ndarray[Any, np.dtype[np.float64]]) -> Explanation:
        """Attributions of ``row`` (one row) and the measured additivity residual."""
        # shap's own check (TreeExplainer, 1e-2 tolerance) is replaced by the stricter one
        # below, on the model's own output: the residual is always measured here.
        options = {"check_additivity": False} if self.name == "TreeExplainer" else {}
        values = np.asarray(self._explainer.shap_values(row, **options), dtype=float)
        base = np.ravel(np.asarray(self._explainer.expected_value, dtype=float))
        if values.ndim == 3:  # per class (random forests): class 1's, as predict_proba[:, 1]
            values, base = values[:, :, 1], base[1:]
        if values.shape != (1, len(self.feature_names)) or base.size != 1:
            raise ExplanationError(
                f"the explainer returned shape {values.shape} for one row of "
                f"{len(self.feature_names)} features; explain a binary classifier"
            )
        raw, base_value = self.raw_output(row), float(base[0])
        attributions = dict(zip(self.feature_names, map(float, values[0]), strict=True))
        residual = abs(base_value + math.fsum(attributions.values()) - raw)
        if not residual <= MAX_RESIDUAL:  # `not <=` also refuses NaN
            raise ExplanationError(
                f"the explanation misses the model's output by {residual:.3g} "
                f"(more than {MAX_RESIDUAL:g}): the explainer does not fit this model "
                "(wrong model, or an approximate explainer); nothing was logged"
            )
        return Explanation(
            self.name, shap.__version__, self.parameters, base_value, attributions,
            raw, self.link, residual,
        )  # fmt: skip


def inverse_link(link: str, raw: float) -> float:
    """The probability of class 1 that a raw output in ``link`` space stands for."""
    if link == "identity":
        return raw
    if link == "logit":
        return 1.0 / (1.0 + math.exp(-raw)) if raw >= 0 else math.exp(raw) / (1.0 + math.exp(raw))
    raise ExplanationError(f"unknown link {link!r}: expected 'logit' or 'identity'")


def for_model(model: Any, feature_names: Sequence[str]) -> ShapExplainer:
    """TreeSHAP for tree ensembles; linear models need background rows: use ``linear``."""
    if hasattr(model, "coef_"):
        raise DecisionError(
            "a linear model needs background rows for its explanation: pass "
            "explainer=ShapExplainer.linear(model, feature_names, background)"
        )
    return ShapExplainer.tree(model, feature_names)

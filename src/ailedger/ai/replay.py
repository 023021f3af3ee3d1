"""Replaying a logged decision: an auditor with the model and the input re-runs it.

A decision receipt commits to the model (its passport id), the input (a salted digest), the
output and the explanation. Checking the receipt proves *what was logged*; replaying proves
that the logged output and explanation are what this model gives for this input, so a
deployer cannot log a flattering explanation next to a decision some other model made.

:func:`replay_decision` verifies the passport over the model's files, requires it to be the
passport the decision names, requires the features and salt to give the logged input digest,
then decides and explains again and compares every number within :data:`REPLAY_TOLERANCE`.
A differing SHAP version is reported as a note, not a failure: exact explainers agree
across versions, and a real change in the numbers still fails the comparison.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ailedger.ai.decisions import input_matches
from ailedger.ai.passport import verify_passport
from ailedger.ai.serving import load_linear_model
from ailedger.errors import AiledgerError

# Both runs are the same float64 arithmetic; a gap above this is another model or input.
REPLAY_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Replay:
    """Outcome of a replay: ``problems`` name each difference, ``notes`` what is only noted."""

    ok: bool
    index: int | None
    logged_output: float | None
    replayed_output: float | None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def replay_decision(
    receipt: Mapping[str, Any],
    model_dir: Path,
    bundle: Path,
    public_pem: bytes,
    features: Mapping[str, float] | None = None,
) -> Replay:
    """Re-run the decision in ``receipt`` with the model in ``model_dir`` and compare."""
    index = receipt.get("index") if isinstance(receipt.get("index"), int) else None
    problems: list[str] = []
    entry = _entry(receipt, problems)
    given = features if features is not None else receipt.get("features")
    if entry is None or not _is_input(entry, receipt.get("salt"), given, problems):
        return Replay(False, index, None, None, problems)
    assert isinstance(given, Mapping)  # _is_input refuses anything else
    try:
        verified = verify_passport(model_dir, bundle, public_pem)
    except AiledgerError as exc:
        return Replay(False, index, None, None, [f"passport: {exc}"])
    if verified.sha256 != entry.get("model"):
        problems.append(
            f"model: these files carry passport {verified.sha256}, the decision names "
            f"{entry.get('model')}: not the model that decided"
        )
        return Replay(False, index, None, None, problems)
    try:
        model = load_linear_model(model_dir)
        row = model.explainer.row(given)
        output = float(model.estimator.predict_proba(row)[0, 1])
        explanation = model.explainer.explain(row).as_dict()
    except AiledgerError as exc:
        return Replay(False, index, None, None, [f"re-run: {exc}"])
    logged_output = entry.get("output")
    notes: list[str] = []
    _compare("output", logged_output, output, problems)
    _compare_explanations(entry["explanation"], explanation, problems, notes)
    logged = float(logged_output) if isinstance(logged_output, int | float) else None
    return Replay(not problems, index, logged, output, problems, notes)


def _entry(receipt: Mapping[str, Any], problems: list[str]) -> dict[str, Any] | None:
    try:
        entry = json.loads(receipt["entry"])
    except (KeyError, TypeError, ValueError) as exc:
        problems.append(f"receipt: no readable entry ({exc!r})")
        return None
    if not isinstance(entry, dict) or entry.get("kind") != "decision":
        problems.append("receipt: the entry is not a decision")
        return None
    try:  # compared below number by number: it must at least read as an object
        explanation = json.loads(str(entry.get("explanation")))
    except ValueError:
        explanation = None
    if not isinstance(explanation, dict):
        problems.append("receipt: explanation: unreadable (not a JSON object)")
        return None
    return {**entry, "explanation": explanation}


def _is_input(entry: Mapping[str, Any], salt: object, given: object, problems: list[str]) -> bool:
    """Replaying on anything but the decision's own input would prove nothing."""
    if not isinstance(given, Mapping) or not given:
        problems.append("input: give the decision's features (the receipt carries none)")
        return False
    return input_matches(entry, salt, given, problems) is True


def _compare(what: str, logged: object, replayed: float, problems: list[str]) -> None:
    if not isinstance(logged, int | float) or isinstance(logged, bool):
        problems.append(f"{what}: the log holds no number ({logged!r})")
        return
    gap = abs(float(logged) - replayed)
    if not gap <= REPLAY_TOLERANCE * max(1.0, abs(replayed)) or not math.isfinite(replayed):
        problems.append(f"{what}: logged {float(logged)!r}, the re-run gives {replayed!r}")


def _compare_explanations(
    logged: dict[str, Any], replayed: dict[str, Any], problems: list[str], notes: list[str]
) -> None:
    for key in ("explainer", "link", "parameters"):
        if logged.get(key) != replayed[key]:
            problems.append(
                f"explanation {key}: logged {logged.get(key)!r}, the re-run uses {replayed[key]!r}"
            )
    if logged.get("version") != replayed["version"]:
        notes.append(
            f"explainer version: logged {logged.get('version')}, re-run with "
            f"{replayed['version']}; the numbers are compared all the same"
        )
    for key in ("base_value", "raw_output"):
        _compare(f"explanation {key}", logged.get(key), float(replayed[key]), problems)
    attributions = logged.get("attributions")
    if not isinstance(attributions, dict) or set(attributions) != set(replayed["attributions"]):
        problems.append("explanation attributions: not the model's features")
        return
    for name, value in sorted(replayed["attributions"].items()):
        _compare(f"attribution of {name}", attributions[name], float(value), problems)

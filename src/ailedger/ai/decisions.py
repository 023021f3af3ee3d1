"""Decision receipts: each decision a served model makes is one leaf of the audit log.

The leaf (a flat audit entry, see :mod:`ailedger.audit.entry`) names the model by its
passport id, commits to the input by a salted digest (the features never enter the log),
and carries the output with its SHAP explanation, JSON-encoded into one string field
because audit entries hold scalars only::

    {"kind": "decision", "model": "0x<sha256 of the passport>",
     "input": "0x" + SHA-256(salt || canonical JSON of the features),
     "output": <probability of class 1>, "explanation": "<canonical JSON>",
     "deployer": "0x<address>", "time": <unix seconds>}

The person it concerns gets a receipt: the audit receipt (index, entry, signed checkpoint,
RFC 6962 inclusion proof) plus the salt, and checks it offline with :func:`verify_decision`
against the node's checkpoint key and the roots it anchored on chain (``AuditAnchor``).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ailedger.ai.errors import DecisionError, ExplanationError
from ailedger.ai.explain import MAX_RESIDUAL, Explanation, ShapExplainer, for_model, inverse_link
from ailedger.ai.salts import SaltStore
from ailedger.audit.entry import JsonScalar, canonical_json
from ailedger.audit.receipt import receipt_checks

SALT_BYTES = 32
_PROBABILITY_TOLERANCE = 1e-9  # predict_proba against the inverse link of the raw output


class DecisionLog(Protocol):
    """What decisions need of :class:`~ailedger.audit.log.AuditLog`."""

    def append(self, entry: Mapping[str, JsonScalar]) -> int: ...

    def receipt(self, index: int) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Decision:
    """A logged decision: its durable audit ``index``, the ``entry`` as logged, and its salt."""

    index: int
    entry: dict[str, JsonScalar]
    salt: bytes
    output: float
    explanation: Explanation


@dataclass(frozen=True)
class DecisionCheck:
    """Outcome of :func:`verify_decision`: ``problems`` name each failed check."""

    ok: bool
    index: int | None
    entry: dict[str, Any] | None
    input_matched: bool | None  # None: no features given, or the salt was destroyed
    anchored: bool | None  # None: the checkpoint is not anchored (yet) in the given roots
    problems: list[str] = field(default_factory=list)


def input_digest(salt: bytes, features: Mapping[str, float]) -> str:
    """``0x`` + SHA-256(salt || canonical JSON of the features)."""
    values = {name: float(value) for name, value in features.items()}
    return "0x" + hashlib.sha256(salt + canonical_json(values)).hexdigest()


def record_decision(
    log: DecisionLog,
    salts: SaltStore,
    model_passport: str,
    model: Any,
    features: Mapping[str, float],
    *,
    deployer: str,
    explainer: ShapExplainer | None = None,
    feature_names: Sequence[str] | None = None,
    now: int | None = None,
) -> Decision:
    """Run ``model`` on ``features``, explain it, and log the decision durably.

    ``explainer`` (build it once per model) fixes the feature order; without it, TreeSHAP
    is built over ``feature_names`` (or the model's ``feature_names_in_``). Returns only
    after the audit entry and its salt are committed.
    """
    _check_hex_id(model_passport, 32, "model_passport")
    _check_hex_id(deployer, 20, "deployer")
    if explainer is None:
        names = (
            feature_names
            if feature_names is not None
            else getattr(model, "feature_names_in_", None)
        )
        if names is None:
            raise DecisionError("give feature_names (the model's input order) or an explainer")
        explainer = for_model(model, [str(n) for n in names])
    elif explainer.model is not model:
        raise DecisionError("the explainer was built for another model: build one for this one")
    row = explainer.row(features)
    output = float(model.predict_proba(row)[0, 1])
    explanation = explainer.explain(row)
    if (
        abs(inverse_link(explanation.link, explanation.raw_output) - output)
        > _PROBABILITY_TOLERANCE
    ):
        raise ExplanationError(
            f"the model's probability {output!r} is not the inverse {explanation.link} of its "
            f"raw output {explanation.raw_output!r}: the link is wrong for this model"
        )
    salt, when = os.urandom(SALT_BYTES), int(time.time()) if now is None else now
    entry: dict[str, JsonScalar] = {
        "kind": "decision",
        "model": model_passport,
        "input": input_digest(salt, features),
        "output": output,
        "explanation": canonical_json_text(explanation.as_dict()),
        "deployer": deployer,
        "time": when,
    }
    index = log.append(entry)
    # The salt is written after its leaf: a crash between the two leaves a leaf nobody can
    # link to an input (as if redacted early), never a salt without its decision.
    salts.put(index, salt, when)
    return Decision(index, entry, salt, output, explanation)


def canonical_json_text(value: Mapping[str, Any]) -> str:
    """Nested JSON the way audit entries are written: sorted keys, no spaces, no NaN."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def _check_hex_id(value: str, size: int, what: str) -> None:
    body = value[2:] if isinstance(value, str) and value.startswith("0x") else ""
    try:
        ok = len(body) == 2 * size and bytes.fromhex(body) is not None
    except ValueError:
        ok = False
    if not ok:
        raise DecisionError(f"{what} must be 0x followed by {2 * size} hex digits, got {value!r}")


# -- receipts ------------------------------------------------------------------------------


def decision_receipt(
    log: DecisionLog,
    salts: SaltStore,
    index: int,
    features: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """The audit receipt of decision ``index`` plus its salt (None once redacted), and the
    features only if the caller passes them (the person already holds their own input)."""
    receipt = log.receipt(index)
    if json.loads(receipt["entry"]).get("kind") != "decision":
        raise DecisionError(f"audit entry {index} is not a decision: it has no decision receipt")
    salt = salts.get(index)
    receipt["salt"] = salt.hex() if salt is not None else None
    if features is not None:
        receipt["features"] = {name: float(value) for name, value in features.items()}
    return receipt


def verify_decision(
    receipt: dict[str, Any],
    anchors: Sequence[tuple[int, bytes]],
    public_key: Ed25519PublicKey,
    features: Mapping[str, float] | None = None,
) -> DecisionCheck:
    """Check a decision receipt offline.

    The audit checks (format, entry, checkpoint signature, inclusion, and the checkpoint
    against ``anchors``, the node's anchored (size, root) pairs), then that the entry is a
    decision whose explanation adds up, then, given ``features`` (or the receipt's own),
    that they and the salt give the entry's input digest. A checkpoint not found among
    ``anchors`` leaves ``anchored`` None: it is not a failure, but not yet anchored.
    """
    verdict = receipt_checks(receipt, public_key, anchors)
    problems = [f"{c.name}: {c.detail}" for c in verdict.checks if c.ok is False]
    anchor = next((c.ok for c in verdict.checks if c.name == "anchor"), None)
    if problems:
        return DecisionCheck(False, verdict.index, None, None, anchor, problems)
    entry: dict[str, Any] = json.loads(receipt["entry"])
    problems += decision_entry_problems(entry)
    features = features if features is not None else receipt.get("features")
    matched = input_matches(entry, receipt.get("salt"), features, problems)
    return DecisionCheck(not problems, verdict.index, entry, matched, anchor, problems)


def input_matches(
    entry: Mapping[str, Any], salt_hex: object, features: object, problems: list[str]
) -> bool | None:
    """Whether ``features`` with the salt give the entry's input digest (None: no features
    given, or the salt was destroyed); what fails is added to ``problems``."""
    if features is None:
        return None
    if salt_hex is None:
        problems.append("input: the salt was destroyed (redacted): no input can be linked")
        return None
    try:
        salt = bytes.fromhex(str(salt_hex))
        if not isinstance(features, Mapping):
            raise TypeError("features are not a mapping")
        digest = input_digest(salt, features)
    except (ValueError, TypeError) as exc:
        problems.append(f"input: the salt or features cannot be read ({exc})")
        return False
    if digest != entry.get("input"):
        problems.append("input: these features are not this decision's input (another person's)")
        return False
    return True


def decision_entry_problems(entry: Mapping[str, Any]) -> list[str]:
    """What is wrong with a logged decision entry; its explanation must add up."""
    if entry.get("kind") != "decision":
        return ["kind: the entry is not a decision"]
    try:
        explanation = json.loads(entry["explanation"])
        base, raw = float(explanation["base_value"]), float(explanation["raw_output"])
        attributions = [float(v) for v in explanation["attributions"].values()]
        residual, output = float(explanation["residual"]), float(entry["output"])
        probability = inverse_link(str(explanation["link"]), raw)
    except (KeyError, TypeError, ValueError, AttributeError, DecisionError) as exc:
        return [f"explanation: unreadable ({exc!r})"]
    problems = []
    if not residual <= MAX_RESIDUAL:
        problems.append(f"explanation: its stated residual {residual:.3g} exceeds {MAX_RESIDUAL:g}")
    gap = abs(base + math.fsum(attributions) - raw)
    if not gap <= MAX_RESIDUAL:
        problems.append(f"explanation: base + attributions misses the output by {gap:.3g}")
    if not abs(probability - output) <= _PROBABILITY_TOLERANCE:
        problems.append("explanation: the output is not the probability its raw output gives")
    return problems

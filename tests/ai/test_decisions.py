"""Decision receipts: logged, explained, proven offline, redacted after retention, exported.

The receipts are checked against the signed checkpoint's (size, root) given as the anchored
root, as a verifier does offline with the root it read from ``AuditAnchor``; anchoring on a
chain is the audit log's own concern and is tested there.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from ailedger.ai.decision_export import export_decisions, verify_export
from ailedger.ai.decisions import (
    decision_receipt,
    record_decision,
    verify_decision,
)
from ailedger.ai.errors import DecisionError, ExplanationError, RetentionError
from ailedger.ai.explain import MAX_RESIDUAL, ShapExplainer
from ailedger.ai.salts import DEFAULT_RETENTION_S, SaltStore
from ailedger.audit.log import AuditLog

PASSPORT = "0x" + "5a" * 32
DEPLOYER = "0x" + "d1" * 20
T0 = 1_780_000_000


# Models are trained once per run, outside fixtures: titanoboa's pytest plugin snapshots the
# EVM around every fixture, and module-scoped fixtures interleave its snapshots.
@functools.cache
def _data() -> tuple[Any, Any, list[str]]:
    bunch = load_breast_cancer()
    names = [str(n).replace(" ", "_") for n in bunch.feature_names]
    return bunch.data, bunch.target, names


@functools.cache
def _boosted() -> ShapExplainer:
    x, y, names = _data()
    model = GradientBoostingClassifier(n_estimators=50, random_state=0).fit(x, y)
    return ShapExplainer.tree(model, names)


def _scaled(x: Any) -> Any:
    x0 = _data()[0]
    return (x - x0.mean(axis=0)) / x0.std(axis=0)  # unscaled data does not converge


@functools.cache
def _linear() -> ShapExplainer:
    x, y, names = _data()
    model = LogisticRegression(max_iter=1000).fit(_scaled(x), y)
    return ShapExplainer.linear(model, names, _scaled(x)[:100])


@pytest.fixture
def data() -> tuple[Any, Any, list[str]]:
    return _data()


@pytest.fixture
def boosted() -> ShapExplainer:
    return _boosted()


@pytest.fixture
def linear() -> ShapExplainer:
    return _linear()


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def log(tmp_path: Path, key: Ed25519PrivateKey) -> Iterator[AuditLog]:
    with AuditLog(tmp_path / "audit", key) as opened:
        yield opened


@pytest.fixture
def salts(tmp_path: Path) -> Iterator[SaltStore]:
    store = SaltStore(tmp_path / "salts")
    yield store
    store.close()


def _features(x: Any, names: list[str], row: int) -> dict[str, float]:
    return {name: float(v) for name, v in zip(names, x[row], strict=True)}


def _record(log: AuditLog, salts: SaltStore, explainer: ShapExplainer, features: Any) -> Any:
    return record_decision(
        log, salts, PASSPORT, explainer.model, features,
        deployer=DEPLOYER, explainer=explainer, now=T0,
    )  # fmt: skip


def _anchors(log: AuditLog) -> list[tuple[int, bytes]]:
    checkpoint = log.checkpoint_now()
    return [(checkpoint.size, checkpoint.root)]


@pytest.mark.parametrize("which", ["boosted", "linear"])
def test_record_and_verify_round_trip(
    data: tuple[Any, Any, list[str]],
    log: AuditLog,
    salts: SaltStore,
    key: Ed25519PrivateKey,
    which: str,
) -> None:
    explainer = _boosted() if which == "boosted" else _linear()
    x, _, names = data
    if which == "linear":
        x = _scaled(x)
    features = _features(x, names, 7)
    decision = _record(log, salts, explainer, features)
    assert log.entry(decision.index) == decision.entry
    assert decision.entry["kind"] == "decision" and decision.entry["model"] == PASSPORT
    assert decision.output == pytest.approx(explainer.model.predict_proba(x[7:8])[0, 1])
    assert decision.explanation.residual <= MAX_RESIDUAL
    assert set(decision.explanation.attributions) == set(names)
    assert str(features[names[0]]) not in json.dumps(decision.entry)  # no input in the leaf

    receipt = decision_receipt(log, salts, decision.index)
    assert "features" not in receipt and receipt["salt"] == decision.salt.hex()
    check = verify_decision(receipt, _anchors(log), key.public_key(), features)
    assert check.ok, check.problems
    assert (check.input_matched, check.anchored) == (True, True)
    without = verify_decision(receipt, _anchors(log), key.public_key())
    assert without.ok and without.input_matched is None
    size = _anchors(log)[0][0]
    forked = verify_decision(receipt, [(size, bytes(32))], key.public_key(), features)
    assert not forked.ok and forked.anchored is False  # the chain anchors another root
    pending = verify_decision(receipt, [], key.public_key(), features)
    assert pending.ok and pending.anchored is None  # signed, not anchored yet


def test_a_random_forest_is_explained_in_probability_space(
    data: tuple[Any, Any, list[str]], log: AuditLog, salts: SaltStore, key: Ed25519PrivateKey
) -> None:
    x, y, names = data
    forest = RandomForestClassifier(n_estimators=10, random_state=0).fit(x, y)
    decision = _record(log, salts, ShapExplainer.tree(forest, names), _features(x, names, 3))
    assert decision.explanation.link == "identity"
    receipt = decision_receipt(log, salts, decision.index, _features(x, names, 3))
    assert verify_decision(receipt, _anchors(log), key.public_key()).ok


def test_another_persons_receipt_is_refused(
    data: tuple[Any, Any, list[str]],
    boosted: ShapExplainer,
    log: AuditLog,
    salts: SaltStore,
    key: Ed25519PrivateKey,
) -> None:
    x, _, names = data
    theirs = _record(log, salts, boosted, _features(x, names, 1))
    _record(log, salts, boosted, _features(x, names, 2))
    receipt = decision_receipt(log, salts, theirs.index)
    check = verify_decision(receipt, _anchors(log), key.public_key(), _features(x, names, 2))
    assert not check.ok and check.input_matched is False
    assert any("another person" in p for p in check.problems)


def test_an_entry_altered_after_issue_is_refused(
    data: tuple[Any, Any, list[str]],
    boosted: ShapExplainer,
    log: AuditLog,
    salts: SaltStore,
    key: Ed25519PrivateKey,
) -> None:
    x, _, names = data
    features = _features(x, names, 0)
    receipt = decision_receipt(log, salts, _record(log, salts, boosted, features).index)
    entry = json.loads(receipt["entry"])
    entry["output"] = 1.0 - entry["output"]  # the decision flipped after the fact
    receipt["entry"] = json.dumps(entry, sort_keys=True, separators=(",", ":"))
    check = verify_decision(receipt, _anchors(log), key.public_key(), features)
    assert not check.ok and any(p.startswith("inclusion") for p in check.problems)
    other_key = Ed25519PrivateKey.generate().public_key()
    assert not verify_decision(decision_receipt(log, salts, 0), [], other_key).ok


def test_an_explanation_that_does_not_add_up_is_refused(
    data: tuple[Any, Any, list[str]],
    boosted: ShapExplainer,
    log: AuditLog,
    salts: SaltStore,
    key: Ed25519PrivateKey,
) -> None:
    """A node that logs a doctored explanation gets a valid inclusion proof, and a refusal."""
    x, _, names = data
    honest = _record(log, salts, boosted, _features(x, names, 4))
    explanation = json.loads(str(honest.entry["explanation"]))
    top = max(explanation["attributions"], key=lambda n: abs(explanation["attributions"][n]))
    explanation["attributions"][top] = 0.0  # hide the feature that drove the decision
    doctored = dict(honest.entry, explanation=json.dumps(explanation, sort_keys=True))
    index = log.append(doctored)
    salts.put(index, honest.salt, T0)
    check = verify_decision(decision_receipt(log, salts, index), _anchors(log), key.public_key())
    assert not check.ok and any("misses the output" in p for p in check.problems)

    explanation = json.loads(str(honest.entry["explanation"]))
    explanation["residual"] = 0.5  # an approximate explainer's result, stated honestly
    index = log.append(dict(honest.entry, explanation=json.dumps(explanation)))
    salts.put(index, honest.salt, T0)
    check = verify_decision(decision_receipt(log, salts, index), _anchors(log), key.public_key())
    assert not check.ok and any("residual" in p for p in check.problems)


def test_an_explainer_of_another_model_is_refused_before_logging(
    data: tuple[Any, Any, list[str]], boosted: ShapExplainer, log: AuditLog, salts: SaltStore
) -> None:
    x, y, names = data
    other = GradientBoostingClassifier(n_estimators=5, random_state=1).fit(x, 1 - y)
    mismatched = ShapExplainer(other, names, boosted._explainer, boosted.parameters)
    with pytest.raises(ExplanationError, match="misses the model's output"):
        _record(log, salts, mismatched, _features(x, names, 0))
    with pytest.raises(DecisionError, match="another model"):
        record_decision(
            log, salts, PASSPORT, other, _features(x, names, 0),
            deployer=DEPLOYER, explainer=boosted,
        )  # fmt: skip
    with pytest.raises(DecisionError, match="missing"):
        _record(log, salts, boosted, {names[0]: 1.0})
    assert log.size == 0


def test_redaction_waits_for_retention_then_unlinks_the_input(
    data: tuple[Any, Any, list[str]],
    boosted: ShapExplainer,
    log: AuditLog,
    salts: SaltStore,
    key: Ed25519PrivateKey,
) -> None:
    x, _, names = data
    features = _features(x, names, 5)
    decision = _record(log, salts, boosted, features)
    with pytest.raises(RetentionError, match="must be kept until"):
        salts.redact(decision.index, T0 + DEFAULT_RETENTION_S - 1)
    assert salts.get(decision.index) == decision.salt

    salts.redact(decision.index, T0 + DEFAULT_RETENTION_S)
    assert salts.get(decision.index) is None
    assert log.entry(decision.index) == decision.entry  # the leaf stays
    receipt = decision_receipt(log, salts, decision.index)
    assert receipt["salt"] is None
    proven = verify_decision(receipt, _anchors(log), key.public_key())
    assert proven.ok and proven.anchored is True  # inclusion still proven
    linked = verify_decision(receipt, _anchors(log), key.public_key(), features)
    assert not linked.ok and linked.input_matched is None
    assert any("redacted" in p for p in linked.problems)


def test_export_verifies_and_tampering_is_refused(
    data: tuple[Any, Any, list[str]],
    boosted: ShapExplainer,
    log: AuditLog,
    salts: SaltStore,
    key: Ed25519PrivateKey,
) -> None:
    x, _, names = data
    for row in range(4):
        _record(log, salts, boosted, _features(x, names, row))
    log.append({"kind": "read", "who": DEPLOYER})  # not a decision: left out
    salts.redact(1, T0 + DEFAULT_RETENTION_S)
    exported = export_decisions(log, salts, 0, log.size, key)
    entries = verify_export(exported, key.public_key())
    assert [e["input"] for e in entries] == [log.entry(i)["input"] for i in range(4)]
    assert json.loads(exported)["export"]["redacted"] == [1]

    outer = json.loads(exported)
    first = json.loads(outer["export"]["entries"][0])
    first["output"] = np.nextafter(first["output"], 2.0)
    outer["export"]["entries"][0] = json.dumps(first, sort_keys=True, separators=(",", ":"))
    with pytest.raises(DecisionError, match="altered"):
        verify_export(json.dumps(outer).encode(), key.public_key())
    with pytest.raises(DecisionError, match="not signed"):
        verify_export(exported, Ed25519PrivateKey.generate().public_key())


def test_concurrent_salts_commit_together_and_a_duplicate_fails_alone(salts: SaltStore) -> None:
    errors: list[Exception] = []

    def put(index: int) -> None:
        try:
            salts.put(index % 40, bytes([index % 256]) * 32, T0)
        except DecisionError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=put, args=(i,)) for i in range(41)]  # 0 comes twice
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(errors) == 1 and "already stored" in str(errors[0])
    assert all(salts.get(i) is not None for i in range(40))

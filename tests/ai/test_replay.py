"""Replaying a logged decision: the auditor re-runs the model on the person's input and
every logged number must come back; another model, another input, a doctored output or a
doctored explanation is named."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ailedger.ai.decisions import decision_receipt, record_decision
from ailedger.ai.lineage import Evaluation, Lineage, TrainingJob
from ailedger.ai.passport import passport_key, sign_passport
from ailedger.ai.replay import replay_decision
from ailedger.ai.salts import SaltStore
from ailedger.ai.serving import load_linear_model
from ailedger.audit.log import AuditLog

DEPLOYER = "0x" + "d1" * 20
MODEL = {"features": ["age", "bmi"], "weights": [0.04, -0.1], "bias": 0.3}
LINEAGE = Lineage(
    name="risk",
    version="1.0.0",
    training_jobs=(TrainingJob(7, "0x" + "11" * 32),),
    datasets=(),
    privacy=(),
    evaluation=Evaluation("0x" + "22" * 32, {"auc": 0.8}),
    created_at=1_780_000_000,
)
PERSON = {"age": 61.0, "bmi": 27.5}


class Signed:
    def __init__(self, root: Path) -> None:
        self.model = root / "model"
        self.model.mkdir()
        (self.model / "model.json").write_text(json.dumps(MODEL))
        key, self.pem = passport_key(root / "home")
        self.key = key
        self.bundle = root / "passport.sig"
        self.passport = sign_passport(self.model, LINEAGE, "# risk\n", key, self.bundle).sha256


@pytest.fixture
def signed(tmp_path: Path) -> Signed:
    return Signed(tmp_path)


@pytest.fixture
def receipt(tmp_path: Path, signed: Signed) -> Iterator[dict[str, Any]]:
    served = load_linear_model(signed.model)
    salts = SaltStore(tmp_path / "salts")
    with AuditLog(tmp_path / "audit", Ed25519PrivateKey.generate()) as log:
        decided = record_decision(
            log, salts, signed.passport, served.estimator, PERSON,
            deployer=DEPLOYER, explainer=served.explainer,
        )  # fmt: skip
        log.checkpoint_now()
        yield decision_receipt(log, salts, decided.index, PERSON)
    salts.close()


def _with_entry(receipt: dict[str, Any], **changes: Any) -> dict[str, Any]:
    entry = json.loads(receipt["entry"]) | changes
    return receipt | {"entry": json.dumps(entry)}


def test_the_same_model_on_the_same_input_gives_back_every_logged_number(
    signed: Signed, receipt: dict[str, Any]
) -> None:
    replay = replay_decision(receipt, signed.model, signed.bundle, signed.pem)
    assert replay.ok, replay.problems
    assert replay.replayed_output == replay.logged_output
    assert replay.notes == []


def test_another_persons_input_is_not_replayed(signed: Signed, receipt: dict[str, Any]) -> None:
    replay = replay_decision(
        receipt, signed.model, signed.bundle, signed.pem, {"age": 30.0, "bmi": 22.0}
    )
    assert not replay.ok
    assert replay.problems == [
        "input: these features are not this decision's input (another person's)"
    ]


def test_a_redacted_decision_cannot_be_replayed(signed: Signed, receipt: dict[str, Any]) -> None:
    replay = replay_decision(receipt | {"salt": None}, signed.model, signed.bundle, signed.pem)
    assert not replay.ok and "redacted" in replay.problems[0]


def test_another_model_is_named_as_not_the_one_that_decided(
    tmp_path: Path, signed: Signed, receipt: dict[str, Any]
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    other_signed = Signed(other)
    replay = replay_decision(receipt, other_signed.model, other_signed.bundle, other_signed.pem)
    assert not replay.ok
    assert replay.problems[0].startswith("model: these files carry passport")


def test_weights_changed_after_signing_fail_the_passport(
    signed: Signed, receipt: dict[str, Any]
) -> None:
    (signed.model / "model.json").write_text(json.dumps({**MODEL, "bias": 0.31}))
    replay = replay_decision(receipt, signed.model, signed.bundle, signed.pem)
    assert not replay.ok and replay.problems[0].startswith("passport:")


def test_a_doctored_output_is_named(signed: Signed, receipt: dict[str, Any]) -> None:
    logged = json.loads(receipt["entry"])["output"]
    replay = replay_decision(
        _with_entry(receipt, output=logged - 0.01), signed.model, signed.bundle, signed.pem
    )
    assert not replay.ok
    assert [p.split(":")[0] for p in replay.problems] == ["output"]


def test_a_doctored_explanation_is_named_attribution_by_attribution(
    signed: Signed, receipt: dict[str, Any]
) -> None:
    explanation = json.loads(json.loads(receipt["entry"])["explanation"])
    age = explanation["attributions"]["age"]
    # Shifted between two features, it still adds up: only the re-run can tell.
    explanation["attributions"]["age"] = age - 0.2
    explanation["attributions"]["bmi"] += 0.2
    explanation["version"] = "0.0.1"
    doctored = _with_entry(receipt, explanation=json.dumps(explanation))
    replay = replay_decision(doctored, signed.model, signed.bundle, signed.pem)
    assert not replay.ok
    assert [p.split(":")[0] for p in replay.problems] == [
        "attribution of age",
        "attribution of bmi",
    ]
    assert replay.notes and "explainer version" in replay.notes[0]


def test_a_receipt_without_features_or_entry_is_refused_with_a_reason(
    signed: Signed, receipt: dict[str, Any]
) -> None:
    bare = {k: v for k, v in receipt.items() if k != "features"}
    assert (
        "give the decision's features"
        in replay_decision(bare, signed.model, signed.bundle, signed.pem).problems[0]
    )
    assert (
        "no readable entry"
        in replay_decision({"index": 0}, signed.model, signed.bundle, signed.pem).problems[0]
    )
    garbled = _with_entry(receipt, explanation="{not json")  # it raised before
    replay = replay_decision(garbled, signed.model, signed.bundle, signed.pem)
    assert replay.problems == ["receipt: explanation: unreadable (not a JSON object)"]

"""MME authentication: issued tokens, and node tokens from accounts known on chain."""

from __future__ import annotations

from pathlib import Path

from eth_account import Account

from ailedger.health.mme_auth import IssuedTokens, authenticator
from ailedger.health.mme_schema import validation_errors
from ailedger.peer.signing import node_token

ME = "0x" + "11" * 20


def test_issued_tokens_are_stored_as_digests(tmp_path: Path) -> None:
    tokens = IssuedTokens(tmp_path / "tokens.json")
    token = tokens.issue("partner hospital")
    assert tokens.peer_of(token) == "partner hospital"
    assert tokens.peer_of(token + "x") is None
    assert token not in (tmp_path / "tokens.json").read_text()
    assert (tmp_path / "tokens.json").stat().st_mode & 0o077 == 0


def test_authenticator_requires_a_registered_node(tmp_path: Path) -> None:
    registered, stranger = Account.create(), Account.create()
    issued = IssuedTokens(tmp_path / "tokens.json")
    authenticate = authenticator(issued, ME, lambda a: a == registered.address)
    assert authenticate(node_token(registered, ME)) == registered.address
    assert authenticate(node_token(stranger, ME)) is None
    assert authenticate(None) is None and authenticate("") is None
    assert authenticate(issued.issue("peer")) == "peer"


def test_schema_accepts_the_benchmark_patients_and_names_errors() -> None:
    valid = {
        "patient": {
            "id": "P1",
            "contact": {"name": "Dr X", "href": "mailto:x@y"},
            "features": [{"id": "HP:0001250", "observed": "yes"}],
        }
    }
    assert validation_errors(valid) == []
    assert any("patient" in e for e in validation_errors({}))
    bad_term = {"patient": {**valid["patient"], "features": [{"id": "HP:12"}]}}
    assert any(e.startswith("patient/features/0/id") for e in validation_errors(bad_term))
    nothing = {"patient": {"id": "P1", "contact": {"name": "a", "href": "b"}}}
    assert validation_errors(nothing)


def test_every_published_benchmark_patient_is_a_valid_request() -> None:
    import json

    import pytest

    path = (
        Path(__file__).resolve().parents[3] / "shared" / "data" / "mme" / "benchmark_patients.json"
    )
    if not path.exists():
        pytest.skip(f"MME benchmark patients not found at {path}")
    for patient in json.loads(path.read_text()):
        assert validation_errors({"patient": patient}) == [], patient["id"]

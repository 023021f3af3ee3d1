"""EIP-712 access requests: who signed, for which chain and contract, and when."""

from __future__ import annotations

import dataclasses

import pytest
from eth_account import Account

from ailedger.sharing.access_request import (
    CLOCK_SKEW_S,
    MAX_LIFETIME_S,
    AccessRequest,
    Domain,
    InvalidRequestError,
    new_request,
    sign_request,
    verify_request,
)

DOMAIN = Domain(chain_id=7357, contract="0x" + "42" * 20)


def signed() -> tuple[AccessRequest, str, object]:
    account = Account.create()
    request = new_request(account, b"\x01" * 32, grant_id=3, purpose=2)
    return request, sign_request(account, DOMAIN, request), account


def test_a_fresh_request_signed_by_its_requester_verifies() -> None:
    request, signature, _ = signed()
    verify_request(DOMAIN, request, signature)
    assert AccessRequest.from_json(request.to_json()) == request


@pytest.mark.parametrize(
    "other",
    [Domain(chain_id=1, contract=DOMAIN.contract), Domain(7357, "0x" + "43" * 20)],
    ids=["wrong chain id", "wrong contract"],
)
def test_a_signature_for_another_domain_is_refused(other: Domain) -> None:
    request, signature, _ = signed()
    with pytest.raises(InvalidRequestError, match="signed by"):
        verify_request(other, request, signature)


@pytest.mark.parametrize("field", ["dataset_id", "grant_id", "purpose", "nonce", "expiry"])
def test_any_changed_field_breaks_the_signature(field: str) -> None:
    request, signature, _ = signed()
    value = getattr(request, field)
    changed = bytes([value[0] ^ 1]) + value[1:] if isinstance(value, bytes) else value + 1
    with pytest.raises(InvalidRequestError, match="signed by"):
        verify_request(DOMAIN, dataclasses.replace(request, **{field: changed}), signature)


def test_a_request_signed_by_another_key_is_refused() -> None:
    request, _, _ = signed()
    intruder = Account.create()
    with pytest.raises(InvalidRequestError, match="signed by"):
        verify_request(DOMAIN, request, sign_request(intruder, DOMAIN, request))


def test_expired_and_far_future_requests_are_refused() -> None:
    request, signature, _ = signed()
    with pytest.raises(InvalidRequestError, match="expired"):
        verify_request(DOMAIN, request, signature, now=request.expiry + 3600)
    with pytest.raises(InvalidRequestError, match="too late"):
        verify_request(DOMAIN, request, signature, now=request.expiry - MAX_LIFETIME_S - 3600)


def test_only_a_small_clock_skew_is_allowed_past_expiry() -> None:
    request, signature, _ = signed()
    assert CLOCK_SKEW_S <= 5
    verify_request(DOMAIN, request, signature, now=request.expiry + CLOCK_SKEW_S)
    for late in (CLOCK_SKEW_S + 1, 29):  # 29 s late was served before
        with pytest.raises(InvalidRequestError, match="expired"):
            verify_request(DOMAIN, request, signature, now=request.expiry + late)


@pytest.mark.parametrize("signature", ["0x", "0x1234", "not hex", "0x" + "00" * 65])
def test_garbage_signatures_are_refused(signature: str) -> None:
    request, _, _ = signed()
    with pytest.raises(InvalidRequestError):
        verify_request(DOMAIN, request, signature)


@pytest.mark.parametrize(
    "raw",
    [{}, {"datasetId": "0x01"}, {"datasetId": "0x" + "00" * 32, "grantId": -1}],
)
def test_malformed_json_is_refused(raw: dict[str, object]) -> None:
    with pytest.raises(InvalidRequestError, match="malformed"):
        AccessRequest.from_json(raw)

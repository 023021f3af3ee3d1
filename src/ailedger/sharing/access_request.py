"""Signed data-access requests (EIP-712 typed data).

A requester proves, to the data owner's gateway, that *they* ask for *this* dataset under
*this* grant and purpose, now. The EIP-712 domain binds the chain id and the DataMarket
contract (EIP-712 §"Definition of domainSeparator"), so a signature for another chain or
deployment never verifies; a random nonce and a short expiry make each signature usable
once (the gateway remembers nonces until they expire).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ailedger.errors import AiledgerError

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

DOMAIN_NAME = "ailedger data gateway"
DOMAIN_VERSION = "1"
MAX_LIFETIME_S = 600  # a request valid for longer would widen the replay window
CLOCK_SKEW_S = 5
"""How far the requester's clock may run behind or ahead of the gateway's. Hosts keep
their clocks within tens of milliseconds by NTP, so a few seconds cover a drifting one;
any more would serve a request for that long after the requester let it expire."""

TYPES = {
    "EIP712Domain": [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"},
        {"name": "verifyingContract", "type": "address"},
    ],
    "AccessRequest": [
        {"name": "datasetId", "type": "bytes32"},
        {"name": "grantId", "type": "uint256"},
        {"name": "purpose", "type": "uint256"},
        {"name": "requester", "type": "address"},
        {"name": "nonce", "type": "bytes32"},
        {"name": "expiry", "type": "uint256"},
    ],
}


class InvalidRequestError(AiledgerError):
    """A signed access request is malformed, expired, or not signed by its requester."""


@dataclass(frozen=True)
class AccessRequest:
    dataset_id: bytes
    grant_id: int
    purpose: int
    requester: str
    nonce: bytes
    expiry: int

    def message(self) -> dict[str, Any]:
        return {
            "datasetId": self.dataset_id,
            "grantId": self.grant_id,
            "purpose": self.purpose,
            "requester": self.requester,
            "nonce": self.nonce,
            "expiry": self.expiry,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "datasetId": "0x" + self.dataset_id.hex(),
            "grantId": self.grant_id,
            "purpose": self.purpose,
            "requester": self.requester,
            "nonce": "0x" + self.nonce.hex(),
            "expiry": self.expiry,
        }

    @classmethod
    def from_json(cls, raw: Any) -> AccessRequest:
        try:
            return cls(
                dataset_id=_hex32(raw["datasetId"]),
                grant_id=_uint(raw["grantId"]),
                purpose=_uint(raw["purpose"]),
                requester=str(raw["requester"]),
                nonce=_hex32(raw["nonce"]),
                expiry=_uint(raw["expiry"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidRequestError(f"malformed access request: {exc}") from exc


@dataclass(frozen=True)
class Domain:
    chain_id: int
    contract: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
            "chainId": self.chain_id,
            "verifyingContract": self.contract,
        }


def new_request(
    account: LocalAccount, dataset_id: bytes, grant_id: int, purpose: int, lifetime_s: int = 120
) -> AccessRequest:
    return AccessRequest(
        dataset_id=dataset_id,
        grant_id=grant_id,
        purpose=purpose,
        requester=str(account.address),
        nonce=secrets.token_bytes(32),
        expiry=int(time.time()) + lifetime_s,
    )


def _signable(domain: Domain, request: AccessRequest) -> Any:
    from eth_account.messages import encode_typed_data

    return encode_typed_data(
        full_message={
            "types": TYPES,
            "primaryType": "AccessRequest",
            "domain": domain.as_dict(),
            "message": request.message(),
        }
    )


def sign_request(account: LocalAccount, domain: Domain, request: AccessRequest) -> str:
    signed = account.sign_message(_signable(domain, request))
    return "0x" + bytes(signed.signature).hex()


def verify_request(
    domain: Domain, request: AccessRequest, signature: str, now: float | None = None
) -> None:
    """Raise :class:`InvalidRequestError` unless it is fresh and signed by its requester."""
    check_request(request, recover_signer(domain, request, signature), now)


def recover_signer(domain: Domain, request: AccessRequest, signature: str) -> str:
    """The account whose key made ``signature`` over ``request`` in ``domain``; raises
    :class:`InvalidRequestError` if it is not a signature at all. Any well-formed
    signature recovers *some* account: :func:`check_request` says if it is the right one."""
    from eth_account import Account

    try:
        raw = bytes.fromhex(signature.removeprefix("0x"))
        return str(Account.recover_message(_signable(domain, request), signature=raw))
    except Exception as exc:  # eth-account raises assorted errors for bad signatures
        raise InvalidRequestError(f"the signature is not valid: {exc}") from exc


def check_request(request: AccessRequest, signer: str, now: float | None = None) -> None:
    """Raise :class:`InvalidRequestError` unless ``signer`` (recovered from the request's
    signature) is its requester and it is fresh now."""
    if signer.lower() != request.requester.lower():
        # The reason is logged: it names the signer, never the account it claimed to be.
        raise InvalidRequestError(
            f"the request was signed by {signer}, not by the requester it names"
        )
    now = time.time() if now is None else now
    if request.expiry < now - CLOCK_SKEW_S:
        raise InvalidRequestError("the request has expired; sign a new one")
    if request.expiry > now + MAX_LIFETIME_S + CLOCK_SKEW_S:
        raise InvalidRequestError(
            f"the request expires too late (at most {MAX_LIFETIME_S} s ahead)"
        )


def _hex32(value: Any) -> bytes:
    raw = bytes.fromhex(str(value).removeprefix("0x"))
    if len(raw) != 32:
        raise ValueError(f"expected 32 bytes of hex, got {len(raw)}")
    return raw


def _uint(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"expected a non-negative integer, got {value!r}")
    return value

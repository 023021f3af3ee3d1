"""Signed requests and node tokens between nodes: valid, expired, misaddressed, replayed."""

from __future__ import annotations

import hashlib
import time

import pytest
from eth_account import Account

from ailedger.peer.signing import (
    NODE_TOKEN_LIFETIME_S,
    NODE_TOKEN_PREFIX,
    PREFIX,
    WINDOW_S,
    node_token,
    node_token_signer,
    request_signer,
    sign_request,
)

ACCOUNT = Account.create()
NODE = Account.create().address
PATH = "/v1/jobs/7/output"
BODY = b"sealed output bytes"
BODY_HASH = hashlib.sha256(BODY).digest()


def signed(body: bytes = BODY, target: str = NODE, method: str = "PUT", path: str = PATH) -> str:
    return sign_request(ACCOUNT, target, method, path, body)


def stamp_of(header: str) -> int:
    return int(header.split(".")[2])


def test_signed_request_verifies_to_signer() -> None:
    header = signed()
    assert request_signer(header, NODE, "PUT", PATH, BODY_HASH) == ACCOUNT.address


def test_target_and_method_are_case_insensitive() -> None:
    header = signed(target=NODE.lower(), method="put")
    assert request_signer(header, NODE.upper(), "PUT", PATH, BODY_HASH) == ACCOUNT.address


def test_empty_body_default() -> None:
    header = sign_request(ACCOUNT, NODE, "GET", "/v1/jobs/7/bundle")
    assert request_signer(header, NODE, "GET", "/v1/jobs/7/bundle") == ACCOUNT.address


@pytest.mark.parametrize("header", [None, ""])
def test_missing_header(header: str | None) -> None:
    assert request_signer(header, NODE, "PUT", PATH, BODY_HASH) is None


def test_malformed_headers() -> None:
    header = signed()
    _, claimed, stamp, sig = header.split(".")
    bad = [
        f"ailedger-req0.{claimed}.{stamp}.{sig}",  # wrong prefix
        f"{PREFIX}.{claimed}.{stamp}x.{sig}",  # non-digit stamp
        f"{PREFIX}.{claimed}.-{stamp}.{sig}",  # signed stamp
        f"{PREFIX}.{claimed}.{sig}",  # three parts
        f"{PREFIX}.{claimed}.{stamp}.{sig}.extra",  # five parts
        f"{PREFIX}.{claimed}.\u00b2\u00b3.{sig}",  # digits int() refuses (latin-1 header)
        f"{PREFIX}.{claimed}.{'1' * 5000}.{sig}",  # beyond int()'s digit limit
    ]
    for value in bad:
        assert request_signer(value, NODE, "PUT", PATH, BODY_HASH) is None, value


@pytest.mark.parametrize(
    ("target", "method", "path", "body_hash"),
    [
        (Account.create().address, "PUT", PATH, BODY_HASH),  # another node
        (NODE, "POST", PATH, BODY_HASH),  # another method
        (NODE, "PUT", "/v1/jobs/8/output", BODY_HASH),  # another path (job)
        (NODE, "PUT", PATH, hashlib.sha256(BODY + b"!").digest()),  # another body
    ],
    ids=["another node", "another method", "another path", "another body"],  # not random
)
def test_replay_against_anything_else(
    target: str, method: str, path: str, body_hash: bytes
) -> None:
    assert request_signer(signed(), target, method, path, body_hash) is None


def test_time_window() -> None:
    header = signed()
    stamp = stamp_of(header)
    assert request_signer(header, NODE, "PUT", PATH, BODY_HASH, now=stamp + WINDOW_S) is not None
    assert request_signer(header, NODE, "PUT", PATH, BODY_HASH, now=stamp + WINDOW_S + 1) is None
    # a stamp from the future (the verifier's clock is behind) is refused as well
    assert request_signer(header, NODE, "PUT", PATH, BODY_HASH, now=stamp - WINDOW_S - 1) is None


def test_future_stamp_in_header(monkeypatch: pytest.MonkeyPatch) -> None:
    future = time.time() + 10 * WINDOW_S
    monkeypatch.setattr(time, "time", lambda: future)
    header = signed()
    monkeypatch.undo()
    assert request_signer(header, NODE, "PUT", PATH, BODY_HASH) is None


def test_stamp_cannot_be_edited() -> None:
    _, claimed, stamp, sig = signed().split(".")
    edited = f"{PREFIX}.{claimed}.{int(stamp) + 1}.{sig}"
    assert request_signer(edited, NODE, "PUT", PATH, BODY_HASH) is None


def test_claimed_address_must_be_the_signer() -> None:
    _, _, stamp, sig = signed().split(".")
    other = Account.create().address
    forged = f"{PREFIX}.{other}.{stamp}.{sig}"
    assert request_signer(forged, NODE, "PUT", PATH, BODY_HASH) is None


def test_claimed_address_case_does_not_matter() -> None:
    _, claimed, stamp, sig = signed().split(".")
    lowered = f"{PREFIX}.{claimed.lower()}.{stamp}.{sig}"
    assert request_signer(lowered, NODE, "PUT", PATH, BODY_HASH) == ACCOUNT.address


@pytest.mark.parametrize("sig", ["zz", "", "00" * 65, "ab" * 10, "0x" + "11" * 65])
def test_garbage_signature(sig: str) -> None:
    _, claimed, stamp, _ = signed().split(".")
    header = f"{PREFIX}.{claimed}.{stamp}.{sig}"
    assert request_signer(header, NODE, "PUT", PATH, BODY_HASH) is None


# ------------------------------------------------------------------ node tokens

ME = "0x" + "11" * 20


def test_node_tokens_name_their_signer_and_target() -> None:
    node = Account.create()
    token = node_token(node, ME)
    assert node_token_signer(token, ME) == node.address
    assert node_token_signer(token, "0x" + "22" * 20) is None  # addressed to another node
    assert node_token_signer(token, ME, now=time.time() + 3600) is None  # expired
    forged = token.replace(node.address, Account.create().address)
    assert node_token_signer(forged, ME) is None
    assert node_token_signer("ailedger1.x.y.z", ME) is None


def test_node_token_lifetime() -> None:
    node = Account.create()
    token = node_token(node, ME, lifetime_s=60)
    expiry = int(token.split(".")[2])
    assert node_token_signer(token, ME, now=expiry) == node.address  # valid to the second
    assert node_token_signer(token, ME, now=expiry + 1) is None  # expired
    # a token valid for longer than the node accepts is refused, whoever signed it
    long = node_token(node, ME, lifetime_s=NODE_TOKEN_LIFETIME_S + 60)
    assert node_token_signer(long, ME) is None


def test_node_token_is_not_a_signed_request() -> None:
    """The two uses share a format but not a message: neither passes for the other."""
    token = node_token(ACCOUNT, NODE)
    assert token.startswith(NODE_TOKEN_PREFIX + ".")
    assert request_signer(token, NODE, "GET", PATH) is None
    as_request = PREFIX + token.removeprefix(NODE_TOKEN_PREFIX)
    assert request_signer(as_request, NODE, "GET", PATH) is None
    header = sign_request(ACCOUNT, NODE, "GET", PATH)
    assert node_token_signer(NODE_TOKEN_PREFIX + header.removeprefix(PREFIX), NODE) is None


def test_node_token_stamp_must_be_ascii_digits() -> None:
    _, claimed, _, sig = node_token(ACCOUNT, ME).split(".")
    assert node_token_signer(f"{NODE_TOKEN_PREFIX}.{claimed}.\u00b2.{sig}", ME) is None

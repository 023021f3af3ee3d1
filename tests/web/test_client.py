"""A program signs in to a node's web API with its account (``ailedger.web.client``):
the home's own account as the operator, a named auditor read-only, a stranger refused."""

from __future__ import annotations

import pytest
from eth_account import Account

from ailedger.errors import UnauthenticatedError
from ailedger.web.client import sign_in
from tests.web.homes import Chain, served, web_node


def test_accounts_sign_in_as_what_the_node_says_they_are(web_chain: Chain) -> None:
    auditor = Account.create()
    session = web_chain.party("client-home")
    with web_node(session, auditors=(auditor.address,)) as node, served(node):
        assert session.account is not None
        with sign_in(node.url, session.account) as api:
            assert api.get("/api/v1/auth/me").json()["role"] == "operator"
            assert api.post("/api/v1/auth/logout").status_code == 204
            assert api.get("/api/v1/auth/me").status_code == 401
        with sign_in(node.url, auditor) as api:
            assert api.get("/api/v1/auth/me").json() == {
                "address": auditor.address,
                "role": "auditor",
            }
        with (
            pytest.raises(UnauthenticatedError, match="refused to sign in"),
            sign_in(node.url, Account.create()),
        ):
            pass

"""AnvilNode: the external JSON-RPC node is usable as a second chain backend.

Proves, against a real Anvil process, what the contract clients rely on: chain id, a signed
EIP-1559 transfer, and deploying and calling Vyper 0.4 bytecode built for Shanghai (PUSH0).
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import vyper  # type: ignore[import-untyped]
from eth_account import Account
from eth_account.signers.local import LocalAccount
from vyper.compiler.settings import Settings  # type: ignore[import-untyped]
from web3 import Web3
from web3.types import TxParams, TxReceipt

from ailedger.chain.transactions import fund_from_dev_account
from ailedger.errors import ConfigError
from ailedger.testing.ethnode import ANVIL_CHAIN_ID, AnvilNode, anvil_available

CHAIN_ID = ANVIL_CHAIN_ID
FUNDER: LocalAccount = Account.from_key("0x" + "a1" * 32)
RECIPIENT: LocalAccount = Account.from_key("0x" + "b2" * 32)
START_BALANCE = 1000 * 10**18

STORE_SRC = """
# pragma version ~=0.4.0
stored: public(uint256)

@deploy
def __init__(initial: uint256):
    self.stored = initial

@external
def set(x: uint256):
    self.stored = x

@external
@view
def double() -> uint256:
    return self.stored * 2
"""

NOT_INSTALLED = "Anvil is not installed: run scripts/install_ethnode.sh"


@pytest.fixture(scope="module")
def node() -> Iterator[AnvilNode]:
    with AnvilNode([(FUNDER.address, START_BALANCE)]) as running:
        yield running


@pytest.fixture
def w3(node: AnvilNode) -> Web3:
    return Web3(Web3.HTTPProvider(node.url, request_kwargs={"timeout": 30}))


def _send(w3: Web3, account: LocalAccount, tx: dict[str, Any]) -> TxReceipt:
    """Fill EIP-1559 fees and nonce, sign locally, send raw, wait for the receipt."""
    base_fee = w3.eth.get_block("latest")["baseFeePerGas"]
    tip = w3.eth.max_priority_fee
    filled: dict[str, Any] = {
        "type": 2,
        "from": account.address,  # Anvil checks the estimating sender can pay the fees
        "chainId": CHAIN_ID,
        "nonce": w3.eth.get_transaction_count(account.address),
        "maxPriorityFeePerGas": tip,
        "maxFeePerGas": 2 * base_fee + tip,
        **tx,
    }
    if "gas" not in filled:
        filled["gas"] = w3.eth.estimate_gas(cast(TxParams, filled))
    signed = account.sign_transaction(filled)
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    return w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)


@pytest.mark.rpcnode
@pytest.mark.integration
@pytest.mark.skipif(not anvil_available(), reason=NOT_INSTALLED)
def test_chain_id_and_prefunded_account(w3: Web3) -> None:
    assert w3.eth.chain_id == CHAIN_ID
    assert w3.eth.get_balance(FUNDER.address) == START_BALANCE


@pytest.mark.rpcnode
@pytest.mark.integration
@pytest.mark.skipif(not anvil_available(), reason=NOT_INSTALLED)
def test_signed_eip1559_value_transfer(w3: Web3) -> None:
    before = w3.eth.get_balance(FUNDER.address)
    value = 3 * 10**18

    receipt = _send(w3, FUNDER, {"to": RECIPIENT.address, "value": value, "gas": 21_000})

    assert receipt["status"] == 1
    assert receipt["type"] == 2
    assert receipt["gasUsed"] == 21_000
    assert w3.eth.get_balance(RECIPIENT.address) == value
    fee = receipt["gasUsed"] * receipt["effectiveGasPrice"]
    assert w3.eth.get_balance(FUNDER.address) == before - value - fee


@pytest.mark.rpcnode
@pytest.mark.integration
@pytest.mark.skipif(not anvil_available(), reason=NOT_INSTALLED)
def test_deploys_and_calls_vyper_shanghai_bytecode(w3: Web3) -> None:
    out = vyper.compile_code(
        STORE_SRC,
        output_formats=["bytecode", "abi", "opcodes"],
        settings=Settings(evm_version="shanghai"),
    )
    # The point of this test: Shanghai's PUSH0 (EIP-3855) is in the code and Anvil runs it.
    assert "PUSH0" in out["opcodes"].split()
    factory = w3.eth.contract(abi=out["abi"], bytecode=out["bytecode"])
    deploy_tx = factory.constructor(21).build_transaction({"from": FUNDER.address})

    receipt = _send(w3, FUNDER, {"data": deploy_tx["data"]})

    assert receipt["status"] == 1
    address = receipt["contractAddress"]
    assert address is not None
    assert w3.eth.get_code(address)
    store = w3.eth.contract(address=address, abi=out["abi"])
    assert store.functions.double().call() == 42

    set_tx = store.functions.set(50).build_transaction({"from": FUNDER.address})
    receipt = _send(w3, FUNDER, {"to": address, "data": set_tx["data"]})

    assert receipt["status"] == 1
    assert store.functions.stored().call() == 50
    assert store.functions.double().call() == 100


@pytest.mark.rpcnode
@pytest.mark.integration
@pytest.mark.skipif(not anvil_available(), reason=NOT_INSTALLED)
def test_stop_ends_the_process() -> None:
    with AnvilNode(chain_id=4242) as running:
        url = running.url
        assert Web3(Web3.HTTPProvider(url)).eth.chain_id == 4242
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url, data=b"{}", timeout=2)


@pytest.mark.rpcnode
@pytest.mark.integration
@pytest.mark.skipif(not anvil_available(), reason=NOT_INSTALLED)
def test_unlocked_dev_account_funds_like_account_fund_does(w3: Web3) -> None:
    newcomer = Account.create()

    result = fund_from_dev_account(w3, newcomer.address, 2 * 10**18)

    assert result.block_number > 0
    assert w3.eth.get_balance(newcomer.address) == 2 * 10**18


@pytest.mark.rpcnode
@pytest.mark.integration
@pytest.mark.skipif(not anvil_available(), reason=NOT_INSTALLED)
def test_two_nodes_run_side_by_side_on_ports_of_their_own() -> None:
    with AnvilNode(chain_id=4243) as first, AnvilNode(chain_id=4244) as second:
        assert first.port != second.port
        assert Web3(Web3.HTTPProvider(first.url)).eth.chain_id == 4243
        assert Web3(Web3.HTTPProvider(second.url)).eth.chain_id == 4244


def test_missing_executable_says_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"scripts/install_ethnode\.sh"):
        AnvilNode(executable=tmp_path / "anvil").start()


def test_rejects_malformed_address() -> None:
    with pytest.raises(ConfigError, match="40 hex digits"):
        AnvilNode([("0x1234", 1)])

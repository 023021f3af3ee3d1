"""The PrivacyLedger client: unit conversions and their rounding, refusals before any
transaction, and a budget set, charged and read back (list and digest) through the typed
client on every chain backend."""

from __future__ import annotations

import math

import pytest
from eth_account.signers.local import LocalAccount
from tests.conftest import ChainUnderTest

from ailedger.chain.compiler import compile_contract
from ailedger.chain.contracts import (
    ChargeKind,
    DataMarketClient,
    Policy,
    PrivacyBudget,
    PrivacyLedgerClient,
    charges_digest,
)
from ailedger.chain.contracts.privacy_ledger import delta_e18, epsilon_cap_micro, spent_micro
from ailedger.errors import (
    BudgetExceededError,
    ConfigError,
    PrivacyBudgetError,
    StaleChargeError,
    TransactionRevertedError,
)

DS = b"\x61" * 32
REF = b"\x7e" * 32
CHARGES = b'[["laplace", 0.5]]'


def test_cap_rounds_down_spend_rounds_up_from_the_shortest_decimal() -> None:
    assert epsilon_cap_micro(0.3) == 300_000  # not 299999 from 0.29999999999999998...
    assert epsilon_cap_micro(1.0000019) == 1_000_001
    assert epsilon_cap_micro(100.0) == 100_000_000
    assert epsilon_cap_micro(0.000001) == 1
    assert spent_micro(0.1) == 100_000  # a spend equal to a cap of 0.1 fits it
    assert spent_micro(0.1000001) == 100_001
    assert spent_micro(0.30000000000000004) == 300_001  # never under-charged
    assert spent_micro(0.0) == 0
    assert delta_e18(1e-5) == 10**13
    assert delta_e18(0.1) == 10**17
    assert delta_e18(1e-18) == 1
    assert delta_e18(1.5e-18) == 1


@pytest.mark.parametrize(
    "epsilon", [math.nan, math.inf, -math.inf, -1.0, 0.0, 0.0000009, 100.000001, 1e300]
)
def test_bad_epsilon_caps_are_config_errors(epsilon: float) -> None:
    with pytest.raises(ConfigError, match="epsilon cap"):
        epsilon_cap_micro(epsilon)


@pytest.mark.parametrize("delta", [math.nan, math.inf, -1e-5, 0.0, 1e-19, 0.1000001, 0.5])
def test_bad_deltas_are_config_errors(delta: float) -> None:
    with pytest.raises(ConfigError, match="delta"):
        delta_e18(delta)


@pytest.mark.parametrize("spent", [math.nan, math.inf, -math.inf, -0.1])
def test_bad_spends_are_refused(spent: float) -> None:
    with pytest.raises(PrivacyBudgetError, match="finite epsilon of 0 or more"):
        spent_micro(spent)


def test_remaining_never_goes_negative() -> None:
    assert PrivacyBudget(1.0, 1e-5, 0.25, 1, True).remaining == 0.75
    assert PrivacyBudget(0.5, 1e-5, 0.75, 3, True).remaining == 0.0


def _clients(
    chain: ChainUnderTest,
) -> tuple[PrivacyLedgerClient, PrivacyLedgerClient, LocalAccount, LocalAccount]:
    """The owner's and a stranger's ledger clients; DS registered by the owner."""
    web3 = chain.connection.web3
    owner, buyer = chain.accounts[:2]
    market = DataMarketClient(
        web3,
        chain.deployment.address("DataMarket"),
        compile_contract("DataMarket", chain.cache_dir).abi,
        owner,
    )
    market.register_dataset(DS, b"\x22" * 32, b"\x33" * 32, Policy(1, False, 0, 86400, 0))
    abi = compile_contract("PrivacyLedger", chain.cache_dir).abi
    address = chain.deployment.address("PrivacyLedger")
    return (
        PrivacyLedgerClient(web3, address, abi, owner),
        PrivacyLedgerClient(web3, address, abi, buyer),
        owner,
        buyer,
    )


def test_budget_set_charged_and_read_back(chain_under_test: ChainUnderTest) -> None:
    ledger, stranger, _, buyer = _clients(chain_under_test)
    assert ledger.budget(DS) == PrivacyBudget(0.0, 0.0, 0.0, 0, False)
    assert ledger.digest(DS) == bytes(32)

    ledger.set_cap(DS, 1.0, 1e-5)
    assert stranger.budget(DS) == PrivacyBudget(1.0, 1e-5, 0.0, 0, True)
    assert stranger.is_private(DS)

    first = ledger.charge(DS, buyer.address, REF, ChargeKind.QUERY, CHARGES, 0.25, 0)
    ledger.charge(DS, buyer.address, b"\x01" * 32, ChargeKind.TRAINING, b"x" * 2048, 0.3, 1)
    budget = stranger.budget(DS)
    assert (budget.spent, budget.charges, budget.remaining) == (0.3, 2, 0.7)

    records = stranger.charges(DS)
    assert [(r.index, r.kind, r.spent_after, r.charges) for r in records] == [
        (0, ChargeKind.QUERY, 0.25, CHARGES),
        (1, ChargeKind.TRAINING, 0.3, b"x" * 2048),
    ]
    assert records[0].buyer == buyer.address and records[0].ref == REF
    assert (records[0].block, records[0].tx_hash) == (first.block_number, first.tx_hash)
    assert charges_digest(records) == stranger.digest(DS) != bytes(32)
    assert stranger.charges(DS, from_block=records[1].block) == records[1:]

    with pytest.raises(TransactionRevertedError, match="not the dataset owner"):
        stranger.charge(DS, buyer.address, REF, ChargeKind.QUERY, CHARGES, 0.5, 2)
    with pytest.raises(TransactionRevertedError, match="delta is fixed"):
        ledger.set_cap(DS, 2.0, 1e-6)


def test_spend_is_rounded_up_on_chain(chain_under_test: ChainUnderTest) -> None:
    ledger, _, _, buyer = _clients(chain_under_test)
    ledger.set_cap(DS, 1.0, 1e-5)
    ledger.charge(DS, buyer.address, REF, ChargeKind.QUERY, CHARGES, 0.1234561, 0)
    assert ledger.budget(DS).spent == 0.123457
    assert ledger.charges(DS)[0].spent_after_micro == 123_457


def test_races_and_the_cap_become_their_own_errors(chain_under_test: ChainUnderTest) -> None:
    ledger, _, _, buyer = _clients(chain_under_test)
    ledger.set_cap(DS, 1.0, 1e-5)
    ledger.charge(DS, buyer.address, REF, ChargeKind.QUERY, CHARGES, 0.5, 0)
    with pytest.raises(StaleChargeError, match="recompute the spend and charge again"):
        ledger.charge(DS, buyer.address, REF, ChargeKind.QUERY, CHARGES, 0.75, 0)
    with pytest.raises(BudgetExceededError, match="must not leave"):
        ledger.charge(DS, buyer.address, REF, ChargeKind.QUERY, CHARGES, 1.0000001, 1)
    # A charge that passed its gas estimate and then lost the race is mined and reverts
    # without a reason: the client reads what it lost to.
    reasonless = TransactionRevertedError("transaction 0xab reverted in block 9")
    assert isinstance(ledger._refusal(reasonless, DS, 750_000, 0), StaleChargeError)
    assert isinstance(ledger._refusal(reasonless, DS, 1_000_001, 1), BudgetExceededError)
    assert ledger._refusal(reasonless, DS, 750_000, 1) is reasonless
    assert ledger.budget(DS).charges == 1


BAD_CAPS = [
    (math.nan, 1e-5),
    (math.inf, 1e-5),
    (-1.0, 1e-5),
    (0.0, 1e-5),
    (101.0, 1e-5),
    (1.0, 0.2),
]
BAD_CHARGES: list[tuple[dict[str, object], str]] = [
    ({"spent_after": math.nan}, "finite epsilon"),
    ({"spent_after": math.inf}, "finite epsilon"),
    ({"spent_after": -0.5}, "finite epsilon"),
    ({"buyer": "0x" + "00" * 20}, "not zero"),
    ({"buyer": "alice"}, "not an address"),
    ({"ref": b"\x01" * 31}, "32 bytes"),
    ({"charges": b""}, "1 .. 2048"),
    ({"charges": b"x" * 2049}, "1 .. 2048"),
    ({"kind": 4}, "unknown charge kind"),
    ({"index": -1}, "charge count"),
]


def test_bad_caps_and_charges_fail_before_any_transaction(
    chain_under_test: ChainUnderTest,
) -> None:
    """One chain for every case (each would cost a chain of its own as a parameter)."""
    ledger, _, owner, buyer = _clients(chain_under_test)
    web3 = chain_under_test.connection.web3
    nonce = web3.eth.get_transaction_count(owner.address)
    for epsilon, delta in BAD_CAPS:
        with pytest.raises(ConfigError):
            ledger.set_cap(DS, epsilon, delta)
    assert web3.eth.get_transaction_count(owner.address) == nonce
    assert not ledger.is_private(DS)

    ledger.set_cap(DS, 1.0, 1e-5)
    nonce = web3.eth.get_transaction_count(owner.address)
    args: dict[str, object] = {
        "dataset_id": DS,
        "buyer": buyer.address,
        "ref": REF,
        "kind": ChargeKind.QUERY,
        "charges": CHARGES,
        "spent_after": 0.5,
        "index": 0,
    }
    for change, match in BAD_CHARGES:
        with pytest.raises(PrivacyBudgetError, match=match):
            ledger.charge(**{**args, **change})  # type: ignore[arg-type]
    assert web3.eth.get_transaction_count(owner.address) == nonce
    assert ledger.budget(DS).charges == 0

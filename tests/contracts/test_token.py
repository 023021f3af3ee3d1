"""Token.vy: EIP-20 behaviour, the dev-chain faucet, and a stateful model check.

The contract is loaded from the very file ``ailedger.chain.compiler`` compiles, with the
same EVM version, so what is tested here is what gets deployed.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from typing import Any

import boa
import pytest
from boa.contracts.vyper.vyper_contract import VyperContract, VyperDeployer
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

from ailedger.chain.compiler import EVM_VERSION, source_path

UNIT = 10**18
INITIAL_SUPPLY = 1_000_000 * UNIT
FAUCET_MAX = 10_000 * UNIT
MAX_UINT = 2**256 - 1
ZERO = "0x" + "00" * 20
DEV_CHAIN_IDS = (1337, 31337, 7357)


@functools.cache
def _deployer() -> VyperDeployer:
    # Compiled once per session; each test deploys a fresh instance from it.
    return boa.load_partial(str(source_path("Token")), compiler_args={"evm_version": EVM_VERSION})


# boa keeps a per-address trace of storage writes across anchors and decodes it with
# the layout of whatever contract sits there when it renders a revert; were every test
# file to deploy at the default sender's first CREATE address, a revert could be decoded
# with another contract's layout and crash. So each contract type gets its own address.
TOKEN_ADDRESS = "0x" + hashlib.sha256(b"ailedger tests: Token").hexdigest()[:40]


def _deploy(supply: int = INITIAL_SUPPLY) -> VyperContract:
    return _deployer().deploy(supply, override_address=TOKEN_ADDRESS)


@pytest.fixture
def token() -> VyperContract:
    return _deploy()


@pytest.fixture
def alice() -> Any:
    return boa.env.generate_address("alice")


@pytest.fixture
def bob() -> Any:
    return boa.env.generate_address("bob")


def test_metadata_and_initial_mint(token: VyperContract) -> None:
    # get_logs() reads the most recent computation, so it must come before any view call.
    [mint] = token.get_logs()
    assert (mint.sender, mint.receiver, mint.value) == (ZERO, boa.env.eoa, INITIAL_SUPPLY)
    assert token.name() == "ailedger token"
    assert token.symbol() == "AIL"
    assert token.decimals() == 18
    assert token.totalSupply() == INITIAL_SUPPLY
    assert token.balanceOf(boa.env.eoa) == INITIAL_SUPPLY
    assert token.FAUCET_MAX_PER_CALL() == FAUCET_MAX


def test_transfer_moves_balance_and_logs(token: VyperContract, alice: Any) -> None:
    assert token.transfer(alice, 5 * UNIT) is True
    [log] = token.get_logs()
    assert type(log).__name__ == "Transfer"
    assert (log.sender, log.receiver, log.value) == (boa.env.eoa, alice, 5 * UNIT)
    assert token.balanceOf(alice) == 5 * UNIT
    assert token.balanceOf(boa.env.eoa) == INITIAL_SUPPLY - 5 * UNIT


def test_transfer_of_zero_is_allowed(token: VyperContract, alice: Any) -> None:
    # EIP-20: "Transfers of 0 values MUST be treated as normal transfers and fire the
    # Transfer event."
    assert token.transfer(alice, 0) is True
    assert len(token.get_logs()) == 1


def test_transfer_to_zero_address_reverts(token: VyperContract) -> None:
    with boa.reverts("transfer: recipient is the zero address"):
        token.transfer(ZERO, 1)
    assert token.balanceOf(boa.env.eoa) == INITIAL_SUPPLY


def test_transfer_beyond_balance_reverts(token: VyperContract, alice: Any, bob: Any) -> None:
    token.transfer(alice, 10)
    with boa.env.prank(alice), boa.reverts("transfer: amount exceeds balance"):
        token.transfer(bob, 11)
    assert token.balanceOf(alice) == 10
    assert token.balanceOf(bob) == 0


def test_approve_and_transfer_from(token: VyperContract, alice: Any, bob: Any) -> None:
    owner = boa.env.eoa  # captured: inside prank(), boa.env.eoa is the pranked account
    assert token.approve(alice, 100) is True
    [approval] = token.get_logs()
    assert (approval.owner, approval.spender, approval.value) == (owner, alice, 100)
    assert token.allowance(owner, alice) == 100

    with boa.env.prank(alice):
        assert token.transferFrom(owner, bob, 60) is True
    assert token.allowance(owner, alice) == 40
    assert token.balanceOf(bob) == 60

    with boa.env.prank(alice), boa.reverts("transferFrom: amount exceeds allowance"):
        token.transferFrom(owner, bob, 41)
    assert token.allowance(owner, alice) == 40
    assert token.balanceOf(bob) == 60


def test_transfer_from_within_allowance_but_beyond_balance_reverts(
    token: VyperContract, alice: Any, bob: Any
) -> None:
    token.transfer(alice, 10)
    with boa.env.prank(alice):
        token.approve(bob, 1000)
    with boa.env.prank(bob), boa.reverts("transfer: amount exceeds balance"):
        token.transferFrom(alice, bob, 11)
    assert token.allowance(alice, bob) == 1000


def test_unlimited_allowance_is_not_spent(token: VyperContract, alice: Any, bob: Any) -> None:
    owner = boa.env.eoa
    token.approve(alice, MAX_UINT)
    with boa.env.prank(alice):
        token.transferFrom(owner, bob, 7)
    assert token.allowance(owner, alice) == MAX_UINT
    assert token.balanceOf(bob) == 7


def test_approve_zero_spender_reverts(token: VyperContract) -> None:
    with boa.reverts("approve: spender is the zero address"):
        token.approve(ZERO, 1)


@pytest.mark.parametrize("chain_id", DEV_CHAIN_IDS)
def test_faucet_mints_on_dev_chains(token: VyperContract, alice: Any, chain_id: int) -> None:
    boa.env.evm.patch.chain_id = chain_id
    with boa.env.prank(alice):
        token.faucet(FAUCET_MAX)
    [mint] = token.get_logs()
    assert (mint.sender, mint.receiver, mint.value) == (ZERO, alice, FAUCET_MAX)
    assert token.balanceOf(alice) == FAUCET_MAX
    assert token.totalSupply() == INITIAL_SUPPLY + FAUCET_MAX


@pytest.mark.parametrize("chain_id", [1, 10, 8453, 11155111])
def test_faucet_reverts_off_dev_chains(token: VyperContract, alice: Any, chain_id: int) -> None:
    boa.env.evm.patch.chain_id = chain_id
    with boa.env.prank(alice), boa.reverts("faucet: not a dev chain"):
        token.faucet(1)
    assert token.totalSupply() == INITIAL_SUPPLY


def test_faucet_per_call_limit(token: VyperContract, alice: Any) -> None:
    boa.env.evm.patch.chain_id = 7357
    with boa.env.prank(alice), boa.reverts("faucet: amount above per-call limit"):
        token.faucet(FAUCET_MAX + 1)
    assert token.totalSupply() == INITIAL_SUPPLY


def _pick(how: str, raw: int, limit: int) -> int:
    """An amount relative to ``limit`` (a balance or allowance), so that successes, exact
    limits and off-by-one failures all come up often, not only random huge values."""
    if how == "all":
        return limit
    if how == "part":
        # Hypothesis favours small integers, so `raw % limit` would mostly be 0.
        return limit * (1 + raw % 99) // 100
    if how == "over":
        return limit + 1
    return raw


class TokenMachine(RuleBasedStateMachine):
    """Random sequences of calls against a dict-based model of the EIP-20 rules."""

    token: VyperContract
    accounts: list[Any]

    indices = st.integers(0, 2)
    hows = st.sampled_from(["all", "part", "over", "raw"])
    raws = st.integers(0, 2 * INITIAL_SUPPLY)

    @initialize()
    def deploy(self) -> None:
        self.accounts = [boa.env.generate_address(f"holder{i}") for i in range(3)]
        self.chain_id_before = boa.env.evm.patch.chain_id
        boa.env.evm.patch.chain_id = 7357
        with boa.env.prank(self.accounts[0]):
            self.token = _deploy()
            # Everyone starts with funds, so that most transfers have something to move.
            for holder in self.accounts[1:]:
                self.token.transfer(holder, INITIAL_SUPPLY // 4)
        self.balances = {a: INITIAL_SUPPLY // 4 for a in self.accounts}
        self.balances[self.accounts[0]] = INITIAL_SUPPLY - INITIAL_SUPPLY // 4 * 2
        self.allowances = {(o, s): 0 for o in self.accounts for s in self.accounts}
        self.total = INITIAL_SUPPLY

    def teardown(self) -> None:
        if hasattr(self, "chain_id_before"):
            boa.env.evm.patch.chain_id = self.chain_id_before

    def _snapshot(self) -> tuple[list[int], list[int], int]:
        balances = [self.token.balanceOf(a) for a in self.accounts]
        allowances = [self.token.allowance(o, s) for o, s in self.allowances]
        return balances, allowances, self.token.totalSupply()

    def _expect_revert(self, reason: str, call: Callable[[], object]) -> None:
        before = self._snapshot()
        with boa.reverts(reason):
            call()
        assert self._snapshot() == before

    @rule(src=indices, dst=st.one_of(indices, st.none()), how=hows, raw=raws)
    def transfer(self, src: int, dst: int | None, how: str, raw: int) -> None:
        sender = self.accounts[src]
        to = ZERO if dst is None else self.accounts[dst]
        amount = _pick(how, raw, self.balances[sender])

        def call() -> object:
            return self.token.transfer(to, amount)

        with boa.env.prank(sender):
            if to == ZERO:
                self._expect_revert("transfer: recipient is the zero address", call)
            elif amount > self.balances[sender]:
                self._expect_revert("transfer: amount exceeds balance", call)
            else:
                assert call() is True
                self.balances[sender] -= amount
                self.balances[to] += amount

    @rule(
        src=indices,
        dst=indices,
        amount=st.one_of(st.integers(0, INITIAL_SUPPLY), st.just(MAX_UINT)),
    )
    def approve(self, src: int, dst: int, amount: int) -> None:
        owner, spender = self.accounts[src], self.accounts[dst]
        with boa.env.prank(owner):
            assert self.token.approve(spender, amount) is True
        self.allowances[(owner, spender)] = amount

    @rule(
        pair=st.integers(0, 8),
        approved_only=st.booleans(),
        dst=indices,
        how=hows,
        raw=raws,
        by_balance=st.booleans(),
    )
    def transfer_from(
        self, pair: int, approved_only: bool, dst: int, how: str, raw: int, by_balance: bool
    ) -> None:
        pairs = list(self.allowances)
        approved = [p for p in pairs if self.allowances[p]]
        # Uniformly random (owner, spender) pairs rarely have an allowance; half of the
        # time, pick among those that do, so the success path is exercised as well.
        choices = approved if approved_only and approved else pairs
        owner, spender = choices[pair % len(choices)]
        to = self.accounts[dst]
        allowed = self.allowances[(owner, spender)]
        balance = self.balances[owner]
        amount = _pick(how, raw, balance if by_balance else min(allowed, balance))

        def call() -> object:
            return self.token.transferFrom(owner, to, amount)

        with boa.env.prank(spender):
            if amount > allowed:
                self._expect_revert("transferFrom: amount exceeds allowance", call)
            elif amount > balance:
                self._expect_revert("transfer: amount exceeds balance", call)
            else:
                assert call() is True
                if allowed != MAX_UINT:
                    self.allowances[(owner, spender)] = allowed - amount
                self.balances[owner] -= amount
                self.balances[to] += amount

    @rule(caller=indices, how=hows, raw=raws)
    def faucet(self, caller: int, how: str, raw: int) -> None:
        account = self.accounts[caller]
        amount = _pick(how, raw, FAUCET_MAX)

        def call() -> object:
            return self.token.faucet(amount)

        with boa.env.prank(account):
            if amount > FAUCET_MAX:
                self._expect_revert("faucet: amount above per-call limit", call)
            else:
                call()
                self.balances[account] += amount
                self.total += amount

    @invariant()
    def balances_match_model_and_sum_to_supply(self) -> None:
        onchain = {a: self.token.balanceOf(a) for a in self.accounts}
        assert onchain == self.balances
        assert self.token.totalSupply() == self.total == sum(onchain.values())

    @invariant()
    def allowances_match_model(self) -> None:
        for (owner, spender), expected in self.allowances.items():
            assert self.token.allowance(owner, spender) == expected


TokenMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=20, deadline=None)
TestToken = TokenMachine.TestCase

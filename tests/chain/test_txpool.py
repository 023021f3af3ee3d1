"""The embedded chain's pending pool: future nonces, replacement by fee, bounds.

Behaviour as geth's txpool shows it to clients: a nonce above the next one is held (not
refused) until the gap fills, then sealed in nonce order; a pending transaction is
replaced by one with the same sender and nonce paying at least 10% more in fee cap and
tip ("replacement transaction underpriced" otherwise); past the per-sender and total
bounds on held transactions the sender gets an error, not silence.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth.abc import SignedTransactionAPI
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import Address
from eth_utils.address import to_checksum_address

from ailedger.chain.embedded._pool import PendingPool
from ailedger.chain.embedded.node import DEFAULT_CHAIN_ID, EmbeddedChain
from ailedger.errors import TransactionRejectedError

GWEI = 10**9
ETHER = 10**18


def sign(
    account: LocalAccount,
    nonce: int,
    to: str,
    *,
    value: int = 1,
    max_fee: int = 10 * GWEI,
    tip: int = GWEI,
) -> bytes:
    fields: dict[str, Any] = {
        "chainId": DEFAULT_CHAIN_ID,
        "nonce": nonce,
        "to": to,
        "value": value,
        "gas": 21_000,
        "maxFeePerGas": max_fee,
        "maxPriorityFeePerGas": tip,
    }
    return bytes(account.sign_transaction(fields).raw_transaction)


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[EmbeddedChain]:
    with EmbeddedChain.open(tmp_path / "chain") as node:
        yield node


@pytest.fixture
def alice(chain: EmbeddedChain) -> LocalAccount:
    return funded_account(chain)


BOB = to_checksum_address("0x" + "b0" * 20)
BOB_BYTES = bytes.fromhex(BOB[2:])


def mined_nonces(chain: EmbeddedChain, hashes: list[bytes]) -> list[int]:
    """Nonces of ``hashes`` in chain order (block, then index); all must be mined."""
    placed = []
    for tx_hash in hashes:
        found = chain.transaction(tx_hash)
        assert found is not None and found[1] is not None and found[2] is not None
        placed.append((found[1].block_number, found[2], found[0].nonce))
    return [nonce for *_, nonce in sorted(placed)]


# -------------------------------------------------------------------- future nonces


def test_future_nonces_wait_for_the_gap_then_seal_in_nonce_order(
    chain: EmbeddedChain, alice: LocalAccount
) -> None:
    later = [chain.send_raw_transaction(sign(alice, n, BOB)) for n in (3, 1, 2)]
    assert chain.queued_count == 3 and chain.pending_count == 0
    assert chain.wait_idle(timeout=5)  # nothing ready: idle at once, nothing sealed
    assert all(chain.receipt(h, wait_s=0) is None for h in later)
    # the pending nonce does not count held transactions (as geth's "pending" tag)
    assert chain.nonce(alice.address, pending=True) == 0
    held = chain.transaction(later[0])
    assert held is not None and held[1] is None

    first = chain.send_raw_transaction(sign(alice, 0, BOB))
    assert chain.wait_idle()
    assert chain.queued_count == 0
    assert mined_nonces(chain, [first, *later]) == [0, 1, 2, 3]
    assert chain.nonce(alice.address) == 4
    assert chain.state_at(chain.head()).get_balance(Address(BOB_BYTES)) == 4


def test_a_gap_in_the_middle_holds_only_what_is_behind_it(
    chain: EmbeddedChain, alice: LocalAccount
) -> None:
    ready = chain.send_raw_transaction(sign(alice, 0, BOB))
    held = chain.send_raw_transaction(sign(alice, 2, BOB))
    assert chain.wait_idle()
    assert chain.receipt(ready) is not None
    assert chain.receipt(held, wait_s=0) is None and chain.queued_count == 1
    filler = chain.send_raw_transaction(sign(alice, 1, BOB))
    assert chain.wait_idle()
    assert mined_nonces(chain, [ready, filler, held]) == [0, 1, 2]


def test_a_sender_past_its_bound_of_held_transactions_is_refused(
    chain: EmbeddedChain, alice: LocalAccount
) -> None:
    from ailedger.chain.embedded._pool import MAX_FUTURE_PER_SENDER

    for n in range(1, MAX_FUTURE_PER_SENDER + 1):
        chain.send_raw_transaction(sign(alice, n, BOB))
    with pytest.raises(TransactionRejectedError, match=r"^account limit exceeded: .*nonce 0"):
        chain.send_raw_transaction(sign(alice, MAX_FUTURE_PER_SENDER + 1, BOB))
    # the gap filled, everything held is sealed and the sender may go on
    chain.send_raw_transaction(sign(alice, 0, BOB))
    assert chain.wait_idle()
    assert chain.nonce(alice.address) == MAX_FUTURE_PER_SENDER + 1
    chain.send_raw_transaction(sign(alice, MAX_FUTURE_PER_SENDER + 1, BOB))
    assert chain.wait_idle()
    assert chain.nonce(alice.address) == MAX_FUTURE_PER_SENDER + 2


# ---------------------------------------------------------------------- replacement


def test_a_client_waiting_for_a_replaced_transaction_learns_why_at_once(
    chain: EmbeddedChain, alice: LocalAccount
) -> None:
    """``ailedger_droppedReason`` over JSON-RPC, and wait_for, which asks it: a receipt
    that will never come fails with the node's reason instead of running out its timeout."""
    from web3 import Web3

    from ailedger.chain.embedded.provider import EmbeddedProvider
    from ailedger.chain.embedded.rpc import RpcDispatcher
    from ailedger.chain.transactions import wait_for
    from ailedger.errors import ChainError

    dispatcher = RpcDispatcher(chain)
    web3 = Web3(EmbeddedProvider(dispatcher))
    old = chain.send_raw_transaction(sign(alice, 1, BOB, value=1))
    new = chain.send_raw_transaction(
        sign(alice, 1, BOB, value=2, max_fee=11 * GWEI, tip=1_100_000_000)
    )

    def ask(*params: Any) -> dict[str, Any]:
        request = {"jsonrpc": "2.0", "id": 1, "method": "ailedger_droppedReason"}
        return dispatcher.handle({**request, "params": list(params)})

    assert ask("0x" + old.hex())["result"] == f"replaced by 0x{new.hex()}"
    assert ask("0x" + new.hex())["result"] is None  # held, not dropped
    assert ask("0x" + "00" * 32)["result"] is None  # never seen
    assert ask("0x1234")["error"]["code"] == -32602
    with pytest.raises(ChainError, match=f"dropped by the node: replaced by 0x{new.hex()}"):
        wait_for(web3, "0x" + old.hex(), timeout=60)
    chain.send_raw_transaction(sign(alice, 0, BOB))
    assert wait_for(web3, "0x" + new.hex()).block_number > 0


def test_the_dropped_check_asks_a_node_without_it_only_once() -> None:
    from ailedger.chain.transactions import _DroppedCheck

    class Provider:
        asked = 0

        def make_request(self, method: str, params: list[Any]) -> dict[str, Any]:
            self.asked += 1
            return {"jsonrpc": "2.0", "id": 1, "error": {"code": -32601, "message": "no"}}

    class Web3Like:
        provider = Provider()

    check = _DroppedCheck(Web3Like(), "0x" + "ab" * 32)  # type: ignore[arg-type]
    check.INTERVAL_S = 0.0
    check._next = 0.0
    assert [check.reason() for _ in range(5)] == [None] * 5
    assert Web3Like.provider.asked == 1


def test_a_held_transaction_is_replaced_by_a_higher_fee(
    chain: EmbeddedChain, alice: LocalAccount
) -> None:
    old = chain.send_raw_transaction(sign(alice, 1, BOB, value=1))
    new = chain.send_raw_transaction(
        sign(alice, 1, BOB, value=2, max_fee=11 * GWEI, tip=1_100_000_000)
    )
    assert chain.queued_count == 1
    assert chain.transaction(old) is None
    assert chain.dropped_reason(old) == f"replaced by 0x{new.hex()}"
    chain.send_raw_transaction(sign(alice, 0, BOB))
    assert chain.wait_idle()
    assert chain.receipt(old) is None
    receipt = chain.receipt(new)
    assert receipt is not None and receipt["status"] == "0x1"
    # the replacement's value moved, never the replaced one's
    assert chain.state_at(chain.head()).get_balance(Address(BOB_BYTES)) == 1 + 2


def test_a_ready_transaction_is_replaced_before_it_is_sealed(tmp_path: Path) -> None:
    # not eager, a long window: the first transaction waits for company, replaceable
    with EmbeddedChain.open(tmp_path / "chain", batch_wait_s=5, eager=False) as node:
        operator = node.operator_account
        nonce = node.nonce(operator.address, pending=True)
        old = node.send_raw_transaction(sign(operator, nonce, BOB, value=5))
        new = node.send_raw_transaction(
            sign(operator, nonce, BOB, value=7, max_fee=20 * GWEI, tip=2 * GWEI)
        )
        assert node.pending_count == 1
        assert node.nonce(operator.address, pending=True) == nonce + 1
    with EmbeddedChain.open(tmp_path / "chain") as node:  # close() sealed what was ready
        assert node.receipt(old) is None
        receipt = node.receipt(new)
        assert receipt is not None and receipt["status"] == "0x1"
        assert node.state_at(node.head()).get_balance(Address(BOB_BYTES)) == 7


@pytest.mark.parametrize(
    ("max_fee", "tip"),
    [
        (10 * GWEI, GWEI),  # the same fees (other value: another hash)
        (11 * GWEI - 1, 2 * GWEI),  # fee cap 1 wei short of +10%
        (20 * GWEI, 1_100_000_000 - 1),  # tip 1 wei short of +10%
        (20 * GWEI, GWEI),  # only the fee cap raised
    ],
)
def test_an_underpriced_replacement_is_refused(
    chain: EmbeddedChain, alice: LocalAccount, max_fee: int, tip: int
) -> None:
    old = chain.send_raw_transaction(sign(alice, 1, BOB, value=1))
    with pytest.raises(TransactionRejectedError, match=r"^replacement transaction underpriced$"):
        chain.send_raw_transaction(sign(alice, 1, BOB, value=2, max_fee=max_fee, tip=tip))
    held = chain.transaction(old)
    assert held is not None and held[1] is None
    assert chain.dropped_reason(old) is None


def test_a_sealed_nonce_cannot_be_replaced(chain: EmbeddedChain, alice: LocalAccount) -> None:
    sealed = chain.send_raw_transaction(sign(alice, 0, BOB))
    assert chain.receipt(sealed) is not None
    with pytest.raises(TransactionRejectedError, match=r"^nonce too low: "):
        chain.send_raw_transaction(sign(alice, 0, BOB, max_fee=20 * GWEI, tip=2 * GWEI))


# ------------------------------------------------------------------ the pool itself


def decoded(chain: EmbeddedChain, raw: bytes) -> SignedTransactionAPI:
    return chain._tx_builder.decode(raw)


def test_the_total_bound_on_held_transactions(chain: EmbeddedChain) -> None:
    pool = PendingPool(max_future_per_sender=3, max_future_total=4)
    senders: list[LocalAccount] = [Account.create() for _ in range(2)]
    for sender in senders:
        for nonce in (1, 2):
            tx = decoded(chain, sign(sender, nonce, BOB))
            pool.add(tx, tx.sender, 0)
    third: LocalAccount = Account.create()
    tx = decoded(chain, sign(third, 5, BOB))
    with pytest.raises(TransactionRejectedError, match=r"^txpool is full: 4 transactions"):
        pool.add(tx, tx.sender, 0)
    # a replacement takes no new room
    replacement = decoded(chain, sign(senders[0], 1, BOB, max_fee=20 * GWEI, tip=2 * GWEI))
    pool.add(replacement, replacement.sender, 0)
    assert pool.future_count == 4 and pool.ready_count == 0
    # filling a gap frees room
    filler = decoded(chain, sign(senders[0], 0, BOB))
    pool.add(filler, filler.sender, 0)
    assert pool.future_count == 2 and pool.ready_count == 3
    pool.add(tx, tx.sender, 0)
    assert pool.future_count == 3


def test_a_dropped_transaction_sends_its_successors_back_to_wait(chain: EmbeddedChain) -> None:
    pool = PendingPool()
    sender: LocalAccount = Account.create()
    txs = [decoded(chain, sign(sender, n, BOB)) for n in range(3)]
    for tx in txs:
        pool.add(tx, tx.sender, 0)
    (first,) = pool.take(1)
    pool.drop(first)  # say it failed at execution: nonces 1 and 2 cannot run now
    assert pool.ready_count == 0 and pool.future_count == 2
    assert pool.next_nonce(first.sender, 0) == 0
    again = decoded(chain, sign(sender, 0, BOB, value=3))
    pool.add(again, again.sender, 0)
    assert [tx.nonce for tx in pool.take(10)] == [0, 1, 2]


def test_a_failed_blocks_leftovers_wait_for_the_dropped_nonce_and_dropping_twice_is_harmless(
    chain: EmbeddedChain,
) -> None:
    """Nonce 0 fails in a block and nonce 1 did not fit it: 1 waits for a new 0 instead of
    failing in the next block. The sealer then reports the whole batch as dropped after a
    crash; a transaction already dropped or put back is left alone, which once raised and
    ended the sealing thread."""
    pool = PendingPool()
    sender: LocalAccount = Account.create()
    txs = [decoded(chain, sign(sender, n, BOB)) for n in range(2)]
    for tx in txs:
        pool.add(tx, tx.sender, 0)
    first, second = pool.take(2)
    assert pool.drop(first)
    pool.put_back([second])
    assert pool.ready_count == 0 and pool.future_count == 1
    assert not pool.drop(first) and not pool.drop(second)  # the crash path, again
    again = decoded(chain, sign(sender, 0, BOB, value=3))
    pool.add(again, again.sender, 0)
    assert [tx.nonce for tx in pool.take(10)] == [0, 1]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_held_transactions_expire_after_the_lifetime(chain: EmbeddedChain) -> None:
    clock = Clock()
    pool = PendingPool(held_lifetime_s=60, clock=clock)
    early, late = Account.create(), Account.create()
    first = decoded(chain, sign(early, 2, BOB))
    pool.add(first, first.sender, 0)
    clock.now += 30
    second = decoded(chain, sign(late, 5, BOB))
    pool.add(second, second.sender, 0)
    assert pool.expire() == []
    clock.now += 31  # the first has waited 61 s, the second 31 s
    assert pool.expire() == [first]
    assert not pool.knows(first.hash) and pool.future_count == 1
    clock.now += 30
    assert pool.expire() == [second] and pool.future_count == 0 and pool.idle
    # the sender's slots are free again: the same nonce is held anew, and filling the
    # gap seals what was sent before without the expired one
    pool.add(first, first.sender, 0)
    filler = [decoded(chain, sign(early, n, BOB)) for n in (0, 1)]
    for tx in filler:
        pool.add(tx, tx.sender, 0)
    assert [tx.nonce for tx in pool.take(10)] == [0, 1, 2]


def test_a_replaced_or_promoted_transaction_does_not_expire(chain: EmbeddedChain) -> None:
    clock = Clock()
    pool = PendingPool(held_lifetime_s=60, clock=clock)
    sender: LocalAccount = Account.create()
    held = decoded(chain, sign(sender, 1, BOB))
    pool.add(held, held.sender, 0)
    clock.now += 50
    bumped = decoded(chain, sign(sender, 1, BOB, max_fee=20 * GWEI, tip=2 * GWEI))
    pool.add(bumped, bumped.sender, 0)  # a replacement waits anew
    clock.now += 50
    assert pool.expire() == []
    filler = decoded(chain, sign(sender, 0, BOB))
    pool.add(filler, filler.sender, 0)  # promotes nonce 1: it no longer waits
    clock.now += 1000
    assert pool.expire() == [] and pool.ready_count == 2


def test_the_node_reports_why_a_held_transaction_was_dropped(
    chain: EmbeddedChain, alice: LocalAccount
) -> None:
    clock = Clock()
    chain._txs = PendingPool(held_lifetime_s=3600, clock=clock)
    held = chain.send_raw_transaction(sign(alice, 5, BOB))
    assert chain.queued_count == 1 and chain.dropped_reason(held) is None
    clock.now += 3601
    chain.send_raw_transaction(sign(alice, 0, BOB))  # admission expires what waited too long
    assert chain.queued_count == 0
    assert chain.dropped_reason(held) == "expired: waited over 1 h for the nonces before 5"
    assert chain.transaction(held) is None
    # sent again, it is held again and no longer reported as dropped
    assert chain.send_raw_transaction(sign(alice, 5, BOB)) == held
    assert chain.queued_count == 1 and chain.dropped_reason(held) is None


def test_a_receipt_query_on_a_replaced_ready_transaction_returns_when_it_is_replaced(
    chain: EmbeddedChain, alice: LocalAccount
) -> None:
    """The sealer is held inside a block (its lock taken), so nothing seals and the
    transaction stays ready: the waiting query can only return early because the
    replacement woke it, not because a block came."""
    import threading

    answers: list[object] = []
    other = funded_account(chain)
    with chain._lock:
        chain.send_raw_transaction(sign(other, 0, BOB))  # taken by the sealer, which waits
        assert _wait_until(lambda: chain.pending_count == 0)
        old = chain.send_raw_transaction(sign(alice, 0, BOB, value=1))
        assert chain.pending_count == 1
        waiter = threading.Thread(target=lambda: answers.append(chain.receipt(old, wait_s=60)))
        waiter.start()
        chain.send_raw_transaction(sign(alice, 0, BOB, value=2, max_fee=11 * GWEI, tip=2 * GWEI))
        waiter.join(timeout=30)
        assert not waiter.is_alive() and answers == [None]
    assert chain.wait_idle()


def test_many_transactions_are_found_at_once_pending_sealed_or_not_at_all(
    chain: EmbeddedChain, alice: LocalAccount
) -> None:
    sealed = [chain.send_raw_transaction(sign(alice, n, BOB, value=n + 1)) for n in range(3)]
    assert chain.wait_idle()
    held = chain.send_raw_transaction(sign(alice, 9, BOB))
    unknown = b"\x01" * 32
    found = chain.transactions_by_hash([*sealed, held, unknown])
    assert set(found) == {*sealed, held}
    for tx_hash in sealed:
        assert found[tx_hash] == chain.transaction(tx_hash)
    tx, header, index = found[held]
    assert tx.hash == held and header is None and index is None


def funded_account(chain: EmbeddedChain) -> LocalAccount:
    account: LocalAccount = Account.create()
    operator = chain.operator_account
    nonce = chain.nonce(operator.address, pending=True)
    chain.send_raw_transaction(sign(operator, nonce, account.address, value=10 * ETHER))
    assert chain.wait_idle()
    return account


def _wait_until(predicate: Any, timeout: float = 30.0) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True

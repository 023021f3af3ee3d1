"""The embedded chain: a single sealer on py-evm whose blocks persist in the node home.

Transactions are admitted one by one (with geth's error texts) into a pending pool
(:mod:`._pool`: replacement by fee, future nonces held until the gap fills) and sealed
in batches: the sealer waits at most ``batch_wait_s`` after the first ready transaction,
or until ``max_block_txs`` are ready (with ``eager``, only until as many are ready as the
last block held: one party waiting on each receipt does not wait, twenty share a block),
then executes them all in one block and commits state, block, receipts and log index in
one SQLite transaction. A receipt is visible
only after that commit returned, so any receipt a client has seen survives ``kill -9``.

One process owns a chain directory at a time (``flock`` on ``LOCK``); a second one gets
:class:`ChainLockedError` naming the JSON-RPC URL where the owner serves it, if any.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import sqlite3
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson
from eth.abc import (
    AccountDatabaseAPI,
    BlockAPI,
    BlockHeaderAPI,
    ComputationAPI,
    ReceiptAPI,
    SignedTransactionAPI,
    StateAPI,
    VirtualMachineAPI,
)
from eth.db.account import AccountDB
from eth.db.atomic import AtomicDB
from eth.exceptions import HeaderNotFound
from eth.vm.forks.london.headers import calculate_expected_base_fee_per_gas
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import Address, BlockNumber, Hash32
from eth_utils.address import to_checksum_address
from eth_utils.exceptions import ValidationError

from ailedger._durable import PUBLIC_FILE_MODE, atomic_write_text
from ailedger.chain.embedded import _format, _trie_speedups, _txpool
from ailedger.chain.embedded._keccak import prefer_native_keccak
from ailedger.chain.embedded._kvstore import (
    StagedSqliteDB,
    WalCheckpointer,
    open_reader,
    open_sqlite,
)
from ailedger.chain.embedded._logs import LogFilter, LogIndex
from ailedger.chain.embedded._ordered_trie import ordered_trie_root
from ailedger.chain.embedded._pool import PendingPool, check_replacement
from ailedger.chain.embedded._vm import LedgerChain, create_genesis, load_chain
from ailedger.errors import ChainError, ChainLockedError, ConfigError, TransactionRejectedError

log = logging.getLogger(__name__)

prefer_native_keccak()
_trie_speedups.install()

DEFAULT_CHAIN_ID = 7357
_BUSY_QUEUE = 16  # this many queued transactions means load: seal without waiting
_DROPPED_REMEMBERED = 10_000  # reasons kept for dropped_reason, oldest forgotten first
_RECENT_RECEIPTS = 4096  # receipts answered from memory: a few blocks' worth
RECEIPT_WAIT_S = 2.0  # how long a receipt query waits for a transaction being sealed
OPERATOR_FUNDS_WEI = 10**9 * 10**18  # the dev operator's ether, handed out to new accounts
SERVING_FILE = "serving.json"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS receipts (
    tx_hash BLOB PRIMARY KEY, block_number INTEGER NOT NULL, body TEXT NOT NULL
) WITHOUT ROWID;
"""


# A transaction as found: itself, and its block's header and its index there once sealed.
Located = tuple[SignedTransactionAPI, BlockHeaderAPI | None, int | None]


@dataclass(frozen=True)
class SealedBlock:
    number: int
    tx_count: int


class EmbeddedChain:
    """A persistent single-node chain. Thread-safe; open with :meth:`open`."""

    def __init__(
        self,
        directory: Path,
        conn: sqlite3.Connection,
        lock_file: IO[str],
        chain_id: int,
        *,
        max_block_txs: int,
        batch_wait_s: float,
        eager: bool,
    ) -> None:
        self.directory = directory
        self.chain_id = chain_id
        self._conn = conn
        # Receipts are read on a connection of their own, without the chain lock: it sees
        # only committed blocks (WAL readers never see an open write transaction), so a
        # receipt query never waits for the block being sealed, and never sees its rows
        # before their commit returned.
        self._reader = open_reader(directory / "chain.sqlite")
        self._reader_lock = threading.Lock()
        self._checkpointer = WalCheckpointer(directory / "chain.sqlite")
        self._lock_file = lock_file
        self._kv = StagedSqliteDB(conn)
        self._chain: LedgerChain = load_chain(AtomicDB(self._kv), chain_id)
        self._logs = LogIndex(conn)
        # One fork for the chain's whole life, so one transaction decoder.
        self._tx_builder = self._chain.get_vm().get_transaction_builder()
        self._max_block_txs = max_block_txs
        self._batch_wait_s = batch_wait_s
        # How many transactions the last block held: the parties that just got their
        # receipts, and likely to send again. With ``eager`` the sealer waits (at most
        # ``batch_wait_s``) only until that many are ready: one party waiting on each
        # receipt is sealed at once, twenty are sealed together.
        self._last_block_txs = 1
        self._eager = eager
        # Two locks, always taken in this order: `_lock` guards the chain state (py-evm,
        # the store), `_pool` the pending transactions. Admission takes only `_pool`, so
        # clients keep submitting while a block seals.
        self._lock = threading.RLock()
        self._pool = threading.Lock()
        # Two conditions on the pool lock, so that each event wakes only its waiters:
        # `_wake` the sealer (a transaction became ready, shutdown), `_settled` the
        # parties waiting for a receipt or for idleness (a block committed, a
        # transaction dropped). With one condition every admission woke every waiting
        # receipt query, twenty of them with twenty senders, only to sleep again.
        self._wake = threading.Condition(self._pool)
        self._settled = threading.Condition(self._pool)
        self._txs = PendingPool()
        self._dropped: OrderedDict[bytes, str] = OrderedDict()
        self._recent_receipts: OrderedDict[bytes, str] = OrderedDict()  # tx hash -> JSON
        self._closing = False
        self._view: tuple[BlockHeaderAPI, AccountDatabaseAPI, int] | None = None
        # The last committed head, replaced (one reference, atomically) after each commit:
        # readers never see a head the sealer has staged but not committed.
        self._head: BlockHeaderAPI = self._chain.get_canonical_head()
        self._operator: LocalAccount = Account.from_key(self._meta("operator_key"))
        self._sealer = threading.Thread(target=self._seal_loop, name="ailedger-sealer", daemon=True)
        self._sealer.start()

    # ----------------------------------------------------------------- lifecycle

    @classmethod
    def open(
        cls,
        directory: Path,
        *,
        chain_id: int = DEFAULT_CHAIN_ID,
        max_block_txs: int = 1000,
        batch_wait_s: float = 0.02,
        eager: bool = True,
    ) -> EmbeddedChain:
        """Open (creating on first use) the chain stored in ``directory``."""
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock_file = _acquire_lock(directory)
        try:
            conn = open_sqlite(directory / "chain.sqlite")
            conn.executescript(_SCHEMA)
            stored = _read_meta(conn, "chain_id")
            if stored is None:
                _create(conn, chain_id)
            elif int(stored) != chain_id:
                raise ConfigError(
                    f"the chain in {directory} has chain id {stored}, not {chain_id}; "
                    "use its own id or another directory"
                )
        except BaseException:
            lock_file.close()
            raise
        return cls(
            directory,
            conn,
            lock_file,
            chain_id,
            max_block_txs=max_block_txs,
            batch_wait_s=batch_wait_s,
            eager=eager,
        )

    def close(self) -> None:
        """Seal what is pending, stop the sealer, release the directory."""
        with self._wake:
            self._closing = True
            self._wake.notify_all()
            self._settled.notify_all()
        self._sealer.join()
        self._checkpointer.close()
        with self._lock:
            self._conn.close()
            with self._reader_lock:
                self._reader.close()
            with contextlib.suppress(FileNotFoundError):
                (self.directory / SERVING_FILE).unlink()
            self._lock_file.close()

    def __enter__(self) -> EmbeddedChain:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def announce_url(self, url: str) -> None:
        """Tell other processes where this chain is served (read by ChainLockedError)."""
        atomic_write_text(
            self.directory / SERVING_FILE,
            json.dumps({"url": url, "pid": os.getpid()}),
            mode=PUBLIC_FILE_MODE,
        )

    # ------------------------------------------------------------------ accounts

    @property
    def operator_address(self) -> str:
        """The dev operator: prefunded, unlocked for ``eth_sendTransaction``."""
        return str(self._operator.address)

    @property
    def operator_account(self) -> LocalAccount:
        """The operator's key: it deploys the contracts on first start."""
        return self._operator

    def get_meta(self, key: str) -> str | None:
        with self._lock:
            return _read_meta(self._conn, key)

    def set_meta(self, key: str, value: str) -> None:
        with self._lock, self._conn:
            self._conn.execute("INSERT OR REPLACE INTO meta (k, v) VALUES (?, ?)", (key, value))

    def _meta(self, key: str) -> str:
        value = _read_meta(self._conn, key)
        if value is None:
            raise ChainError(f"the chain database lacks {key!r}; it was not created by ailedger")
        return value

    # -------------------------------------------------------------- transactions

    def send_raw_transaction(self, raw: bytes) -> bytes:
        """Admit a signed transaction to the next block; returns its hash."""
        tx = _txpool.decode_raw(self._tx_builder, raw)
        _txpool.check_chain_id(tx, self.chain_id)
        sender = _txpool.sender_of(tx)
        with self._wake:
            if self._closing:
                raise ChainError("the chain is shutting down; retry against the restarted node")
            self._expire_held()
            if self._txs.knows(tx.hash):
                raise TransactionRejectedError("already known")
            head, state, next_base_fee = self._admission_view()
            state_nonce = state.get_nonce(Address(sender))
            replaced = self._txs.occupant(sender, tx.nonce)
            if replaced is not None:
                check_replacement(replaced, tx)
            else:
                expected = self._txs.next_nonce(sender, state_nonce)
                # Only a nonce already used can belong to a sealed transaction: the
                # receipt table is read for those alone, to say "already known" to a
                # client resending one, not for every new transaction.
                if tx.nonce < expected and self._receipt_body(tx.hash) is not None:
                    raise TransactionRejectedError("already known")
                _txpool.check_nonce(tx, sender, expected)
            _txpool.check_against_state(tx, sender, state, head.gas_limit, next_base_fee)
            self._txs.add(tx, sender, state_nonce)
            # Sent again after it was dropped (it expired, or failed at sealing): it is
            # pending once more, and no longer reported as dropped.
            self._dropped.pop(tx.hash, None)
            if replaced is not None:
                self._remember_dropped(replaced.hash, f"replaced by 0x{tx.hash.hex()}")
                self._settled.notify_all()  # a receipt query may wait on the replaced one
            self._wake.notify()
        return tx.hash

    def _admission_view(self) -> tuple[BlockHeaderAPI, AccountDatabaseAPI, int]:
        """Head, its accounts and the next base fee; reused until the head moves. Only
        the accounts, not a whole VM state, and the base fee by EIP-1559's formula, not
        a new header: building those per block was a third of admission. Read without
        the state lock: committed trie nodes never change, so reading them while the
        sealer writes the next block is safe."""
        head = self._head
        if self._view is None or self._view[0].hash != head.hash:
            accounts = AccountDB(self._chain.chaindb.db, head.state_root)
            self._view = (head, accounts, calculate_expected_base_fee_per_gas(head))
        return self._view

    def sign_as_operator(self, fields: dict[str, Any]) -> bytes:
        """Sign ``fields`` with the dev operator key (for ``eth_sendTransaction``)."""
        with self._lock:
            fields = dict(fields)
            fields.setdefault("chainId", self.chain_id)
            fields.setdefault("nonce", self.nonce(self._operator.address, pending=True))
            if "gasPrice" not in fields:
                base = calculate_expected_base_fee_per_gas(self.head())
                fields.setdefault("maxPriorityFeePerGas", 0)
                fields.setdefault("maxFeePerGas", 2 * base)
            fields.setdefault("gas", 21_000 if not fields.get("data") else 3_000_000)
        signed = self._operator.sign_transaction(fields)
        return bytes(signed.raw_transaction)

    @property
    def pending_count(self) -> int:
        """Transactions waiting for a block (future nonces not counted)."""
        with self._pool:
            return self._txs.ready_count

    @property
    def queued_count(self) -> int:
        """Transactions held until their sender's nonce gap fills."""
        with self._pool:
            return self._txs.future_count

    def dropped_reason(self, tx_hash: bytes) -> str | None:
        """Why a transaction accepted earlier will never be sealed (dropped, replaced)."""
        with self._pool:
            return self._dropped.get(tx_hash)

    def _expire_held(self) -> None:
        """Forget transactions that waited too long for a nonce gap (pool lock held);
        checked on admission, the only time the pool grows."""
        for tx in self._txs.expire():
            hours = self._txs.held_lifetime_s / 3600
            self._remember_dropped(
                tx.hash, f"expired: waited over {hours:g} h for the nonces before {tx.nonce}"
            )

    def _remember_dropped(self, tx_hash: bytes, reason: str) -> None:
        self._dropped[tx_hash] = reason
        if len(self._dropped) > _DROPPED_REMEMBERED:
            self._dropped.popitem(last=False)

    # --------------------------------------------------------------------- reads

    @property
    def head_number(self) -> int:
        """The latest committed block's number, read without waiting for a block being
        sealed (pollers such as subscription watchers use it to decide whether to read)."""
        return self._head.block_number

    def head(self) -> BlockHeaderAPI:
        """The latest committed block's header, without waiting for one being sealed."""
        return self._head

    def header(self, number: int) -> BlockHeaderAPI | None:
        with self._lock:
            try:
                return self._chain.get_canonical_block_header_by_number(BlockNumber(number))
            except HeaderNotFound:
                return None

    def header_by_hash(self, block_hash: bytes) -> BlockHeaderAPI | None:
        with self._lock:
            try:
                header = self._chain.get_block_header_by_hash(Hash32(block_hash))
            except HeaderNotFound:
                return None
            canonical = self.header(header.block_number)
            return header if canonical is not None and canonical.hash == header.hash else None

    def transactions(self, header: BlockHeaderAPI) -> tuple[SignedTransactionAPI, ...]:
        with self._lock:
            return self._chain.get_block_by_header(header).transactions

    def transaction(self, tx_hash: bytes) -> Located | None:
        """A transaction, with its block header and index once sealed (None, None while
        it waits in the pool), or None if the node does not know it."""
        return self.transactions_by_hash([tx_hash]).get(tx_hash)

    def transactions_by_hash(self, hashes: list[bytes]) -> dict[bytes, Located]:
        """Many transactions at once (a full pending filter's poll): the pool's from
        memory, sealed ones by block, each block decoded once and the state lock taken
        per block, so a long list does not hold up the sealer. Sealed blocks never
        change (one sealer, no reorganisations), so the steps need no common lock."""
        found: dict[bytes, Located] = {}
        sealed: dict[int, list[tuple[bytes, int]]] = {}  # block number -> (hash, index)
        with self._pool:
            queued = {h: self._txs.get(h) for h in hashes}
        for tx_hash, tx in queued.items():
            if tx is not None:
                found[tx_hash] = (tx, None, None)
                continue
            with self._lock:
                try:
                    number, index = self._chain.chaindb.get_transaction_index(Hash32(tx_hash))
                except Exception:  # py-evm raises TransactionNotFound or KeyError
                    continue
            sealed.setdefault(number, []).append((tx_hash, index))
        for block_number, wanted in sealed.items():
            header = self.header(block_number)
            if header is None:
                continue
            txs = self.transactions(header)
            for tx_hash, index in wanted:
                found[tx_hash] = (txs[index], header, index)
        return found

    def receipt(self, tx_hash: bytes, wait_s: float = RECEIPT_WAIT_S) -> dict[str, Any] | None:
        """The receipt, or None. For a transaction already on its way into a block this
        waits up to ``wait_s`` for the block's commit rather than answering None at once:
        a client polling for its receipt then gets it the moment it exists, instead of one
        polling interval later (web3.py polls every 0.1 s). The last blocks' receipts are
        answered from memory, kept there once their commit returned."""
        with self._settled:
            if wait_s > 0 and self._txs.is_unsealed(tx_hash):
                self._settled.wait_for(lambda: not self._txs.is_unsealed(tx_hash), timeout=wait_s)
            body = self._recent_receipts.get(tx_hash)
        if body is None:
            body = self._receipt_body(tx_hash)
        return None if body is None else dict(orjson.loads(body))

    def _receipt_body(self, tx_hash: bytes) -> str | None:
        """A committed receipt, only once its block is the head or below: the reader sees
        a block's rows the moment its commit returns, a moment before the head moves, and
        a receipt must not name a block that ``latest`` does not reach yet."""
        with self._reader_lock:
            row = self._reader.execute(
                "SELECT body FROM receipts WHERE tx_hash = ? AND block_number <= ?",
                (tx_hash, self._head.block_number),
            ).fetchone()
        return None if row is None else str(row[0])

    def state_at(self, header: BlockHeaderAPI) -> StateAPI:
        with self._lock:
            return self._state(header)

    def _state(self, header: BlockHeaderAPI) -> StateAPI:
        return self._chain.get_vm(header).state

    def nonce(self, address: bytes | str, *, pending: bool = False) -> int:
        raw = _address_bytes(address)
        with self._lock:
            state_nonce = self._state(self._chain.get_canonical_head()).get_nonce(Address(raw))
            if pending:
                with self._pool:
                    return self._txs.next_nonce(raw, state_nonce)
            return state_nonce

    def call(self, tx: Any, header: BlockHeaderAPI) -> bytes:
        with self._lock:
            return self._chain.get_transaction_result(tx, header)

    def simulate(self, tx: Any, header: BlockHeaderAPI) -> ComputationAPI:
        """Run ``tx`` on top of ``header`` without fees and throw its effects away; the
        computation tells what it used (gas, refund) besides its output or error."""
        with self._lock, self._chain.get_vm(header).in_costless_state() as state:
            return state.costless_execute_transaction(tx)

    def unsigned_transaction(self, **fields: Any) -> Any:
        with self._lock:  # get_vm() reads the head, which the sealer moves
            return self._chain.get_vm().create_unsigned_transaction(**fields)

    def logs(self, query: LogFilter) -> list[dict[str, Any]]:
        with self._lock:
            return self._logs.query(query)

    def next_base_fee(self) -> int:
        return calculate_expected_base_fee_per_gas(self.head())

    # -------------------------------------------------------------------- sealing

    def _seal_loop(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            try:
                self._seal(batch)
            except Exception:
                # A bug must not wedge the chain: forget the half-built block, report
                # the transactions as dropped, keep sealing.
                log.exception("sealing a block failed; its transactions were dropped")
                with self._lock:
                    self._kv.discard()
                    for tx in batch:
                        self._drop(tx, "internal error while sealing")

    def _next_batch(self) -> list[SignedTransactionAPI] | None:
        with self._wake:
            pool = self._txs
            while not pool.ready_count and not self._closing:
                self._wake.wait()
            if not pool.ready_count:
                return None
            company = self._max_block_txs
            if self._eager:
                # Transactions that queued while the last block sealed were not waited
                # for; a stream faster than sealing batches itself.
                company = min(company, self._last_block_txs, _BUSY_QUEUE)
            if not self._closing and pool.ready_count < company:
                # Give the parties a few milliseconds to add theirs before sealing.
                self._wake.wait_for(
                    lambda: pool.ready_count >= company or self._closing,
                    timeout=self._batch_wait_s,
                )
            batch = pool.take(self._max_block_txs)
            self._last_block_txs = len(batch)
            return batch

    def _seal(self, batch: list[SignedTransactionAPI]) -> None:
        with self._lock:
            chain = self._chain
            parent = chain.get_canonical_head()
            header = chain.create_header_from_parent(parent)
            vm = chain.get_vm(header)
            included: list[SignedTransactionAPI] = []
            receipts: list[ReceiptAPI] = []
            leftovers: list[SignedTransactionAPI] = []
            for tx in batch:
                if leftovers or header.gas_used + tx.gas > header.gas_limit:
                    leftovers.append(tx)  # keeps per-sender nonce order for the next block
                    continue
                try:
                    receipt, _ = vm.apply_transaction(header, tx)
                except ValidationError as exc:
                    # Raised by the checks before execution, which change no state; a
                    # snapshot cannot be reverted anyway: apply_transaction locks changes.
                    self._drop(tx, str(exc))
                    continue
                header = vm.add_receipt_to_header(header, receipt)
                included.append(tx)
                receipts.append(receipt)
            with self._pool:
                self._txs.put_back(leftovers)
            if not included:
                self._kv.discard()
                return
            block = _finish_block(vm, header, included, receipts)
            chain.chaindb.persist_block(block)
            rows = _receipt_rows(block.header, included, receipts)
            bodies: dict[bytes, str] = {
                tx.hash: _json_text(row) for tx, row in zip(included, rows, strict=True)
            }
            number = block.header.block_number
            self._kv.commit(extra=lambda conn: self._index(conn, number, rows, bodies))
            self._checkpointer.committed()
            with self._wake:
                self._remember_receipts(bodies)
                self._txs.sealed(included)
                self._view = None  # the head moved
                self._head = block.header
                self._settled.notify_all()

    def _index(
        self,
        conn: sqlite3.Connection,
        number: int,
        rows: list[dict[str, Any]],
        bodies: dict[bytes, str],
    ) -> None:
        conn.executemany(
            "INSERT INTO receipts (tx_hash, block_number, body) VALUES (?, ?, ?)",
            [(tx_hash, number, body) for tx_hash, body in bodies.items()],
        )
        self._logs.insert(conn, [entry for r in rows for entry in r["logs"]])

    def _remember_receipts(self, bodies: dict[bytes, str]) -> None:
        """Keep a committed block's receipts for the queries about to come (pool lock)."""
        self._recent_receipts.update(bodies)
        while len(self._recent_receipts) > _RECENT_RECEIPTS:
            self._recent_receipts.popitem(last=False)

    def _drop(self, tx: SignedTransactionAPI, reason: str) -> None:
        """Forget a transaction that cannot be included, and the sender's later ones."""
        with self._wake:
            if not self._txs.drop(tx):
                return  # a failed block's transaction that was already dropped or put back
            self._remember_dropped(tx.hash, reason)
            self._view = None
            self._settled.notify_all()  # wake wait_idle even if no block follows
        log.warning("dropped transaction %s: %s", tx.hash.hex(), reason)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until nothing is ready or sealing (tests and shutdown); transactions
        waiting for a nonce gap to fill do not count."""
        with self._settled:
            return self._settled.wait_for(lambda: self._txs.idle, timeout=timeout)


def _finish_block(
    vm: VirtualMachineAPI,
    header: BlockHeaderAPI,
    txs: list[SignedTransactionAPI],
    receipts: list[ReceiptAPI],
) -> BlockAPI:
    """The sealed block: what py-evm's set_block_transactions, pack_block and
    finalize_block make of it, in one pass and without their four copies of the block
    and header (a tenth of sealing a one-transfer block). Shanghai pays no block reward
    and this chain has no withdrawals, so finalizing is persisting the state. A test
    holds every sealed block to py-evm's own import validation."""
    tx_root, tx_nodes = ordered_trie_root([tx.encode() for tx in txs])
    receipt_root, receipt_nodes = ordered_trie_root([r.encode() for r in receipts])
    vm.chaindb.persist_trie_data_dict({Hash32(k): v for k, v in tx_nodes.items()})
    vm.chaindb.persist_trie_data_dict({Hash32(k): v for k, v in receipt_nodes.items()})
    vm.state.persist()
    sealed = header.copy(
        transaction_root=tx_root, receipt_root=receipt_root, state_root=vm.state.state_root
    )
    return vm.get_block_class()(sealed, transactions=txs, uncles=[], withdrawals=[])


def _receipt_rows(
    header: BlockHeaderAPI,
    txs: list[SignedTransactionAPI],
    receipts: list[ReceiptAPI],
) -> list[dict[str, Any]]:
    from eth._utils.address import generate_contract_address

    rows: list[dict[str, Any]] = []
    previous_gas = 0
    log_index = 0
    for index, (tx, receipt) in enumerate(zip(txs, receipts, strict=True)):
        created = generate_contract_address(tx.sender, tx.nonce) if not tx.to else None
        logs = _format.format_logs(receipt, header, tx.hash, index, log_index)
        log_index += len(logs)
        rows.append(
            {
                "transactionHash": _format.data(tx.hash),
                "transactionIndex": _format.qty(index),
                "blockHash": _format.data(header.hash),
                "blockNumber": _format.qty(header.block_number),
                "from": to_checksum_address(tx.sender),
                "to": _format.address_or_none(tx.to),
                "contractAddress": to_checksum_address(created) if created else None,
                "cumulativeGasUsed": _format.qty(receipt.gas_used),
                "gasUsed": _format.qty(receipt.gas_used - previous_gas),
                "effectiveGasPrice": _format.qty(
                    _format.effective_gas_price(tx, _format.base_fee(header))
                ),
                "logs": logs,
                "logsBloom": _format.data(receipt.bloom.to_bytes(256, "big")),
                "status": _format.qty(1 if receipt.state_root == b"\x01" else 0),
                "type": _format.qty(tx.type_id or 0),
            }
        )
        previous_gas = receipt.gas_used
    return rows


def _json_text(value: dict[str, Any]) -> str:
    return orjson.dumps(value).decode()


def _create(conn: sqlite3.Connection, chain_id: int) -> None:
    """Write genesis and the operator key in one transaction: all or nothing."""
    operator = Account.create()
    kv = StagedSqliteDB(conn)
    create_genesis(
        AtomicDB(kv), chain_id, {bytes.fromhex(operator.address[2:]): OPERATOR_FUNDS_WEI}
    )

    def meta(c: sqlite3.Connection) -> None:
        c.executemany(
            "INSERT INTO meta (k, v) VALUES (?, ?)",
            [("chain_id", str(chain_id)), ("operator_key", operator.key.hex())],
        )

    kv.commit(extra=meta)


def _read_meta(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT v FROM meta WHERE k = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def _acquire_lock(directory: Path) -> IO[str]:
    lock_file = open(directory / "LOCK", "a+")  # noqa: SIM115 - held open for the node's life
    try:
        fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock_file.close()
        raise ChainLockedError(_locked_message(directory)) from None
    return lock_file


def _locked_message(directory: Path) -> str:
    url = serving_url(directory)
    where = (
        f"; it is served at {url}: set AILEDGER_CHAIN={url}"
        if url
        else (
            "; stop that process, or serve the chain with `ailedger chain serve` and point "
            "other commands at it with AILEDGER_CHAIN"
        )
    )
    return f"the embedded chain in {directory} is open in another process{where}"


def serving_url(directory: Path) -> str | None:
    """The JSON-RPC URL announced by the process that owns ``directory``, if any."""
    try:
        return str(json.loads((directory / SERVING_FILE).read_text())["url"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _address_bytes(address: bytes | str) -> bytes:
    if isinstance(address, bytes):
        return address
    return bytes.fromhex(address.removeprefix("0x"))

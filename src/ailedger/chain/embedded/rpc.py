"""Ethereum JSON-RPC over the embedded chain, shared by the in-process web3 provider
and the HTTP server, so both answer exactly alike.

Methods and result shapes follow the Ethereum execution-apis specification; error codes
and messages follow go-ethereum, so tools written against geth understand our refusals:
-32700 parse error, -32600 invalid request, -32601 unknown method, -32602 invalid
argument, -32000 server/transaction errors, 3 for ``execution reverted`` with data.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from eth.abc import BlockHeaderAPI
from eth.exceptions import Revert, VMError
from eth.vm.spoof import SpoofTransaction
from eth_abi.abi import decode as abi_decode
from eth_typing import Address
from eth_utils.address import to_checksum_address
from eth_utils.exceptions import ValidationError

from ailedger import __version__
from ailedger.chain.embedded import _format
from ailedger.chain.embedded import _params as param
from ailedger.chain.embedded._fees import MAX_FEE_HISTORY_BLOCKS, FeeOracle
from ailedger.chain.embedded._filters import (
    FilterNotFoundError,
    FilterRegistry,
    LogCriteria,
    TooManyFiltersError,
)
from ailedger.chain.embedded._format import base_fee, data, qty
from ailedger.chain.embedded._logs import LogFilter, TooManyLogsError
from ailedger.chain.embedded._params import (
    EXECUTION_REVERTED,
    INVALID_PARAMS,
    INVALID_REQUEST,
    LIMIT_EXCEEDED,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    RESPONSE_TOO_LARGE,
    SERVER_ERROR,
    RpcError,
)
from ailedger.chain.embedded.node import EmbeddedChain
from ailedger.errors import AiledgerError, TransactionRejectedError
from ailedger.untrusted_json import parse_untrusted

log = logging.getLogger(__name__)

MAX_BATCH = 1000  # geth's BatchRequestLimit
MAX_BATCH_RESPONSE_BYTES = 25 * 1024 * 1024  # geth's BatchResponseMaxSize
_ESTIMATE_PRECISION = 1000  # eth_estimateGas stops within 1/1000 of the least gas that works
_CALL_STIPEND = 2300
_ERROR_SELECTOR = bytes.fromhex("08c379a0")  # Error(string), Solidity/Vyper revert reasons


SessionMethods = Mapping[str, Callable[..., Any]]
"""Methods only a connection can answer (``eth_subscribe`` over a WebSocket)."""


class RpcDispatcher:
    """Turns JSON-RPC request objects into answers; never raises."""

    def __init__(self, chain: EmbeddedChain, filters: FilterRegistry | None = None) -> None:
        self.chain = chain
        self.filters = filters if filters is not None else FilterRegistry()
        self._fees = FeeOracle(chain)
        self._listeners: list[Callable[[str], None]] = []
        self._listeners_lock = threading.Lock()
        self._methods: dict[str, Callable[..., Any]] = {
            "web3_clientVersion": lambda: f"ailedger/{__version__}/py-evm",
            "net_version": lambda: str(chain.chain_id),
            "net_listening": lambda: True,
            "eth_chainId": lambda: qty(chain.chain_id),
            "eth_syncing": lambda: False,
            "eth_mining": lambda: True,
            "eth_blockNumber": lambda: qty(chain.head().block_number),
            "eth_gasPrice": self._gas_price,
            "eth_maxPriorityFeePerGas": lambda: qty(self._fees.suggested_tip(chain.head())),
            "eth_accounts": lambda: [chain.operator_address],
            "eth_getBalance": self._get_balance,
            "eth_getTransactionCount": self._get_transaction_count,
            "eth_getCode": self._get_code,
            "eth_getStorageAt": self._get_storage_at,
            "eth_sendRawTransaction": self._send_raw_transaction,
            "eth_sendTransaction": self._send_transaction,
            "eth_call": self._call,
            "eth_estimateGas": self._estimate_gas,
            "eth_feeHistory": self._fee_history,
            "eth_getTransactionReceipt": self._get_receipt,
            "eth_getTransactionByHash": self._get_transaction,
            "eth_getBlockByNumber": self._get_block_by_number,
            "eth_getBlockByHash": self._get_block_by_hash,
            "eth_getBlockTransactionCountByNumber": self._block_tx_count_by_number,
            "eth_getBlockTransactionCountByHash": self._block_tx_count_by_hash,
            "eth_getLogs": self._get_logs,
            "eth_newFilter": self._new_filter,
            "eth_newBlockFilter": self._new_block_filter,
            "eth_newPendingTransactionFilter": self._new_pending_filter,
            "eth_getFilterChanges": self._get_filter_changes,
            "eth_getFilterLogs": self._get_filter_logs,
            "eth_uninstallFilter": self._uninstall_filter,
            "eth_subscribe": _no_notifications,
            "eth_unsubscribe": _no_notifications,
            "ailedger_status": self._status,
            "ailedger_droppedReason": self._dropped_reason,
            "ailedger_deployment": lambda: chain.get_meta("deployment"),
        }

    @property
    def method_names(self) -> frozenset[str]:
        return frozenset(self._methods)

    def add_pending_listener(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(tx_hash)`` for every transaction admitted through this
        dispatcher (``newPendingTransactions`` subscriptions). It must not block."""
        with self._listeners_lock:
            self._listeners.append(listener)

    def remove_pending_listener(self, listener: Callable[[str], None]) -> None:
        with self._listeners_lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    # ------------------------------------------------------------- entry points

    def handle_bytes(self, body: bytes, session: SessionMethods | None = None) -> bytes:
        try:
            request = parse_untrusted(body)
        except ValueError:
            return _dumps(_error(None, RpcError(PARSE_ERROR, "parse error")))
        if isinstance(request, list):
            if not request:
                return _dumps(_error(None, RpcError(INVALID_REQUEST, "empty batch")))
            if len(request) > MAX_BATCH:
                err = RpcError(INVALID_REQUEST, f"batch too large (at most {MAX_BATCH} requests)")
                return _dumps(_error(None, err))
            return self._batch(request, session)
        return _dumps(self.handle(request, session))

    def _batch(self, requests: list[Any], session: SessionMethods | None) -> bytes:
        """Each entry answered in order; once the answers pass geth's 25 MiB, the rest
        are refused unexecuted, so one batch cannot make an answer of unbounded size."""
        answers: list[bytes] = []
        size = 0
        for request in requests:
            if size > MAX_BATCH_RESPONSE_BYTES:
                request_id = request.get("id") if isinstance(request, dict) else None
                err = RpcError(RESPONSE_TOO_LARGE, "response too large")
                answer = _dumps(_error(request_id if _valid_id(request_id) else None, err))
            else:
                answer = _dumps(self.handle(request, session))
            size += len(answer)
            answers.append(answer)
        return b"[" + b",".join(answers) + b"]"

    def handle(self, request: Any, session: SessionMethods | None = None) -> dict[str, Any]:
        if not isinstance(request, dict) or not isinstance(request.get("method"), str):
            return _error(None, RpcError(INVALID_REQUEST, "invalid request"))
        request_id = request.get("id")
        if not _valid_id(request_id):
            return _error(None, RpcError(INVALID_REQUEST, "invalid request id"))
        name = request["method"]
        method = (session or {}).get(name) or self._methods.get(name)
        if method is None:
            err = RpcError(
                METHOD_NOT_FOUND, f"the method {name[:100]} does not exist/is not available"
            )
            return _error(request_id, err)
        params = request.get("params")
        if params is None:
            params = []
        if not isinstance(params, list):
            return _error(request_id, RpcError(INVALID_PARAMS, "params must be an array"))
        try:
            result = method(*params)
        except RpcError as exc:
            return _error(request_id, exc)
        except TransactionRejectedError as exc:
            return _error(request_id, RpcError(SERVER_ERROR, str(exc)))
        except AiledgerError as exc:
            return _error(request_id, RpcError(SERVER_ERROR, str(exc)))
        except TypeError as exc:
            return _error(request_id, RpcError(INVALID_PARAMS, f"invalid arguments: {exc}"))
        except (ValueError, KeyError, AttributeError, OverflowError) as exc:
            return _error(request_id, RpcError(INVALID_PARAMS, f"invalid argument: {exc}"))
        except Exception:  # the node must keep serving whatever a request does
            log.exception("JSON-RPC method %s failed", name)
            return _error(request_id, RpcError(SERVER_ERROR, "internal error"))
        return {"jsonrpc": "2.0", "id": request_id, "result": result}

    # -------------------------------------------------------------- the methods

    def _header(self, block: Any) -> BlockHeaderAPI:
        if isinstance(block, dict):  # EIP-1898
            if "blockHash" in block:
                header = self.chain.header_by_hash(param.hex_bytes(block["blockHash"], 32))
            else:
                header = self.chain.header(param.block_number(block.get("blockNumber")))
        elif block in (None, "latest", "pending", "safe", "finalized"):
            return self.chain.head()
        elif block == "earliest":
            header = self.chain.header(0)
        else:
            header = self.chain.header(param.block_number(block))
        if header is None:
            raise RpcError(SERVER_ERROR, "header not found")
        return header

    def _gas_price(self) -> str:
        """geth: the suggested tip plus the next block's base fee."""
        head = self.chain.head()
        return qty(self.chain.next_base_fee() + self._fees.suggested_tip(head))

    def _get_balance(self, address: str, block: Any = "latest") -> str:
        return qty(self.chain.state_at(self._header(block)).get_balance(param.address(address)))

    def _get_transaction_count(self, address: str, block: Any = "latest") -> str:
        if block == "pending":
            return qty(self.chain.nonce(param.address(address), pending=True))
        return qty(self.chain.state_at(self._header(block)).get_nonce(param.address(address)))

    def _get_code(self, address: str, block: Any = "latest") -> str:
        return data(self.chain.state_at(self._header(block)).get_code(param.address(address)))

    def _get_storage_at(self, address: str, slot: str, block: Any = "latest") -> str:
        state = self.chain.state_at(self._header(block))
        value = state.get_storage(param.address(address), param.quantity(slot))
        return data(value.to_bytes(32, "big"))

    def _send_raw_transaction(self, raw: str) -> str:
        return self._admitted(data(self.chain.send_raw_transaction(param.hex_bytes(raw))))

    def _admitted(self, tx_hash: str) -> str:
        self.filters.add_pending(tx_hash)
        with self._listeners_lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(tx_hash)
            except Exception:  # the transaction is admitted whatever a listener does
                log.exception("a pending-transaction listener failed")
        return tx_hash

    def _send_transaction(self, tx: Any) -> str:
        """Sign with the node's account: geth's personal-account path, which ethers'
        JsonRpcSigner, web3.py's ``send_transaction`` and ``cast send --unlocked`` take."""
        tx = param.json_object(tx, "transaction")
        sender = tx.get("from")
        if not isinstance(sender, str) or sender.lower() != self.chain.operator_address.lower():
            raise RpcError(SERVER_ERROR, "unknown account")
        if tx.get("chainId") is not None and param.quantity(tx["chainId"]) != self.chain.chain_id:
            raise RpcError(
                INVALID_PARAMS,
                f"invalid argument 0: chainId does not match node's "
                f"(have={param.quantity(tx['chainId'])}, want={self.chain.chain_id})",
            )
        fields = param.signable_fields(tx)
        self._fill_fees(fields)
        if "gas" not in fields:  # geth estimates what the caller left out
            fields["gas"] = int(self._estimate_gas({**tx, "gas": None}), 16)
        raw = self.chain.sign_as_operator(fields)
        return self._admitted(data(self.chain.send_raw_transaction(raw)))

    def _fill_fees(self, fields: dict[str, Any]) -> None:
        """Fees the caller left out, as a wallet would choose them: the suggested tip,
        and a fee cap that survives the base fee doubling."""
        if "gasPrice" in fields:
            return
        tip = self._fees.suggested_tip(self.chain.head())
        if "maxFeePerGas" in fields:
            fields.setdefault("maxPriorityFeePerGas", min(tip, fields["maxFeePerGas"]))
        else:
            fields.setdefault("maxPriorityFeePerGas", tip)
            fields["maxFeePerGas"] = 2 * self.chain.next_base_fee() + fields["maxPriorityFeePerGas"]

    def _spoof(
        self, tx: dict[str, Any], header: BlockHeaderAPI, gas: int | None = None
    ) -> SpoofTransaction:
        sender = param.address(tx["from"]) if tx.get("from") else Address(b"\x00" * 20)
        if gas is None:
            gas = param.quantity(tx["gas"]) if tx.get("gas") is not None else header.gas_limit
        unsigned = self.chain.unsigned_transaction(
            nonce=self.chain.state_at(header).get_nonce(sender),
            gas_price=0,
            gas=gas,
            to=param.address(tx["to"]) if tx.get("to") else b"",
            value=param.quantity(tx.get("value") or "0x0"),
            data=param.hex_bytes(param.call_input(tx) or "0x"),
        )
        return SpoofTransaction(unsigned, from_=sender)

    def _call(self, tx: Any, block: Any = "latest") -> str:
        tx = param.json_object(tx, "transaction")
        header = self._header(block)
        try:
            return data(self.chain.call(self._spoof(tx, header), header))
        except Revert as exc:
            raise _reverted(exc) from exc
        except VMError as exc:
            raise RpcError(SERVER_ERROR, f"execution failed: {exc}") from exc
        except ValidationError as exc:
            raise self._invalid(tx, header, exc) from exc

    def _invalid(self, tx: dict[str, Any], header: BlockHeaderAPI, exc: Exception) -> RpcError:
        """py-evm's refusal before execution, in geth's words where geth has them."""
        if "enough balance" not in str(exc):
            return RpcError(SERVER_ERROR, f"invalid transaction: {exc}")
        sender = param.address(tx["from"]) if tx.get("from") else Address(b"\x00" * 20)
        balance = self.chain.state_at(header).get_balance(sender)
        value = param.quantity(tx.get("value") or "0x0")
        return RpcError(
            SERVER_ERROR,
            f"insufficient funds for gas * price + value: address "
            f"{to_checksum_address(sender)} have {balance} want {value}",
        )

    def _estimate_gas(self, tx: Any, block: Any = "latest") -> str:
        """The least gas limit with which the transaction succeeds, found as geth finds it:
        one run at the cap tells the gas used; a limit just above it is tried first, and
        a binary search covers what the 63/64 rule and refunds make it need beyond."""
        tx = param.json_object(tx, "transaction")
        header = self._header(block)
        cap = header.gas_limit
        if tx.get("gas") is not None:
            cap = min(cap, param.quantity(tx["gas"]))
        spoof = self._spoof(tx, header, gas=cap)
        if cap < spoof.intrinsic_gas:
            raise RpcError(
                SERVER_ERROR, f"intrinsic gas too low: have {cap}, want {spoof.intrinsic_gas}"
            )
        try:
            at_cap = self.chain.simulate(spoof, header)
        except ValidationError as exc:
            raise self._invalid(tx, header, exc) from exc
        if at_cap.is_error:
            if isinstance(at_cap.error, Revert):
                raise _reverted(at_cap.error)
            raise RpcError(SERVER_ERROR, f"gas required exceeds allowance ({cap})")
        used = cap - at_cap.get_gas_remaining()
        low, high = used - 1, cap  # `low` fails (or is below intrinsic gas), `high` works
        optimistic = min(cap, (used + at_cap.get_gas_refund() + _CALL_STIPEND) * 64 // 63)
        for guess in (used, optimistic):
            if guess >= high:
                continue
            if self._succeeds(spoof, header, guess):
                high = guess
                break
            low = guess
        while (high - low) * _ESTIMATE_PRECISION > high:
            middle = (low + high) // 2
            if self._succeeds(spoof, header, middle):
                high = middle
            else:
                low = middle
        return qty(high)

    def _succeeds(self, spoof: SpoofTransaction, header: BlockHeaderAPI, gas: int) -> bool:
        """Whether the call succeeds with ``gas``: the parsed call with only its gas
        changed, so no step of the search reads the request or the sender's nonce again."""
        return not self.chain.simulate(spoof.copy(gas=gas), header).is_error

    def _fee_history(self, count: Any, newest: Any, percentiles: Any = None) -> Any:
        newest_header = self._header(newest)
        wanted = param.quantity(count)
        if wanted == 0:
            return {"oldestBlock": qty(0), "baseFeePerGas": [], "gasUsedRatio": []}
        n = max(1, min(wanted, MAX_FEE_HISTORY_BLOCKS, newest_header.block_number + 1))
        first = newest_header.block_number - n + 1
        headers = [
            h for h in (self.chain.header(i) for i in range(first, first + n)) if h is not None
        ]
        after = self.chain.header(newest_header.block_number + 1)
        next_fee = base_fee(after) if after else self.chain.next_base_fee()
        history: dict[str, Any] = {
            "oldestBlock": qty(first),
            "baseFeePerGas": [qty(base_fee(h)) for h in headers] + [qty(next_fee)],
            "gasUsedRatio": [h.gas_used / h.gas_limit for h in headers],
        }
        if percentiles is not None:
            wanted_percentiles = param.percentiles(percentiles)
            history["reward"] = [
                [qty(r) for r in self._fees.rewards(h, wanted_percentiles)] for h in headers
            ]
        return history

    def _get_receipt(self, tx_hash: str) -> Any:
        return self.chain.receipt(param.hex_bytes(tx_hash, 32))

    def _dropped_reason(self, tx_hash: str) -> str | None:
        """Why the node let go of a transaction it had accepted (replaced, failed at
        sealing, expired waiting for a nonce gap), or null: still pending, sealed, or
        never seen. Receipt pollers ask it to stop waiting for a receipt that never comes."""
        return self.chain.dropped_reason(param.hex_bytes(tx_hash, 32))

    def _get_transaction(self, tx_hash: str) -> Any:
        found = self.chain.transaction(param.hex_bytes(tx_hash, 32))
        if found is None:
            return None
        tx, header, index = found
        return _format.format_transaction(tx, header, index)

    def _block(self, header: BlockHeaderAPI | None, full: bool) -> Any:
        if header is None:
            return None
        txs = self.chain.transactions(header)
        body: list[Any] = (
            [_format.format_transaction(tx, header, i) for i, tx in enumerate(txs)]
            if full
            else [data(tx.hash) for tx in txs]
        )
        return _format.format_block(header, body)

    def _get_block_by_number(self, block: Any, full: bool = False) -> Any:
        try:
            header = self._header(block)
        except RpcError:
            return None
        return self._block(header, param.flag(full))

    def _get_block_by_hash(self, block_hash: str, full: bool = False) -> Any:
        return self._block(
            self.chain.header_by_hash(param.hex_bytes(block_hash, 32)), param.flag(full)
        )

    def _block_tx_count_by_number(self, block: Any) -> Any:
        try:
            header = self._header(block)
        except RpcError:
            return None
        return qty(len(self.chain.transactions(header)))

    def _block_tx_count_by_hash(self, block_hash: str) -> Any:
        header = self.chain.header_by_hash(param.hex_bytes(block_hash, 32))
        return None if header is None else qty(len(self.chain.transactions(header)))

    def _get_logs(self, flt: Any) -> list[dict[str, Any]]:
        flt = param.json_object(flt, "filter")
        if flt.get("blockHash") is not None:
            if flt.get("fromBlock") is not None or flt.get("toBlock") is not None:
                raise RpcError(
                    INVALID_PARAMS,
                    "invalid argument 0: cannot specify both BlockHash and FromBlock/ToBlock, "
                    "choose one or the other",
                )
            header = self.chain.header_by_hash(param.hex_bytes(flt["blockHash"], 32))
            if header is None:
                raise RpcError(SERVER_ERROR, "unknown block")
            start = end = header.block_number
        else:
            start = self._header(flt.get("fromBlock") or "latest").block_number
            end = self._header(flt.get("toBlock") or "latest").block_number
        criteria = self.log_criteria(flt)
        return self._logs(LogFilter(start, end, criteria.addresses, criteria.topics))

    def _logs(self, query: LogFilter) -> list[dict[str, Any]]:
        if query.from_block > query.to_block:
            return []
        try:
            return self.chain.logs(query)
        except TooManyLogsError as exc:
            raise RpcError(LIMIT_EXCEEDED, str(exc)) from exc

    def log_criteria(self, flt: dict[str, Any]) -> LogCriteria:
        """A filter object's address and topics, and its bounds (None: follow the head)."""
        addresses = flt.get("address") or []
        if isinstance(addresses, str):
            addresses = [addresses]
        if not isinstance(addresses, list):
            raise RpcError(
                INVALID_PARAMS, "invalid argument 0: address must be a string or an array"
            )
        raw_topics = flt.get("topics") or []
        if not isinstance(raw_topics, list) or len(raw_topics) > 4:
            raise RpcError(
                INVALID_PARAMS, "invalid argument 0: topics must be an array of at most 4"
            )
        topics: list[tuple[bytes, ...] | None] = []
        for entry in raw_topics:
            if entry is None:
                topics.append(None)
            elif isinstance(entry, str):
                topics.append((param.hex_bytes(entry, 32),))
            elif isinstance(entry, list):
                topics.append(tuple(param.hex_bytes(t, 32) for t in entry if t is not None) or None)
            else:
                raise RpcError(
                    INVALID_PARAMS, "invalid argument 0: a topic must be hex, null or an array"
                )
        return LogCriteria(
            self._bound(flt.get("fromBlock")),
            self._bound(flt.get("toBlock")),
            tuple(param.address(a) for a in addresses),
            tuple(topics),
        )

    def _bound(self, block: Any) -> int | None:
        if block in (None, "latest", "pending", "safe", "finalized"):
            return None
        if block == "earliest":
            return 0
        return param.block_number(block)

    # --------------------------------------------------------------- filters

    def _new_filter(self, flt: Any) -> str:
        flt = param.json_object(flt, "filter")
        if flt.get("blockHash") is not None:
            raise RpcError(INVALID_PARAMS, "invalid argument 0: a filter cannot name a blockHash")
        return self._install("logs", self.log_criteria(flt))

    def _new_block_filter(self) -> str:
        return self._install("block")

    def _new_pending_filter(self, full: Any = None) -> str:
        full_transactions = full is not None and param.flag(full, position=0)
        return self._install("pending", full_transactions=full_transactions)

    def _install(
        self, kind: Any, criteria: LogCriteria | None = None, *, full_transactions: bool = False
    ) -> str:
        try:
            return self.filters.install(
                kind, self.chain.head_number, criteria, full_transactions=full_transactions
            )
        except TooManyFiltersError as exc:
            raise RpcError(LIMIT_EXCEEDED, str(exc)) from exc

    def _get_filter_changes(self, filter_id: Any) -> list[Any]:
        filter_id = param.filter_id(filter_id)
        try:
            if self.filters.kind(filter_id) == "pending":
                hashes, full = self.filters.take_pending(filter_id)
                return self._pending_transactions(hashes) if full else hashes
            kind, taken = self.filters.take_blocks(filter_id, self.chain.head_number)
            if taken.empty:
                return []
            if kind == "block":
                headers = (self.chain.header(n) for n in range(taken.start, taken.end + 1))
                return [data(h.hash) for h in headers if h is not None]
            criteria = self.filters.criteria(filter_id)
        except FilterNotFoundError as exc:
            raise RpcError(SERVER_ERROR, "filter not found") from exc
        return self._logs(LogFilter(taken.start, taken.end, criteria.addresses, criteria.topics))

    def _pending_transactions(self, hashes: list[str]) -> list[dict[str, Any]]:
        """Whole transactions for a full pending filter, as eth_getTransactionByHash
        shows them; one dropped or replaced since its admission is left out."""
        wanted = [bytes.fromhex(tx_hash[2:]) for tx_hash in hashes]
        found = self.chain.transactions_by_hash(wanted)
        return [_format.format_transaction(*found[h]) for h in wanted if h in found]

    def _get_filter_logs(self, filter_id: Any) -> list[dict[str, Any]]:
        try:
            criteria = self.filters.criteria(param.filter_id(filter_id))
        except FilterNotFoundError as exc:
            raise RpcError(SERVER_ERROR, "filter not found") from exc
        head = self.chain.head_number
        start = head if criteria.from_block is None else criteria.from_block
        end = head if criteria.to_block is None else min(criteria.to_block, head)
        return self._logs(LogFilter(start, end, criteria.addresses, criteria.topics))

    def _uninstall_filter(self, filter_id: Any) -> bool:
        return self.filters.uninstall(param.filter_id(filter_id))

    def _status(self) -> dict[str, Any]:
        head = self.chain.head()
        previous = self.chain.header(max(0, head.block_number - 1))
        return {
            "chainId": self.chain.chain_id,
            "head": head.block_number,
            "headHash": data(head.hash),
            "headTimestamp": head.timestamp,
            "previousTimestamp": previous.timestamp if previous else head.timestamp,
            "pending": self.chain.pending_count,
            "operator": self.chain.operator_address,
        }


def _no_notifications(*params: Any) -> Any:
    raise RpcError(METHOD_NOT_FOUND, "notifications not supported")


def _dumps(answer: Any) -> bytes:
    try:
        return orjson.dumps(answer)
    except TypeError:  # orjson stops at 64-bit integers; the standard encoder does not
        return json.dumps(answer, separators=(",", ":")).encode()


def _valid_id(value: Any) -> bool:
    """JSON-RPC 2.0: an id is a string, a number or null."""
    return value is None or (isinstance(value, str | int | float) and not isinstance(value, bool))


def _error(request_id: Any, err: RpcError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": err.as_dict()}


def _reverted(exc: Revert) -> RpcError:
    output = exc.args[0] if exc.args and isinstance(exc.args[0], bytes) else b""
    message = "execution reverted"
    if output[:4] == _ERROR_SELECTOR:
        try:
            (reason,) = abi_decode(["string"], output[4:])
            message = f"execution reverted: {reason}"
        except Exception:  # a malformed reason is still a revert
            pass
    return RpcError(EXECUTION_REVERTED, message, data(output))

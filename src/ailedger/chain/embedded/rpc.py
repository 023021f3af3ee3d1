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
from collections.abc import Callable
from typing import Any

from eth.abc import BlockHeaderAPI
from eth.exceptions import Revert, VMError
from eth.vm.spoof import SpoofTransaction
from eth_abi.abi import decode as abi_decode
from eth_typing import Address
from eth_utils.address import to_checksum_address

from ailedger import __version__
from ailedger.chain.embedded import _format
from ailedger.chain.embedded._format import base_fee, data, qty
from ailedger.chain.embedded._logs import LogFilter, TooManyLogsError
from ailedger.chain.embedded.node import EmbeddedChain
from ailedger.errors import AiledgerError, TransactionRejectedError
from ailedger.untrusted_json import parse_untrusted

log = logging.getLogger(__name__)

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
SERVER_ERROR = -32000
LIMIT_EXCEEDED = -32005
EXECUTION_REVERTED = 3
MAX_BATCH = 1000
_ERROR_SELECTOR = bytes.fromhex("08c379a0")  # Error(string), Solidity/Vyper revert reasons


class RpcError(Exception):
    def __init__(self, code: int, message: str, error_data: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = error_data

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            out["data"] = self.data
        return out


class RpcDispatcher:
    """Turns JSON-RPC request objects into answers; never raises."""

    def __init__(self, chain: EmbeddedChain) -> None:
        self.chain = chain
        self._methods: dict[str, Callable[..., Any]] = {
            "web3_clientVersion": lambda: f"ailedger/{__version__}/py-evm",
            "net_version": lambda: str(chain.chain_id),
            "net_listening": lambda: True,
            "eth_chainId": lambda: qty(chain.chain_id),
            "eth_syncing": lambda: False,
            "eth_mining": lambda: True,
            "eth_blockNumber": lambda: qty(chain.head().block_number),
            "eth_gasPrice": lambda: qty(chain.next_base_fee()),
            "eth_maxPriorityFeePerGas": lambda: qty(0),
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
            "eth_getLogs": self._get_logs,
            "ailedger_status": self._status,
            "ailedger_deployment": lambda: chain.get_meta("deployment"),
        }

    # ------------------------------------------------------------- entry points

    def handle_bytes(self, body: bytes) -> bytes:
        try:
            request = parse_untrusted(body)
        except ValueError:
            return json.dumps(_error(None, RpcError(PARSE_ERROR, "parse error"))).encode()
        if isinstance(request, list):
            if not request:
                return json.dumps(_error(None, RpcError(INVALID_REQUEST, "empty batch"))).encode()
            if len(request) > MAX_BATCH:
                err = RpcError(INVALID_REQUEST, f"batch too large (at most {MAX_BATCH} requests)")
                return json.dumps(_error(None, err)).encode()
            return json.dumps([self.handle(r) for r in request]).encode()
        return json.dumps(self.handle(request)).encode()

    def handle(self, request: Any) -> dict[str, Any]:
        if not isinstance(request, dict) or not isinstance(request.get("method"), str):
            return _error(None, RpcError(INVALID_REQUEST, "invalid request"))
        request_id = request.get("id")
        method = self._methods.get(request["method"])
        if method is None:
            err = RpcError(
                METHOD_NOT_FOUND, f"the method {request['method']} does not exist/is not available"
            )
            return _error(request_id, err)
        params = request.get("params", [])
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
        except (ValueError, KeyError) as exc:
            return _error(request_id, RpcError(INVALID_PARAMS, f"invalid argument: {exc}"))
        except Exception:  # the node must keep serving whatever a request does
            log.exception("JSON-RPC method %s failed", request["method"])
            return _error(request_id, RpcError(SERVER_ERROR, "internal error"))
        return {"jsonrpc": "2.0", "id": request_id, "result": result}

    # -------------------------------------------------------------- the methods

    def _header(self, block: Any) -> BlockHeaderAPI:
        if isinstance(block, dict):  # EIP-1898
            if "blockHash" in block:
                header = self.chain.header_by_hash(_bytes(block["blockHash"], 32))
            else:
                header = self.chain.header(_int(block["blockNumber"]))
        elif block in (None, "latest", "pending", "safe", "finalized"):
            return self.chain.head()
        elif block == "earliest":
            header = self.chain.header(0)
        else:
            header = self.chain.header(_int(block))
        if header is None:
            raise RpcError(SERVER_ERROR, "header not found")
        return header

    def _get_balance(self, address: str, block: Any = "latest") -> str:
        return qty(self.chain.state_at(self._header(block)).get_balance(_address(address)))

    def _get_transaction_count(self, address: str, block: Any = "latest") -> str:
        if block == "pending":
            return qty(self.chain.nonce(_address(address), pending=True))
        return qty(self.chain.state_at(self._header(block)).get_nonce(_address(address)))

    def _get_code(self, address: str, block: Any = "latest") -> str:
        return data(self.chain.state_at(self._header(block)).get_code(_address(address)))

    def _get_storage_at(self, address: str, slot: str, block: Any = "latest") -> str:
        state = self.chain.state_at(self._header(block))
        value = state.get_storage(_address(address), _int(slot))
        return data(value.to_bytes(32, "big"))

    def _send_raw_transaction(self, raw: str) -> str:
        return data(self.chain.send_raw_transaction(_bytes(raw)))

    def _send_transaction(self, tx: dict[str, Any]) -> str:
        sender = tx.get("from", "")
        if sender.lower() != self.chain.operator_address.lower():
            raise RpcError(SERVER_ERROR, "unknown account")
        fields: dict[str, Any] = {"to": tx.get("to"), "value": _int(tx.get("value", "0x0"))}
        if tx.get("data") or tx.get("input"):
            fields["data"] = tx.get("input") or tx.get("data")
        for key in ("gas", "gasPrice", "maxFeePerGas", "maxPriorityFeePerGas", "nonce"):
            if key in tx:
                fields[key] = _int(tx[key])
        if fields["to"] is None:
            del fields["to"]
        return data(self.chain.send_raw_transaction(self.chain.sign_as_operator(fields)))

    def _spoof(self, tx: dict[str, Any], header: BlockHeaderAPI) -> SpoofTransaction:
        sender = _address(tx["from"]) if tx.get("from") else Address(b"\x00" * 20)
        unsigned = self.chain.unsigned_transaction(
            nonce=self.chain.state_at(header).get_nonce(sender),
            gas_price=0,
            gas=_int(tx["gas"]) if tx.get("gas") else header.gas_limit,
            to=_address(tx["to"]) if tx.get("to") else b"",
            value=_int(tx.get("value", "0x0")),
            data=_bytes(tx.get("input") or tx.get("data") or "0x"),
        )
        return SpoofTransaction(unsigned, from_=sender)

    def _call(self, tx: dict[str, Any], block: Any = "latest") -> str:
        header = self._header(block)
        try:
            return data(self.chain.call(self._spoof(tx, header), header))
        except Revert as exc:
            raise _reverted(exc) from exc
        except VMError as exc:
            raise RpcError(SERVER_ERROR, f"execution failed: {exc}") from exc

    def _estimate_gas(self, tx: dict[str, Any], block: Any = "latest") -> str:
        header = self._header(block)
        try:
            return qty(self.chain.estimate_gas(self._spoof(tx, header), header))
        except Revert as exc:
            raise _reverted(exc) from exc
        except VMError as exc:
            raise RpcError(SERVER_ERROR, f"gas required exceeds allowance ({exc})") from exc

    def _fee_history(self, count: Any, newest: Any, percentiles: list[float] | None = None) -> Any:
        newest_header = self._header(newest)
        n = max(1, min(_int(count), 1024, newest_header.block_number + 1))
        first = newest_header.block_number - n + 1
        headers = [self._header(qty(i)) for i in range(first, newest_header.block_number + 1)]
        return {
            "oldestBlock": qty(first),
            "baseFeePerGas": [qty(base_fee(h)) for h in headers]
            + [qty(self.chain.next_base_fee())],
            "gasUsedRatio": [h.gas_used / h.gas_limit for h in headers],
            "reward": [[qty(0) for _ in (percentiles or [])] for _ in headers],
        }

    def _get_receipt(self, tx_hash: str) -> Any:
        return self.chain.receipt(_bytes(tx_hash, 32))

    def _get_transaction(self, tx_hash: str) -> Any:
        found = self.chain.transaction(_bytes(tx_hash, 32))
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
        return self._block(header, bool(full))

    def _get_block_by_hash(self, block_hash: str, full: bool = False) -> Any:
        return self._block(self.chain.header_by_hash(_bytes(block_hash, 32)), bool(full))

    def _get_logs(self, flt: dict[str, Any]) -> list[dict[str, Any]]:
        if not isinstance(flt, dict):
            raise RpcError(INVALID_PARAMS, "invalid argument 0: filter must be an object")
        if "blockHash" in flt:
            header = self.chain.header_by_hash(_bytes(flt["blockHash"], 32))
            if header is None:
                raise RpcError(SERVER_ERROR, "unknown block")
            start = end = header.block_number
        else:
            start = self._header(flt.get("fromBlock", "latest")).block_number
            end = self._header(flt.get("toBlock", "latest")).block_number
        addresses = flt.get("address") or []
        if isinstance(addresses, str):
            addresses = [addresses]
        topics: list[tuple[bytes, ...] | None] = []
        for entry in flt.get("topics") or []:
            if entry is None:
                topics.append(None)
            elif isinstance(entry, str):
                topics.append((_bytes(entry, 32),))
            else:
                topics.append(tuple(_bytes(t, 32) for t in entry) or None)
        query = LogFilter(start, end, tuple(_address(a) for a in addresses), tuple(topics))
        try:
            return self.chain.logs(query)
        except TooManyLogsError as exc:
            raise RpcError(LIMIT_EXCEEDED, str(exc)) from exc

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


def _int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.startswith("0x"):
        return int(value, 16)
    raise ValueError(f"expected a hex quantity like 0x1a, got {value!r}")


def _bytes(value: Any, length: int | None = None) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise ValueError(f"expected 0x-prefixed hex data, got {value!r}")
    try:
        raw = bytes.fromhex(value[2:])
    except ValueError as exc:
        raise ValueError(f"invalid hex data {value[:20]!r}") from exc
    if length is not None and len(raw) != length:
        raise ValueError(f"expected {length} bytes, got {len(raw)}")
    return raw


def _address(value: Any) -> Address:
    raw = _bytes(value, 20)
    to_checksum_address(raw)
    return Address(raw)

"""JSON-RPC parameters, read strictly: what a client sends is checked before it reaches
the chain, and every refusal is a :class:`RpcError` or a ``ValueError`` the dispatcher
answers as -32602, never an exception from deep inside py-evm."""

from __future__ import annotations

from typing import Any

from eth_typing import Address
from eth_utils.address import to_checksum_address

from ailedger.chain.embedded._format import data

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
SERVER_ERROR = -32000
LIMIT_EXCEEDED = -32005
RESPONSE_TOO_LARGE = -32003  # geth: a batch's answers past its size limit
EXECUTION_REVERTED = 3
MAX_QUANTITY = 2**256 - 1
MAX_BLOCK_NUMBER = 2**63 - 1  # what SQLite's INTEGER holds


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


def quantity(value: Any) -> int:
    """A quantity: a 0x-hex string (what clients send) or a JSON integer, 0 to 2**256-1."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value[:2] in ("0x", "0X") and 2 < len(value) <= 66:
        number = int(value[2:], 16)
    else:
        raise ValueError(f"expected a hex quantity like 0x1a, got {shown(value)}")
    if not 0 <= number <= MAX_QUANTITY:
        raise ValueError(f"quantity out of range: {shown(value)}")
    return number


def block_number(value: Any) -> int:
    number = quantity(value)
    if number > MAX_BLOCK_NUMBER:
        raise ValueError(f"block number out of range: {shown(value)}")
    return number


def shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def json_object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RpcError(INVALID_PARAMS, f"invalid argument 0: the {what} must be an object")
    return value


def flag(value: Any, position: int = 1) -> bool:
    if not isinstance(value, bool):
        raise RpcError(
            INVALID_PARAMS,
            f"invalid argument {position}: expected true or false, got {shown(value)}",
        )
    return value


def call_input(tx: dict[str, Any]) -> str | None:
    """The call data: ``input`` (the spec's name) or ``data`` (older clients'); geth
    refuses both when they differ."""
    given = [tx[k] for k in ("input", "data") if tx.get(k) is not None]
    if len(given) == 2 and given[0] != given[1]:
        raise RpcError(
            INVALID_PARAMS,
            'both "data" and "input" are set and not equal. '
            'Please use "input" to pass transaction call data',
        )
    if not given:
        return None
    hex_bytes(given[0])
    return str(given[0])


def access_list(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise ValueError("accessList must be an array")
    out = []
    for entry in value:
        entry = json_object(entry, "access list entry")
        keys = entry.get("storageKeys") or []
        if not isinstance(keys, list):
            raise ValueError("storageKeys must be an array")
        out.append(
            {
                "address": to_checksum_address(address(entry.get("address"))),
                "storageKeys": [data(hex_bytes(k, 32)) for k in keys],
            }
        )
    return out


def signable_fields(tx: dict[str, Any]) -> dict[str, Any]:
    """A JSON-RPC transaction object as eth-account signs it: addresses checksummed
    (clients send any casing), quantities as ints."""
    fields: dict[str, Any] = {"value": quantity(tx.get("value") or "0x0")}
    if tx.get("to") is not None:
        fields["to"] = to_checksum_address(address(tx["to"]))
    payload = call_input(tx)
    if payload:
        fields["data"] = payload
    for key in ("gas", "gasPrice", "maxFeePerGas", "maxPriorityFeePerGas", "nonce"):
        if tx.get(key) is not None:
            fields[key] = quantity(tx[key])
    if tx.get("accessList"):
        fields["accessList"] = access_list(tx["accessList"])
    return fields


def percentiles(value: Any) -> list[float]:
    """geth: at most 100 reward percentiles, each in [0, 100], in increasing order."""
    if not isinstance(value, list) or len(value) > 100:
        raise RpcError(INVALID_PARAMS, "invalid reward percentile")
    previous = 0.0
    for p in value:
        if isinstance(p, bool) or not isinstance(p, int | float) or not previous <= p <= 100:
            raise RpcError(INVALID_PARAMS, f"invalid reward percentile: {shown(p)}")
        previous = float(p)
    return [float(p) for p in value]


def filter_id(value: Any) -> str:
    if not isinstance(value, str) or len(value) > 66:
        raise RpcError(INVALID_PARAMS, "invalid argument 0: a filter id is a hex string")
    return value.lower()


def hex_bytes(value: Any, length: int | None = None) -> bytes:
    if not isinstance(value, str) or value[:2] not in ("0x", "0X"):
        raise ValueError(f"expected 0x-prefixed hex data, got {shown(value)}")
    try:
        raw = bytes.fromhex(value[2:])
    except ValueError as exc:
        raise ValueError(f"invalid hex data {value[:20]!r}") from exc
    if length is not None and len(raw) != length:
        raise ValueError(f"expected {length} bytes, got {len(raw)}")
    return raw


def address(value: Any) -> Address:
    raw = hex_bytes(value, 20)
    to_checksum_address(raw)
    return Address(raw)

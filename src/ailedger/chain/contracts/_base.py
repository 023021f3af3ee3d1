"""What every contract client shares: the bound contract, the sender, error translation.

Clients are written out method by method, never forwarded with ``setattr``, so callers
get real signatures, types and docstrings. Writes need a local account; reads do not.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ailedger.chain.transactions import TxResult, send, submit
from ailedger.errors import AiledgerError, ChainError, ContractError

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount
    from web3 import Web3
    from web3.contract import Contract


class ContractClient:
    """Shared plumbing: the bound contract, the sender, and error translation."""

    contract_name = ""

    def __init__(
        self, web3: Web3, address: str, abi: list[dict[str, Any]], account: LocalAccount | None
    ) -> None:
        self.web3 = web3
        self.address = web3.to_checksum_address(address)
        self._contract: Contract = web3.eth.contract(address=self.address, abi=abi)
        self._account = account

    def _read(self, function: str, *args: Any) -> Any:
        from web3.exceptions import ContractLogicError

        try:
            return getattr(self._contract.functions, function)(*args).call()
        except ContractLogicError as exc:
            raise ContractError(f"{self.contract_name}.{function} failed: {exc}") from exc
        except AiledgerError:
            raise
        except Exception as exc:
            raise ChainError(f"reading {self.contract_name}.{function} failed: {exc}") from exc

    def _write(self, function: str, *args: Any, gas: int | None = None) -> TxResult:
        """Send a call of ``function`` and wait until it is mined; ``gas`` skips the
        estimate (see :func:`~ailedger.chain.transactions.send`)."""
        account, tx = self._transaction(function, args, gas)
        return send(self.web3, account, tx)

    def _submit(self, function: str, *args: Any) -> str:
        """Send a call of ``function`` without waiting; returns the tx hash."""
        account, tx = self._transaction(function, args, None)
        return submit(self.web3, account, tx)

    def _account_logs(
        self, names: Sequence[str], account: str, from_block: int
    ) -> list[tuple[str, dict[str, Any], int]]:
        """(event name, args, block) of the events named ``names`` whose second indexed
        field is ``account``, in chain order. The node filters by topic, so the cost grows
        with this account's events, not the contract's."""
        from eth_utils.abi import event_abi_to_log_topic

        abis: dict[str, Any] = {
            str(e.get("name")): e for e in self._contract.abi if e.get("type") == "event"
        }
        topics = {"0x" + bytes(event_abi_to_log_topic(abis[n])).hex(): n for n in names}
        padded = "0x" + bytes.fromhex(account[2:].lower()).rjust(32, b"\0").hex()
        try:
            logs = self.web3.eth.get_logs(
                {
                    "address": self.address,
                    "fromBlock": from_block,
                    "toBlock": "latest",
                    "topics": [list(topics), None, padded],
                }
            )
        except Exception as exc:
            raise ChainError(f"reading {self.contract_name} events failed: {exc}") from exc
        found = []
        for log in logs:
            name = topics["0x" + bytes(log["topics"][0]).hex()]
            decoded = getattr(self._contract.events, name)().process_log(log)
            found.append((name, dict(decoded["args"]), int(log["blockNumber"])))
        return found

    def _transaction(
        self, function: str, args: tuple[Any, ...], gas: int | None
    ) -> tuple[LocalAccount, dict[str, Any]]:
        if self._account is None:
            raise ContractError(
                f"{self.contract_name}.{function} sends a transaction and needs an unlocked account"
            )
        tx: dict[str, Any] = {
            "to": self.address,
            "data": self._contract.encode_abi(function, args),
            "value": 0,
        }
        if gas is not None:
            tx["gas"] = gas
        return self._account, tx


def named_struct(raw: Any, struct: type) -> dict[str, Any]:
    """web3 returns structs as tuples (or dicts on some versions): name their fields, which
    ``struct`` (a TypedDict) declares in the contract's order."""
    if isinstance(raw, dict):
        return dict(raw)
    return dict(zip(struct.__annotations__, raw, strict=True))

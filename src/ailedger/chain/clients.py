"""Typed clients for ailedger's contracts: one class per contract, one method per call.

Methods are written out, never forwarded with ``setattr``, so callers get real
signatures, types and docstrings. Writes need a local account; reads do not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ailedger.chain.transactions import TxResult, send
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

    def _write(self, function: str, *args: Any, wait: bool = True, gas: int | None = None) -> Any:
        """Send a call of ``function``; ``gas`` skips the estimate (see ``send``)."""
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
        return send(self.web3, self._account, tx, wait=wait)


class TokenClient(ContractClient):
    """The AIL payment token (ERC-20, 18 decimals)."""

    contract_name = "Token"

    def name(self) -> str:
        return str(self._read("name"))

    def symbol(self) -> str:
        return str(self._read("symbol"))

    def decimals(self) -> int:
        return int(self._read("decimals"))

    def total_supply(self) -> int:
        return int(self._read("totalSupply"))

    def balance_of(self, owner: str) -> int:
        return int(self._read("balanceOf", self.web3.to_checksum_address(owner)))

    def allowance(self, owner: str, spender: str) -> int:
        return int(
            self._read(
                "allowance",
                self.web3.to_checksum_address(owner),
                self.web3.to_checksum_address(spender),
            )
        )

    def transfer(self, to: str, amount: int) -> TxResult:
        return self._write("transfer", self.web3.to_checksum_address(to), amount)  # type: ignore[no-any-return]

    def approve(self, spender: str, amount: int, *, wait: bool = True) -> TxResult | str:
        """Allow ``spender`` to take ``amount``; without ``wait``, returns the tx hash at once
        (the next transaction from this account is ordered after it by its nonce)."""
        return self._write(  # type: ignore[no-any-return]
            "approve", self.web3.to_checksum_address(spender), amount, wait=wait
        )

    def transfer_from(self, owner: str, to: str, amount: int) -> TxResult:
        return self._write(  # type: ignore[no-any-return]
            "transferFrom",
            self.web3.to_checksum_address(owner),
            self.web3.to_checksum_address(to),
            amount,
        )

    def faucet(self, amount: int) -> TxResult:
        """Mint ``amount`` to the sender; only development chains allow it."""
        return self._write("faucet", amount)  # type: ignore[no-any-return]


class KeyRegistryClient(ContractClient):
    """Accounts' X25519 encryption public keys, for wrapping data keys to them."""

    contract_name = "KeyRegistry"

    def register(self, public_key: bytes) -> TxResult:
        if len(public_key) != 32:
            raise ContractError(f"an X25519 public key has 32 bytes, not {len(public_key)}")
        return self._write("register", public_key)  # type: ignore[no-any-return]

    def key_of(self, account: str) -> bytes | None:
        """The registered key, or None if the account never registered one."""
        key = bytes(self._read("keys", self.web3.to_checksum_address(account)))
        return None if key == bytes(32) else key

    def version_of(self, account: str) -> int:
        return int(self._read("versions", self.web3.to_checksum_address(account)))


class NodeRegistryClient(ContractClient):
    """Where each party's node (its data gateway) can be reached."""

    contract_name = "NodeRegistry"

    def register(self, url: str) -> TxResult:
        return self._write("register_node", url)  # type: ignore[no-any-return]

    def url_of(self, account: str) -> str | None:
        url = str(self._read("urls", self.web3.to_checksum_address(account)))
        return url or None


class AuditAnchorClient(ContractClient):
    """On-chain anchors of each node's audit log: (size, root), only ever moving forward."""

    contract_name = "AuditAnchor"

    def anchor(self, size: int, root: bytes) -> TxResult:
        return self._write("anchor", size, root)  # type: ignore[no-any-return]

    def latest(self, node: str) -> tuple[int, bytes] | None:
        raw = self._read("latest", self.web3.to_checksum_address(node))
        size, root = (raw["size"], raw["root"]) if isinstance(raw, dict) else (raw[0], raw[1])
        return None if int(size) == 0 else (int(size), bytes(root))

    def history(self, node: str, from_block: int = 0) -> list[tuple[int, bytes]]:
        """Every (size, root) the node anchored, oldest first, from the Anchored events."""
        logs = self._contract.events.Anchored().get_logs(
            from_block=from_block, argument_filters={"node": self.web3.to_checksum_address(node)}
        )
        return [(int(e["args"]["size"]), bytes(e["args"]["root"])) for e in logs]

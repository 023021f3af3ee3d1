"""Typed client for the KeyRegistry contract: accounts' X25519 encryption keys."""

from __future__ import annotations

from ailedger.chain.contracts._base import ContractClient
from ailedger.chain.transactions import TxResult
from ailedger.errors import ContractError


class KeyRegistryClient(ContractClient):
    """Accounts' X25519 encryption public keys, for wrapping data keys to them."""

    contract_name = "KeyRegistry"

    def register(self, public_key: bytes) -> TxResult:
        if len(public_key) != 32:
            raise ContractError(f"an X25519 public key has 32 bytes, not {len(public_key)}")
        return self._write("register", public_key)

    def key_of(self, account: str) -> bytes | None:
        """The registered key, or None if the account never registered one."""
        key = bytes(self._read("keys", self.web3.to_checksum_address(account)))
        return None if key == bytes(32) else key

    def version_of(self, account: str) -> int:
        return int(self._read("versions", self.web3.to_checksum_address(account)))

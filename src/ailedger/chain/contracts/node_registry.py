"""Typed client for the NodeRegistry contract: where each party's node is reached."""

from __future__ import annotations

from ailedger.chain.contracts._base import ContractClient
from ailedger.chain.transactions import TxResult


class NodeRegistryClient(ContractClient):
    """Where each party's node (its data gateway) can be reached."""

    contract_name = "NodeRegistry"

    def register(self, url: str) -> TxResult:
        return self._write("register_node", url)

    def url_of(self, account: str) -> str | None:
        url = str(self._read("urls", self.web3.to_checksum_address(account)))
        return url or None

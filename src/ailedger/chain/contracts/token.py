"""Typed client for the Token contract: the AIL payment token."""

from __future__ import annotations

from ailedger.chain.contracts._base import ContractClient
from ailedger.chain.transactions import TxResult


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
        return self._write("transfer", self.web3.to_checksum_address(to), amount)

    def approve(self, spender: str, amount: int) -> TxResult:
        """Allow ``spender`` to take ``amount``."""
        return self._write("approve", self.web3.to_checksum_address(spender), amount)

    def submit_approval(self, spender: str, amount: int) -> str:
        """Like :meth:`approve` but returns the tx hash at once, unmined: the next
        transaction from this account is ordered after it by its nonce."""
        return self._submit("approve", self.web3.to_checksum_address(spender), amount)

    def transfer_from(self, owner: str, to: str, amount: int) -> TxResult:
        return self._write(
            "transferFrom",
            self.web3.to_checksum_address(owner),
            self.web3.to_checksum_address(to),
            amount,
        )

    def faucet(self, amount: int) -> TxResult:
        """Mint ``amount`` to the sender; only development chains allow it."""
        return self._write("faucet", amount)

"""Typed client for the ComputeProviders contract: the compute market's providers, their
stakes, offers and reputation. See ``contracts/ComputeProviders.vy`` for the rules.
"""

from __future__ import annotations

from typing import NamedTuple, TypedDict

from ailedger.chain.contracts._base import ContractClient, named_struct
from ailedger.chain.transactions import TxResult


class ProviderInfo(TypedDict):
    """A provider's standing (the contract's ``Provider`` struct, in its order)."""

    registered: bool
    stake: int
    active_jobs: int
    completed: int
    failed: int
    slashed: int


class Offer(TypedDict):
    """A provider's advertised machine (the contract's ``Offer`` struct, in its order);
    ``posted`` is False if it never posted one."""

    cpu_cores: int
    ram_mb: int
    gpu_model: str
    gpu_mem_mb: int
    price_per_hour: int
    confined: bool
    posted: bool


class Slash(NamedTuple):
    """One ``ProviderSlashed`` event: reason 1 wrong result, 2 lost a dispute, 3 no result."""

    job_id: int
    amount: int
    reason: int
    stake_after: int
    block_number: int


class ComputeProvidersClient(ContractClient):
    contract_name = "ComputeProviders"

    def register_provider(self, stake: int) -> TxResult:
        """Stake ``stake`` tokens (the token allowance of this contract must cover it)."""
        return self._write("register_provider", stake)

    def add_stake(self, amount: int) -> TxResult:
        return self._write("add_stake", amount)

    def withdraw_stake(self, amount: int) -> TxResult:
        return self._write("withdraw_stake", amount)

    def post_offer(
        self,
        cpu_cores: int,
        ram_mb: int,
        gpu_model: str,
        gpu_mem_mb: int,
        price_per_hour: int,
        confined: bool,
    ) -> TxResult:
        return self._write(
            "post_offer", cpu_cores, ram_mb, gpu_model, gpu_mem_mb, price_per_hour, confined
        )

    def provider(self, account: str) -> ProviderInfo:
        named = named_struct(
            self._read("provider_info", self.web3.to_checksum_address(account)), ProviderInfo
        )
        return ProviderInfo(
            registered=bool(named["registered"]),
            stake=int(named["stake"]),
            active_jobs=int(named["active_jobs"]),
            completed=int(named["completed"]),
            failed=int(named["failed"]),
            slashed=int(named["slashed"]),
        )

    def offer(self, account: str) -> Offer:
        named = named_struct(
            self._read("offer_info", self.web3.to_checksum_address(account)), Offer
        )
        return Offer(
            cpu_cores=int(named["cpu_cores"]),
            ram_mb=int(named["ram_mb"]),
            gpu_model=str(named["gpu_model"]),
            gpu_mem_mb=int(named["gpu_mem_mb"]),
            price_per_hour=int(named["price_per_hour"]),
            confined=bool(named["confined"]),
            posted=bool(named["posted"]),
        )

    def slashes(self, account: str, from_block: int = 0) -> list[Slash]:
        """Every slash of ``account``, in chain order."""
        return [
            Slash(
                int(args["job_id"]),
                int(args["amount"]),
                int(args["reason"]),
                int(args["stake"]),
                block,
            )
            for _, args, block in self._account_logs(["ProviderSlashed"], account, from_block)
        ]

    def reputation(self, account: str) -> int:
        """completed - failed - 2 * slashed."""
        return int(self._read("reputation", self.web3.to_checksum_address(account)))

    def min_stake(self) -> int:
        return int(self._read("MIN_STAKE"))

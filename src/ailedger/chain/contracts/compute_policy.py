"""The ComputePolicy contract: the compute-to-data rules a dataset owner sets.

Jobs go to the data, never the other way: an owner lists the job bundles (by code hash)
that may run over a dataset, the providers besides themselves that may host those jobs,
and the release rules for a job's output. See ``contracts/ComputePolicy.vy``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ailedger.chain.contracts._base import ContractClient
from ailedger.chain.transactions import TxResult
from ailedger.errors import ConfigError

MIB = 1024 * 1024
# The contract's bounds (MAX_OUTPUT_BYTES, MAX_DP_EPSILON_MILLI), checked here first so a
# bad policy fails before it costs a transaction.
MAX_OUTPUT_BYTES = 1024 * MIB
MAX_DP_EPSILON = 100.0


@dataclass(frozen=True)
class OutputPolicy:
    """Release rules for the output of a job over a dataset.

    ``dp_epsilon`` is the differential-privacy epsilon (None = no noise); on chain it is
    kept in thousandths, so it must be at least 0.001 and is rounded to three decimals.
    """

    max_output_bytes: int = MIB
    aggregate_only: bool = True
    dp_epsilon: float | None = None

    def __post_init__(self) -> None:
        if not 0 < self.max_output_bytes <= MAX_OUTPUT_BYTES:
            raise ConfigError(
                f"the output size cap must be 1 .. {MAX_OUTPUT_BYTES} bytes, "
                f"not {self.max_output_bytes}"
            )
        if self.dp_epsilon is not None and not (
            math.isfinite(self.dp_epsilon) and 0.001 <= self.dp_epsilon <= MAX_DP_EPSILON
        ):
            raise ConfigError(
                f"the differential-privacy epsilon must be 0.001 .. {MAX_DP_EPSILON} "
                f"(or none for no noise), not {self.dp_epsilon}"
            )

    @property
    def dp_epsilon_milli(self) -> int:
        """The epsilon as the contract stores it: thousandths, 0 = no noise."""
        return 0 if self.dp_epsilon is None else round(self.dp_epsilon * 1000)

    @classmethod
    def from_chain(
        cls, max_output_bytes: int, aggregate_only: bool, dp_epsilon_milli: int
    ) -> OutputPolicy:
        epsilon = None if dp_epsilon_milli == 0 else dp_epsilon_milli / 1000
        return cls(max_output_bytes, aggregate_only, epsilon)


# What the contract answers for a dataset whose owner never set a policy.
DEFAULT_OUTPUT_POLICY = OutputPolicy()


class ComputePolicyClient(ContractClient):
    contract_name = "ComputePolicy"

    # --------------------------------------------------------------- owners

    def allow_algorithm(
        self, dataset_id: bytes, code_hash: bytes, allowed: bool = True
    ) -> TxResult:
        """Allow (or, with ``allowed=False``, stop allowing) a job bundle by its hash."""
        return self._write("allow_algorithm", dataset_id, code_hash, allowed)

    def allow_provider(self, dataset_id: bytes, provider: str, allowed: bool = True) -> TxResult:
        """Allow (or stop allowing) a provider other than the owner to host jobs."""
        return self._write(
            "allow_provider", dataset_id, self.web3.to_checksum_address(provider), allowed
        )

    def set_output_policy(self, dataset_id: bytes, policy: OutputPolicy) -> TxResult:
        return self._write(
            "set_output_policy",
            dataset_id,
            policy.max_output_bytes,
            policy.aggregate_only,
            policy.dp_epsilon_milli,
        )

    # ---------------------------------------------------------------- views

    def may_compute(self, dataset_id: bytes, code_hash: bytes) -> bool:
        return bool(self._read("may_compute", dataset_id, code_hash))

    def may_host(self, dataset_id: bytes, provider: str) -> bool:
        return bool(self._read("may_host", dataset_id, self.web3.to_checksum_address(provider)))

    def output_policy(self, dataset_id: bytes) -> OutputPolicy:
        """The dataset's release rules; the conservative default if none were set."""
        size, aggregate_only, epsilon_milli = self._read("output_policy", dataset_id)
        return OutputPolicy.from_chain(int(size), bool(aggregate_only), int(epsilon_milli))

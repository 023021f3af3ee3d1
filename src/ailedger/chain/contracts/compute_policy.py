"""The ComputePolicy contract: the compute-to-data rules a dataset owner sets.

Jobs go to the data, never the other way: an owner lists the job bundles (by code hash)
that may run over a dataset, the providers besides themselves that may host those jobs,
and the release rules for a job's output. See ``contracts/ComputePolicy.vy``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ailedger.chain.contracts._base import ContractClient
from ailedger.chain.transactions import TxResult
from ailedger.errors import ConfigError

MIB = 1024 * 1024
# The contract's bounds (MAX_OUTPUT_BYTES, DEFAULT_MIN_CELL_SIZE, MAX_MIN_CELL_SIZE),
# checked here first so a bad policy fails before it costs a transaction.
MAX_OUTPUT_BYTES = 1024 * MIB
DEFAULT_MIN_CELL_SIZE = 10
MAX_MIN_CELL_SIZE = 1_000_000


@dataclass(frozen=True)
class OutputPolicy:
    """Release rules for the output of a compute-to-data job over a dataset.

    ``aggregate_only`` releases only the counts and statistics the job's bundle declares;
    ``min_cell_size`` is the smallest count such a release lets out (smaller counts and
    the statistics of their cells are suppressed). No rule here makes a release
    differentially private: compute-to-data never claims that.
    """

    max_output_bytes: int = MIB
    aggregate_only: bool = True
    min_cell_size: int = DEFAULT_MIN_CELL_SIZE

    def __post_init__(self) -> None:
        if not _is_int(self.max_output_bytes) or not (
            0 < self.max_output_bytes <= MAX_OUTPUT_BYTES
        ):
            raise ConfigError(
                f"the output size cap must be 1 .. {MAX_OUTPUT_BYTES} bytes, "
                f"not {self.max_output_bytes!r}"
            )
        if not _is_int(self.min_cell_size) or not (1 <= self.min_cell_size <= MAX_MIN_CELL_SIZE):
            raise ConfigError(
                f"the minimum cell size must be a whole number of records 1 .. "
                f"{MAX_MIN_CELL_SIZE} (the default is {DEFAULT_MIN_CELL_SIZE}), "
                f"not {self.min_cell_size!r}"
            )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


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
            policy.min_cell_size,
        )

    # ---------------------------------------------------------------- views

    def may_compute(self, dataset_id: bytes, code_hash: bytes) -> bool:
        return bool(self._read("may_compute", dataset_id, code_hash))

    def may_host(self, dataset_id: bytes, provider: str) -> bool:
        return bool(self._read("may_host", dataset_id, self.web3.to_checksum_address(provider)))

    def output_policy(self, dataset_id: bytes) -> OutputPolicy:
        """The dataset's release rules; the conservative default if none were set."""
        size, aggregate_only, min_cell_size = self._read("output_policy", dataset_id)
        return OutputPolicy(int(size), bool(aggregate_only), int(min_cell_size))

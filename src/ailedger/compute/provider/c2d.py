"""Compute-to-data at the dataset owner's node: the job comes to the data.

The market contract already refused, at posting, a requester without a valid grant for
the job's purpose or a bundle whose hash is not on the dataset's allowed-algorithm list,
and at bidding, a provider that may not host the dataset. The owner's agent checks again
right before reading (a grant can be revoked and an algorithm disallowed after posting),
appends an audit entry for each dataset read *before* decrypting it (the same rule as
the gateway: no read without a durable entry), mounts the plaintext read-only in the
sandbox, and releases the output only through the strictest of the datasets' output
policies (:func:`ailedger.compute.outputs.apply_output_policy`).

Each ``compute-read`` entry names the requester's grant, and counts against the grant's
``max_reads`` with its fetches (:mod:`ailedger.sharing.reads`): the check before the run
refuses a grant with no read left, and the append itself is refused past the limit, so
a job cannot re-run forever under a limited grant.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ailedger.compute.outputs import ReleaseRules
from ailedger.errors import AiledgerError
from ailedger.sharing.owner import is_private
from ailedger.sharing.reads import COMPUTE_READ, ReadLimitReachedError

if TYPE_CHECKING:
    from ailedger.session import Session


class ComputeRefusedError(AiledgerError):
    """This node will not run the job over its data; the message says which rule failed."""


class DataInputs:
    """The datasets of one compute-to-data job, as this owner node serves them."""

    def __init__(
        self,
        session: Session,
        job_id: int,
        requester: str,
        bundle_hash: bytes,
        datasets: list[bytes],
        purpose: int,
        grant_ids: list[int],
    ) -> None:
        self.session = session
        self.job_id = job_id
        self.requester = requester
        self.bundle_hash = bundle_hash
        self.datasets = datasets
        self.purpose = purpose
        self.grant_ids = grant_ids
        self.policy = session.compute_policy
        self.market = session.data_market
        self._rules: ReleaseRules | None = None

    def check(self, reads_left: Callable[[int], int | None] | None = None) -> None:
        """Raise :class:`ComputeRefusedError` unless every rule still holds right now;
        ``reads_left(grant)`` (None: unlimited) says whether each grant has a read left."""
        me = self.session.address
        for i, dataset in enumerate(self.datasets):
            name = f"dataset 0x{dataset.hex()}"
            record = self.market.dataset(dataset)
            if record is None or record.owner.lower() != me.lower():
                raise ComputeRefusedError(f"{name} is not owned by this node")
            if is_private(self.session, dataset):  # `job submit` refuses; a raw post may not
                raise ComputeRefusedError(
                    f"{name} is private: its rows go into no job, only differentially "
                    "private answers leave it"
                )
            if not self.policy.may_compute(dataset, self.bundle_hash):
                raise ComputeRefusedError(f"{name}: the job's code is not an allowed algorithm")
            if not self.policy.may_host(dataset, me):
                raise ComputeRefusedError(f"{name}: this node may not host its jobs")
            grant = self._grant(i)
            if not self.market.check_access(grant, self.requester, dataset, self.purpose):
                raise ComputeRefusedError(
                    f"{name}: the requester's grant {grant} is no longer valid for this purpose"
                )
            if reads_left is not None and reads_left(grant) == 0:
                raise ComputeRefusedError(f"{name}: grant {grant} has no read left")

    def _grant(self, i: int) -> int:
        # Without the grant its read could not be counted, so the job is not run.
        if i >= len(self.grant_ids):
            raise ComputeRefusedError(
                f"dataset 0x{self.datasets[i].hex()}: the job's grant is unknown to this node"
            )
        return int(self.grant_ids[i])

    def prepare(self, dest: Path) -> dict[str, Path]:
        """Check, log each read durably, then decrypt each dataset under ``dest``."""
        from ailedger.sharing.owner import OwnerNode

        mounted: dict[str, Path] = {}
        with OwnerNode(self.session) as node:
            self.check(node.reads_left)
            dest.mkdir(parents=True, exist_ok=True)
            for i, dataset in enumerate(self.datasets):
                name = "0x" + dataset.hex()
                entry = {
                    "kind": COMPUTE_READ,
                    "dataset": name,
                    "grant": self._grant(i),
                    "job": self.job_id,
                    "requester": self.requester,
                    "algorithm": "0x" + self.bundle_hash.hex(),
                    "purpose": self.purpose,
                    "outcome": "served",
                    "time": int(time.time()),
                }
                try:
                    node.append_own(entry)
                except ReadLimitReachedError as exc:
                    raise ComputeRefusedError(f"{name}: {exc.reason}") from exc
                node.decrypt_own(dataset, dest / name)
                mounted[name] = dest / name
        return mounted

    def release_rules(self) -> ReleaseRules:
        """The strictest combination of the datasets' output policies (read once)."""
        if self._rules is None:
            rules = [self.policy.output_policy(d) for d in self.datasets]
            self._rules = ReleaseRules(
                max_output_bytes=min(r.max_output_bytes for r in rules),
                aggregate_only=any(r.aggregate_only for r in rules),
                min_cell_size=max(r.min_cell_size for r in rules),
            )
        return self._rules

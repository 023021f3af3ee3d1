"""An institution's side of a federated job: its data goes to its own SuperNode only,
one round at a time, while its grant holds.

The institution's home decrypts its dataset once, into a private scratch directory. The
ClientApp that Flower starts for each training message asks this desk (loopback HTTP,
:mod:`ailedger.federated.http`) for consent before it reads anything. The desk answers
from the chain at that moment:

- the job is running, and this institution is a member with this dataset;
- the requester's grant is still valid (a revocation takes effect at the next round);
- the grant has a read left: each consented round is a ``compute-read`` entry in the
  institution's audit log, counted against the grant's ``max_reads`` like any
  compute-to-data read.

Only then does it hand out the path of the decrypted table. The table never leaves the
institution's machine; only the model update its ClientApp computes does.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ailedger.errors import ConfigError
from ailedger.sharing.reads import COMPUTE_READ, ReadLimitReachedError

if TYPE_CHECKING:
    from ailedger.chain.contracts.federated_jobs import FederatedJob, Membership
    from ailedger.sharing.owner import OwnerNode


class InstitutionDesk:
    """Consent, round by round, for one institution's dataset in one federated job."""

    def __init__(self, node: OwnerNode, job_id: int) -> None:
        session = node.session
        job = session.federated_jobs.job(job_id)
        if job is None:
            raise ConfigError(f"there is no federated job {job_id} on chain")
        member = _membership(session.federated_jobs.members(job_id), session.address)
        if member is None:
            raise ConfigError(f"this home has not joined job {job_id}: `ailedger fl join` first")
        self.node, self.job_id, self.member = node, job_id, member
        self.requester, self.purpose = job.requester, job.task.purpose
        self._scratch = Path(tempfile.mkdtemp(prefix="ailedger-fl-"))
        os.chmod(self._scratch, 0o700)
        self.table = self._decrypt()
        self.rounds_served: list[int] = []
        self._lock = threading.Lock()

    def consent(self, round_no: int) -> dict[str, Any]:
        """Whether this institution trains round ``round_no`` now, and on which table."""
        with self._lock:
            refusal = self._refusal()
            if refusal is None:
                refusal = self._log_read(round_no)
            if refusal is not None:
                return {"ok": False, "reason": refusal}
            self.rounds_served.append(round_no)
            return {"ok": True, "data": str(self.table)}

    def close(self) -> None:
        """Destroy the decrypted copy."""
        shutil.rmtree(self._scratch, ignore_errors=True)

    def _refusal(self) -> str | None:
        from ailedger.chain.contracts.federated_jobs import JobState

        session = self.node.session
        job: FederatedJob | None = session.federated_jobs.job(self.job_id)
        if job is None or job.status != JobState.RUNNING:
            return f"job {self.job_id} is not running"
        granted = session.data_market.check_access(
            self.member.grant_id, self.requester, self.member.dataset_id, self.purpose
        )
        if not granted:
            return (
                f"grant {self.member.grant_id} no longer lets the requester use this dataset "
                "(revoked or expired): this institution trains no more rounds"
            )
        return None

    def _log_read(self, round_no: int) -> str | None:
        entry = {
            "kind": COMPUTE_READ,
            "dataset": "0x" + self.member.dataset_id.hex(),
            "grant": self.member.grant_id,
            "job": f"fl-{self.job_id}",
            "round": round_no,
            "requester": self.requester,
            "purpose": self.purpose,
            "outcome": "served",
            "time": int(time.time()),
        }
        try:
            self.node.append_own(entry)
        except ReadLimitReachedError as exc:
            return f"the grant has no read left ({exc.reason})"
        return None

    def _decrypt(self) -> Path:
        """The dataset's single CSV table, decrypted into the private scratch directory."""
        source = self._scratch / "data"
        self.node.decrypt_own(self.member.dataset_id, source)
        if source.is_file():
            return source
        tables = sorted(p for p in source.rglob("*.csv") if p.is_file())
        if len(tables) != 1:
            self.close()
            raise ConfigError(
                f"federated training reads one CSV table; this dataset holds {len(tables)}"
            )
        return tables[0]


def _membership(members: list[Membership], address: str) -> Membership | None:
    return next((m for m in members if m.institution.lower() == address.lower()), None)

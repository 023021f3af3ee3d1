"""What the running node does between requests: log the chain's decisions, anchor the log,
expire this home's stuck compute jobs.

Decisions about this owner's datasets (publish, grant, deny, revoke) are taken on chain;
the node appends them to its audit log from the chain's events, then anchors the log's
latest checkpoint on chain (``AuditAnchor`` only moves forward), every ``every`` seconds.
The same round expires the compute jobs this home posted that are past their deadline
with no result to come (:mod:`ailedger.compute.expiry`), so the refund does not wait for
the requester.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from ailedger.errors import AiledgerError

if TYPE_CHECKING:
    from ailedger.compute.expiry import PostedJobs
    from ailedger.sharing.owner import OwnerNode

log = logging.getLogger(__name__)


class Chores:
    """The background loop, started and stopped as a context manager (``every`` 0: never)."""

    def __init__(self, node: OwnerNode, every: float, jobs: PostedJobs | None = None) -> None:
        self._node = node
        self._jobs = jobs
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="node-chores", daemon=True)

    def run_once(self) -> None:
        self._node.log_chain_decisions()
        self._node.anchor()
        if self._jobs is not None:
            for job_id in self._jobs.run_once():
                log.info("expired job %d: its escrow went back to this home", job_id)

    def _loop(self) -> None:
        while not self._stop.wait(self._every):
            try:
                self.run_once()
            except AiledgerError as exc:  # the chain may be briefly away; try again later
                log.warning("a background chore failed: %s", exc)

    def __enter__(self) -> Chores:
        if self._every > 0:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():  # let a round in progress finish before the last anchor
            self._thread.join(timeout=30)

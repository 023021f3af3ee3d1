"""The privacy desk: a data owner's node answers differentially private questions.

A buyer holding a valid grant for a *private* dataset (one whose owner set a privacy
budget in the PrivacyLedger contract) sends a request signed for this node
(:mod:`ailedger.peer.signing`: target, method, path, body hash and time are signed) whose
body is::

    {"dataset": "0x<32 bytes>", "grant": 7, "kind": "query" | "training",
     "spec": {...}, "nonce": "0x<32 bytes>"}

The desk decides in this order, and stops at the first refusal:

1. who signed, and whether the nonce is new (a replayed request is refused: replaying
   would buy a fresh noisy answer charged to the dataset);
2. the dataset is held here and private; the grant is valid now for its own purpose;
3. the spec parses (declared columns and bounds, at most so many statistics);
4. the charges the vetted mechanism will apply are planned and the dataset's spend is
   projected: every release of every buyer so far, read back from the chain's events,
   composed with the new one by the PLD accountant. Over the cap, refused, nothing read;
5. the read is logged durably (audit entry ``private-release``), the dataset decrypted
   into a private temporary directory, the mechanism run (OpenDP for queries, the
   DP-SGD trainer for models);
6. the charges actually applied are charged on chain (compare-and-swap on the charge
   index, so two releases racing cannot both count against the same old total), and
   only after that transaction is mined does the answer leave.

A crash between 5 and 6 leaves a logged read and nothing released; a crash after 6
leaves a charge whose answer was lost: both err on the side of the people in the data.
The charges are those of the mechanism as run, never a number the buyer states.
"""

from __future__ import annotations

import csv
import re
import secrets
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ailedger.chain.contracts.privacy_ledger import ChargeKind, PrivacyBudget
from ailedger.errors import (
    BackPressureError,
    ChainError,
    ForbiddenError,
    MalformedRequestError,
    NotFoundError,
    UnprocessableError,
)
from ailedger.privacy.accountant import projected_epsilon
from ailedger.privacy.charges import Charge, encode_charges
from ailedger.privacy.errors import PrivacyError
from ailedger.privacy.report import releases_of
from ailedger.sharing.grants import purpose_in_force

if TYPE_CHECKING:
    from ailedger.sharing.owner import OwnerNode

PRIVATE_RELEASE = "private-release"
KINDS = {"query": ChargeKind.QUERY, "training": ChargeKind.TRAINING}
NONCE_LIFETIME_S = 600  # as long as a signed request could be replayed, and then some
_HEX32 = re.compile(r"0x[0-9a-fA-F]{64}")


class BudgetExhaustedError(ForbiddenError):
    """The release would take the dataset's privacy spend past its owner's cap."""


class NotPrivateError(ForbiddenError):
    """The dataset has no privacy budget: its owner releases nothing labelled private."""


@dataclass(frozen=True)
class ReleaseRequest:
    dataset_id: bytes
    grant_id: int
    kind: str
    spec: Any
    nonce: bytes


@dataclass(frozen=True)
class Plan:
    """What a release will spend, before it runs."""

    charges: list[Charge]
    spent_before: float
    spent_after: float
    budget: PrivacyBudget
    index: int

    def refusal(self) -> str:
        return spend_refusal(self.budget, self.spent_after)


SMALLER_QUESTION = "ask a smaller question (a lower epsilon or fewer statistics) or ask the owner"


def spend_refusal(budget: PrivacyBudget, projected: float, advice: str = SMALLER_QUESTION) -> str:
    return (
        f"this release would bring the dataset's privacy spend to epsilon {projected:.4f} "
        f"(delta {budget.delta:g}), over its cap of {budget.epsilon_cap:g}; "
        f"{budget.remaining:.4f} of the cap remains, so {advice}"
    )


def parse_release(body: Any) -> ReleaseRequest:
    """The request in ``body``, or :class:`MalformedRequestError` saying what is off."""
    if not isinstance(body, dict):
        raise MalformedRequestError(
            'the body must be {"dataset", "grant", "kind", "spec", "nonce"} as JSON'
        )
    unknown = set(body) - {"dataset", "grant", "kind", "spec", "nonce"}
    if unknown:
        raise MalformedRequestError(f"unknown field(s): {', '.join(sorted(unknown))[:200]}")
    dataset, nonce, grant = body.get("dataset"), body.get("nonce"), body.get("grant")
    if not isinstance(dataset, str) or not _HEX32.fullmatch(dataset):
        raise MalformedRequestError("dataset must be 0x and 64 hex digits")
    if not isinstance(nonce, str) or not _HEX32.fullmatch(nonce):
        raise MalformedRequestError("nonce must be 0x and 64 hex digits, fresh for each request")
    if isinstance(grant, bool) or not isinstance(grant, int) or not 0 <= grant < 2**256:
        raise MalformedRequestError("grant must be the id of your grant (a whole number)")
    if body.get("kind") not in KINDS:
        raise MalformedRequestError(f"kind must be one of {', '.join(KINDS)}")
    return ReleaseRequest(
        bytes.fromhex(dataset[2:]),
        grant,
        str(body["kind"]),
        body.get("spec"),
        bytes.fromhex(nonce[2:]),
    )


def new_nonce() -> str:
    return "0x" + secrets.token_hex(32)


class PrivacyDesk:
    """Answers private releases over the datasets of one owner node."""

    def __init__(self, node: OwnerNode) -> None:
        self.node = node
        self.session = node.session
        self.ledger = node.session.privacy_ledger
        self._lock = threading.Lock()  # one release charged at a time: see ``index``
        self._releases: dict[bytes, list[list[Charge]]] = {}

    # ----------------------------------------------------------------- deciding

    def answer(self, body: Any, signer: str) -> dict[str, Any]:
        """Decide and, if allowed, run one release for ``signer``; the answer carries
        the values and what they cost. Raises a ``RequestRefusedError`` subclass."""
        request = parse_release(body)
        if not self.node.store.use_nonce(request.nonce, int(time.time()) + NONCE_LIFETIME_S):
            raise ForbiddenError("replayed request: this nonce was used before; sign a new one")
        if self.node.store.get(request.dataset_id) is None:
            raise NotFoundError(f"dataset 0x{request.dataset_id.hex()} is not held by this node")
        purpose = self._check_grant(request, signer)
        work = _Work.parse(request)
        with self._lock, tempfile.TemporaryDirectory(prefix="ailedger-private-") as scratch:
            return self._release(request, signer, purpose, work, Path(scratch))

    def plan(self, dataset_id: bytes, charges: Sequence[Charge]) -> Plan:
        """Project the dataset's spend with ``charges`` added; refuses a dataset that is
        not private. Reads every earlier release back from the chain."""
        budget = self.ledger.budget(dataset_id)
        if not budget.private:
            raise NotPrivateError(
                f"dataset 0x{dataset_id.hex()} has no privacy budget: its owner releases "
                "nothing labelled private (the owner sets one with `ailedger data privacy-cap`)"
            )
        releases = self._history(dataset_id, budget.charges)
        after = projected_epsilon(releases, list(charges), budget.delta)
        return Plan(list(charges), budget.spent, max(after, budget.spent), budget, budget.charges)

    def _check_grant(self, request: ReleaseRequest, signer: str) -> int:
        return purpose_in_force(
            self.session.data_market,
            request.grant_id,
            signer,
            request.dataset_id,
            "buy or renew access first",
        )

    def _release(
        self, request: ReleaseRequest, signer: str, purpose: int, work: _Work, scratch: Path
    ) -> dict[str, Any]:
        dataset = request.dataset_id
        if work.planned is not None:  # a query's cost is known before the data is read
            plan = self.plan(dataset, work.planned)
            if plan.spent_after > plan.budget.epsilon_cap:
                raise BudgetExhaustedError(plan.refusal())
        audit_index = self._log_read(request, signer, purpose)
        source = scratch / "data"
        self.node.decrypt_own(dataset, source)
        table = _single_table(source)
        if work.planned is None:  # training: its sampling rate needs the row count
            plan = self.plan(dataset, work.plan_for(table))
            if plan.spent_after > plan.budget.epsilon_cap:
                raise BudgetExhaustedError(plan.refusal())
        outcome = work.run(table)
        # The charges applied, as the mechanism ran them: never the buyer's own figure.
        plan = self.plan(dataset, outcome.charges)
        if plan.spent_after > plan.budget.epsilon_cap:
            raise BudgetExhaustedError(plan.refusal())
        try:
            result = self.ledger.charge(
                dataset,
                signer,
                request.nonce,
                KINDS[request.kind],
                encode_charges(outcome.charges),
                plan.spent_after,
                plan.index,
            )
        except ChainError as exc:
            self._releases.pop(dataset, None)  # another release may have landed: re-read
            raise BackPressureError(
                "the release could not be charged on chain, so nothing was released; "
                f"retry in a few seconds ({exc})",
                retry_after=5,
            ) from exc
        self._releases.setdefault(dataset, []).append(list(outcome.charges))
        return {
            "dataset": "0x" + dataset.hex(),
            "kind": request.kind,
            "values": outcome.values,
            "charges": [c.to_json() for c in outcome.charges],
            "epsilon_spent_before": round(plan.spent_before, 6),
            "epsilon_spent_after": round(plan.spent_after, 6),
            "epsilon_cap": plan.budget.epsilon_cap,
            "delta": plan.budget.delta,
            "charge_index": plan.index,
            "charge_tx": result.tx_hash,
            "audit_index": audit_index,
        }

    def _log_read(self, request: ReleaseRequest, signer: str, purpose: int) -> int:
        """Durably log the read before a byte is decrypted (the gateway's rule)."""
        entry: dict[str, str | int] = {
            "kind": PRIVATE_RELEASE,
            "dataset": "0x" + request.dataset_id.hex(),
            "grant": request.grant_id,
            "requester": signer,
            "purpose": purpose,
            "release": request.kind,
            "outcome": "served",
            "time": int(time.time()),
        }
        return int(self.node.audit.append(entry))

    def _history(self, dataset_id: bytes, count: int) -> list[list[Charge]]:
        """Every release charged to the dataset so far, decoded from the chain's events
        (kept in memory; re-read whenever the chain holds more than is kept)."""
        kept = self._releases.get(dataset_id)
        if kept is None or len(kept) != count:
            kept = releases_of(self.session, dataset_id)
            self._releases[dataset_id] = kept
        return kept


@dataclass(frozen=True)
class Outcome:
    values: dict[str, Any]
    charges: list[Charge]


class _Work:
    """A parsed query or training spec, planned where its cost needs no data."""

    def __init__(self, kind: str, spec: Any, planned: list[Charge] | None) -> None:
        self.kind = kind
        self.spec = spec
        self.planned = planned

    @classmethod
    def parse(cls, request: ReleaseRequest) -> _Work:
        try:
            if request.kind == "query":
                from ailedger.privacy.queries import parse_query, plan_charges

                spec: Any = parse_query(request.spec)
                return cls("query", spec, plan_charges(spec))
            from ailedger.privacy.training import parse_training

            return cls("training", parse_training(request.spec), None)
        except PrivacyError as exc:
            raise UnprocessableError(f"the {request.kind} spec is not valid: {exc}") from exc

    def plan_for(self, table: Path) -> list[Charge]:
        """A training's charges for this table (its sampling rate is batch / rows)."""
        from ailedger.privacy.training import plan_charges

        with table.open(newline="") as handle:
            rows = max(0, sum(1 for _ in csv.reader(handle)) - 1)
        try:
            return list(plan_charges(self.spec, rows))
        except PrivacyError as exc:
            raise UnprocessableError(f"the training cannot run on this dataset: {exc}") from exc

    def run(self, table: Path) -> Outcome:
        try:
            if self.kind == "query":
                from ailedger.privacy.queries import run_query

                answered = run_query(self.spec, table)
                return Outcome(answered.values, list(answered.charges))
            from ailedger.privacy.training import train

            trained = train(self.spec, table)
            return Outcome({"model": trained.model, "rows": trained.rows}, list(trained.charges))
        except PrivacyError as exc:
            raise UnprocessableError(f"the {self.kind} could not run: {exc}") from exc


def _single_table(source: Path) -> Path:
    """The dataset's CSV file: a published file, or a directory holding exactly one."""
    if source.is_file():
        return source
    tables = sorted(p for p in source.rglob("*.csv") if p.is_file())
    if len(tables) != 1:
        raise UnprocessableError(
            "private releases run over a dataset of one CSV table; this one holds "
            f"{len(tables)} CSV files"
        )
    return tables[0]

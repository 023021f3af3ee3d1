"""The requester's side of a federated job: selects each round's institutions, aggregates
their updates, scores their contributions, and anchors every round on chain.

The Flower ServerApp carries the messages; it asks this coordinator (over loopback HTTP,
:mod:`ailedger.federated.http`) at the start of each round whom to train, and hands it the
round's updates at the end. Nothing is taken on the ServerApp's word that the chain can
say instead:

- a round selects only members of the job whose grant is valid at the round's start,
  one node per institution, and none whose SuperNode left an earlier round unanswered
  (waiting out a dead node's timeout once is enough);
- under privacy terms, a member whose dataset's budget (public on chain) this round would
  take past its cap sits the round out, or the job stops there (``on_budget``); the
  institution's own desk checks again and charges the round before its update leaves;
- an update counts only from an institution selected for that round, with the model's
  shape and finite values; a grant revoked during the round drops the institution
  before aggregation, and the contract refuses to count it anyway;
- contributions are scored on the validation set whose hash the job committed on chain;
- the round is anchored (global model hash, update commitments, scores, the dropped)
  before the next one starts. A round that aggregated no update is not anchored: nobody
  is paid for a round that did not happen.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ailedger.errors import ConfigError, ForbiddenError, MalformedRequestError
from ailedger.federated.institution import BUDGET_REFUSAL, projected_refusal
from ailedger.federated.task import Task, read_table, validation_digest

if TYPE_CHECKING:
    import numpy as np

    from ailedger.chain.contracts.federated_jobs import FederatedJob, Membership
    from ailedger.session import Session

# Scores go on chain as whole numbers: the accuracy gain a participant brought, in
# millionths (a participant that made the model 2 points better scores 20,000).
SCORE_SCALE = 1_000_000
Say = Callable[[str], None]


@dataclass(frozen=True)
class RoundOutcome:
    round: int
    aggregated: list[str]
    dropped: dict[str, str]
    scores: dict[str, int]
    accuracy: float
    model_hash: str
    tx_hash: str


@dataclass
class _Round:
    number: int
    selected: dict[int, str]  # Flower node id -> institution (lower-case address)
    refused: dict[str, str] = field(default_factory=dict)


SILENT = "no answer within"  # how the ServerApp names a node that let the round time out


class Coordinator:
    """One federated job's coordinator, run by its requester's home."""

    def __init__(self, session: Session, job_id: int, task: Task, validation: Path, say: Say):
        import numpy as np

        self.session, self.job_id, self.task, self.say = session, job_id, task, say
        job = _job_of_requester(session, job_id)
        if task.digest() != job.task.task_hash:
            raise ConfigError("this task is not the one posted for the job (its hash differs)")
        if validation_digest(validation) != job.task.validation_hash:
            raise ConfigError("this validation set is not the one committed for the job")
        self.job = job
        self.x_val, self.y_val = read_table(task, validation)
        self.weights: np.ndarray = np.zeros(len(task.features) + 1)
        self.outcomes: list[RoundOutcome] = []
        self.finished = threading.Event()
        self._round: _Round | None = None
        self._silent: dict[int, int] = {}  # node id -> the round it left unanswered
        self._rows: dict[str, int] = {}  # institution -> rows it trained on
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ rounds

    def start_round(self, body: Any) -> dict[str, Any]:
        """Whom to train in the next round, and the global weights they start from."""
        number, nodes = _round_start(body)
        with self._lock:
            expected = len(self.outcomes) + 1
            if number != expected:
                raise ForbiddenError(f"round {number} is out of order: round {expected} is next")
            members = {m.institution.lower(): m for m in self._members()}
            selected: dict[int, str] = {}
            refused: dict[str, str] = {}
            for node_id, institution in nodes:
                member = members.get(institution)
                if member is None:
                    refused[institution] = "not a member of the job"
                elif institution in selected.values():
                    refused[institution] = "one node per institution"
                elif not self._consented(member):
                    refused[institution] = "its grant is no longer valid"
                elif node_id in self._silent:
                    refused[institution] = (
                        f"its SuperNode left round {self._silent[node_id]} unanswered: "
                        "not asked again in this run"
                    )
                elif (over := self._over_budget(member)) is not None:
                    refused[institution] = over
                    if self._stops_on_budget():
                        self._round = None
                        return {
                            "continue": False,
                            "reason": f"{institution}: {over}; the "
                            'job\'s privacy terms say stop (on_budget = "stop")',
                        }
                else:
                    selected[node_id] = institution
            self._round = _Round(number, selected, refused)
            if len(selected) < self.job.task.min_participants:
                return {
                    "continue": False,
                    "reason": f"{len(selected)} consenting institution(s) connected, the job "
                    f"needs {self.job.task.min_participants}",
                }
            return {"continue": True, "selected": list(selected), "weights": self._weights()}

    def finish_round(self, body: Any) -> dict[str, Any]:
        """Aggregate the round's updates, score them, anchor the round; the new weights.
        Under secure aggregation the body carries the aggregate and the survivors instead
        (:meth:`_finish_secure`): no update exists here to score alone."""
        if self.task.secure_aggregation or (isinstance(body, dict) and "aggregate" in body):
            return self._finish_secure(body)
        with self._lock:
            number, updates, failed = _round_result(body, len(self.weights))
            current, dropped = self._close_round(number, failed)
            members = {m.institution.lower(): m for m in self._members()}
            kept: dict[str, tuple[np.ndarray, float]] = {}
            for node_id, weights, examples in updates:
                institution = current.selected.get(node_id)
                if institution is None or institution in kept:
                    continue  # not selected for this round: it counts for nothing
                if not self._consented(members[institution]):
                    dropped[institution] = "its grant was revoked during the round"
                    continue
                kept[institution] = (weights, float(examples))
                self._rows[institution] = examples
                dropped.pop(institution, None)  # its update came: it is not dropped
            for institution in current.selected.values():
                if institution not in kept and institution not in dropped:
                    dropped[institution] = "no update arrived"
            # An institution's word that its budget ran out counts only for a dataset that
            # has a budget on chain: anyone else saying so cannot stop the job.
            over = [
                i
                for i, why in dropped.items()
                if BUDGET_REFUSAL in why
                and i in members
                and self.session.privacy_ledger.is_private(members[i].dataset_id)
            ]
            if over and self._stops_on_budget():
                return {
                    "continue": False,
                    "reason": f"{', '.join(over)}: this round would pass the privacy cap and "
                    'the job\'s terms say stop (on_budget = "stop"): round not anchored',
                }
            if not kept:
                return {"continue": False, "reason": "no update arrived: round not anchored"}
            outcome = self._anchor(number, kept, dropped, set(members))
            self.outcomes.append(outcome)
            self.say(_progress(outcome, self.job.task.rounds))
            more = number < self.job.task.rounds
            return {"continue": more, "weights": self._weights()}

    def _finish_secure(self, body: Any) -> dict[str, Any]:
        """Anchor a SecAgg+ round: the weighted average of the survivors' updates (all the
        server learned), the survivor set, and each survivor's share of the round's gain
        on the validation set by its stated rows."""
        if not self.task.secure_aggregation:
            raise ForbiddenError("this job's updates are aggregated here, not sent as a sum")
        with self._lock:
            number, aggregate, survivors, failed = _secure_result(body, len(self.weights))
            current, dropped = self._close_round(number, failed)
            rows: dict[str, int] = {}
            for node_id, examples in survivors:
                institution = current.selected.get(node_id)
                if institution is None or institution in rows:
                    raise ForbiddenError(f"node {node_id} was not selected for round {number}")
                rows[institution] = examples
                dropped.pop(institution, None)
            members = {m.institution.lower(): m for m in self._members()}
            revoked = [i for i in rows if not self._consented(members[i])]
            if revoked or aggregate is None or not rows:
                why = (
                    f"{', '.join(revoked)}: grant revoked during the round, and its update "
                    "cannot be taken out of the sum"
                    if revoked
                    else "no secure aggregate"
                )
                return {"continue": False, "reason": f"{why}: round not anchored"}
            outcome = self._anchor_sum(number, aggregate, rows, dropped, set(members))
            self.outcomes.append(outcome)
            self.say(_progress(outcome, self.job.task.rounds))
            return {"continue": number < self.job.task.rounds, "weights": self._weights()}

    def _close_round(
        self, number: int, failed: list[tuple[str, str]]
    ) -> tuple[_Round, dict[str, str]]:
        """The round that ends now, and who dropped out of it so far (the refused, and the
        selected that failed); a SuperNode that let it time out is not asked again."""
        current = self._round
        if current is None or number != current.number:
            raise ForbiddenError(f"round {number} was not started")
        self._round = None
        dropped = dict(current.refused)
        node_of = {inst: node for node, inst in current.selected.items()}
        for inst, why in failed:
            if inst in node_of:
                dropped[inst] = why
                if why.startswith(SILENT):
                    self._silent[node_of[inst]] = number
        return current, dropped

    def _anchor_sum(
        self,
        number: int,
        aggregate: Any,
        rows: dict[str, int],
        dropped: dict[str, str],
        members: set[str],
    ) -> RoundOutcome:
        before = self.accuracy()
        self.weights = aggregate
        gain = max(0.0, self.accuracy() - before)
        total = sum(rows.values())
        institutions = sorted(rows)
        scaled = {i: _scaled(gain * rows[i] / total) for i in institutions}
        # Each survivor is bound to the sum it went into: there is no update of its own here.
        root = commitments_root({i: weights_digest(self.weights) for i in institutions})
        return self._anchored(number, scaled, root, dropped, members)

    def done(self, body: Any) -> dict[str, Any]:
        self.finished.set()
        return {"ok": True, "rounds_anchored": len(self.outcomes)}

    # ------------------------------------------------------------------ helpers

    def accuracy(self, weights: Any | None = None) -> float:
        from ailedger.federated.logistic import accuracy

        return float(accuracy(self.weights if weights is None else weights, self.x_val, self.y_val))

    def _anchor(
        self,
        number: int,
        kept: dict[str, tuple[Any, float]],
        dropped: dict[str, str],
        members: set[str],
    ) -> RoundOutcome:
        from ailedger.federated.aggregation import aggregate
        from ailedger.federated.contribution import contribution_scores

        institutions = sorted(kept)
        updates = [kept[i][0] for i in institutions]
        sizes = [kept[i][1] for i in institutions]
        previous = self.weights
        self.weights = aggregate(updates, sizes, self.task.rule)
        scores = contribution_scores(previous, updates, sizes, self.task.rule, self.accuracy)
        scaled = {i: _scaled(s) for i, s in zip(institutions, scores, strict=True)}
        root = commitments_root({i: weights_digest(kept[i][0]) for i in institutions})
        return self._anchored(number, scaled, root, dropped, members)

    def _anchored(
        self,
        number: int,
        scaled: dict[str, int],
        root: bytes,
        dropped: dict[str, str],
        members: set[str],
    ) -> RoundOutcome:
        """Anchor the round whose global model is now :attr:`weights`."""
        institutions = sorted(scaled)
        model_hash = weights_digest(self.weights)
        result = self.session.federated_jobs.anchor_round(
            self.job_id,
            number,
            model_hash,
            root,
            institutions,
            [scaled[i] for i in institutions],
            sorted(d for d in dropped if d in members),  # strangers are not the chain's
        )
        return RoundOutcome(
            number,
            institutions,
            dropped,
            scaled,
            self.accuracy(),
            "0x" + model_hash.hex(),
            result.tx_hash,
        )

    def _members(self) -> list[Membership]:
        return self.session.federated_jobs.members(self.job_id)

    def _consented(self, member: Membership) -> bool:
        return bool(
            self.session.data_market.check_access(
                member.grant_id, self.job.requester, member.dataset_id, self.job.task.purpose
            )
        )

    def _over_budget(self, member: Membership) -> str | None:
        """Known once the institution trained a round (its row count sets the charge); its
        own desk checks every round, the first included."""
        rows = self._rows.get(member.institution.lower())
        if self.task.privacy is None or rows is None:
            return None
        return projected_refusal(self.session, member.dataset_id, self.task, rows)

    def _stops_on_budget(self) -> bool:
        return self.task.privacy is not None and self.task.privacy.on_budget == "stop"

    def _weights(self) -> list[float]:
        return [float(w) for w in self.weights]


def _job_of_requester(session: Session, job_id: int) -> FederatedJob:
    job = session.federated_jobs.job(job_id)
    if job is None:
        raise ConfigError(f"there is no federated job {job_id} on chain")
    if job.requester.lower() != session.address.lower():
        raise ConfigError(f"job {job_id} is {job.requester}'s: only its requester coordinates it")
    return job


def weights_digest(weights: Any) -> bytes:
    """sha256 of the weights as little-endian float64: what is anchored and committed."""
    import numpy as np

    return hashlib.sha256(np.asarray(weights, dtype="<f8").tobytes()).digest()


def commitments_root(commitments: dict[str, bytes]) -> bytes:
    """sha256 over (address, commitment) pairs in address order: one anchored value that
    binds every aggregated update."""
    digest = hashlib.sha256()
    for institution in sorted(commitments):
        digest.update(bytes.fromhex(institution[2:]) + commitments[institution])
    return digest.digest()


def _scaled(score: float) -> int:
    return max(0, round(score * SCORE_SCALE)) if math.isfinite(score) else 0


def _progress(outcome: RoundOutcome, rounds: int) -> str:
    dropped = f"; dropped {', '.join(f'{a[:10]}… ({w})' for a, w in outcome.dropped.items())}"
    return (
        f"round {outcome.round}/{rounds}: {len(outcome.aggregated)} aggregated, validation "
        f"accuracy {outcome.accuracy:.3f}, anchored {outcome.model_hash[:18]}…"
        + (dropped if outcome.dropped else "")
    )


# ---------------------------------------------------------------------- parsing


def _round_start(body: Any) -> tuple[int, list[tuple[int, str]]]:
    if not isinstance(body, dict) or not isinstance(body.get("nodes"), list):
        raise MalformedRequestError('the body is {"round": r, "nodes": [...]}')
    nodes = []
    for node in body["nodes"]:
        if not isinstance(node, dict):
            raise MalformedRequestError("each node is an object")
        nodes.append((_int(node.get("node_id"), "node_id"), _address(node.get("institution"))))
    return _int(body.get("round"), "round"), nodes


def _round_result(
    body: Any, size: int
) -> tuple[int, list[tuple[int, Any, int]], list[tuple[str, str]]]:
    import numpy as np

    if not isinstance(body, dict) or not isinstance(body.get("updates"), list):
        raise MalformedRequestError('the body is {"round": r, "updates": [...], "failed": [...]}')
    updates = []
    for update in body["updates"]:
        if not isinstance(update, dict) or not isinstance(update.get("weights"), list):
            raise MalformedRequestError("each update carries its weights")
        weights = np.array(update["weights"], dtype=float)
        if weights.shape != (size,) or not np.all(np.isfinite(weights)):
            raise MalformedRequestError(f"an update's weights must be {size} finite numbers")
        examples = _int(update.get("num_examples"), "num_examples")
        updates.append((_int(update.get("node_id"), "node_id"), weights, max(1, examples)))
    failed = _failed(body)
    return _int(body.get("round"), "round"), updates, failed


def _secure_result(
    body: Any, size: int
) -> tuple[int, Any | None, list[tuple[int, int]], list[tuple[str, str]]]:
    import numpy as np

    if not isinstance(body, dict) or not isinstance(body.get("survivors"), list):
        raise MalformedRequestError(
            'the body is {"round": r, "aggregate": [...] or null, "survivors": [...], '
            '"failed": [...]}'
        )
    aggregate = None
    if body.get("aggregate") is not None:
        if not isinstance(body["aggregate"], list):
            raise MalformedRequestError("the aggregate is a list of numbers")
        aggregate = np.array(body["aggregate"], dtype=float)
        if aggregate.shape != (size,) or not np.all(np.isfinite(aggregate)):
            raise MalformedRequestError(f"the aggregate must be {size} finite numbers")
    survivors = []
    for survivor in body["survivors"]:
        if not isinstance(survivor, dict):
            raise MalformedRequestError("each survivor is an object")
        examples = max(1, _int(survivor.get("num_examples"), "num_examples"))
        survivors.append((_int(survivor.get("node_id"), "node_id"), examples))
    failed = _failed(body)
    return _int(body.get("round"), "round"), aggregate, survivors, failed


def _failed(body: dict[str, Any]) -> list[tuple[str, str]]:
    """(institution, reason) of each node the ServerApp reports failed; the rest ignored."""
    return [
        (_address(f.get("institution")), str(f.get("reason", ""))[:200])
        for f in body.get("failed", [])
        if isinstance(f, dict) and isinstance(f.get("institution"), str)
    ]


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MalformedRequestError(f"{name} must be a whole number")
    return value


def _address(value: Any) -> str:
    if not isinstance(value, str) or len(value) != 42 or not value.startswith("0x"):
        raise MalformedRequestError("an institution is a 0x address")
    try:
        bytes.fromhex(value[2:])
    except ValueError:
        raise MalformedRequestError("an institution is a 0x address") from None
    return value.lower()

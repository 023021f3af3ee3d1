"""An institution's side of a federated job: its data trains the model here, in
ailedger's own process, one round at a time, while its grant holds.

The institution's home decrypts its dataset once and keeps the table in this process's
memory only (the decrypted file is removed at once). The ClientApp that Flower starts for
each training message is the requester's code (it came with the run), so it never sees
the data: it relays the round's global weights and the task to this desk (loopback HTTP,
:mod:`ailedger.federated.http`) and relays back the update. The desk decides from the
chain at that moment:

- the job is running, and this institution is a member with this dataset;
- the task is the one whose hash the job posted (its privacy terms included), and its
  round's work is bounded (:data:`MAX_ROW_VISITS`);
- the round is the job's next one on chain (``rounds_done + 1``, at most ``rounds``), and
  it is served once, even across a restart (:mod:`ailedger.federated.served`): a retry
  with the same weights gets the same answer back, read and charged once; other weights
  for a served round are refused (each update is a look at the data, and a requester may
  not take more looks than the rounds it anchors);
- the requester's grant is still valid (a revocation takes effect at the next round);
- a dataset with a privacy budget trains only under the job's privacy terms, and only
  while this round's spend fits under its cap;
- the grant has a read left: each consented round is a ``compute-read`` entry in the
  institution's audit log, counted against the grant's ``max_reads`` like any
  compute-to-data read.

Then it trains ``local_epochs`` from the global weights. Under privacy terms it trains by
DP-SGD instead (:func:`ailedger.privacy.training.sgd_logistic`, the trainer private
analytics uses): rows Poisson-sampled with rate ``q = batch_size / rows`` (from the OS's
randomness), each row's gradient clipped to ``clip_norm``, Gaussian noise of standard
deviation ``noise_multiplier * clip_norm`` on every step, ``local_epochs / q`` steps. That
round is one ``sampled_gaussian`` charge, composed with every earlier release on the dataset
by the privacy accountant and charged on chain before the update leaves. Only the update
leaves the institution's machine.
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ailedger.errors import AiledgerError, ConfigError, MalformedRequestError
from ailedger.federated.served import ServedRounds
from ailedger.federated.task import Task, parse_table, task_from_json
from ailedger.sharing.reads import COMPUTE_READ, ReadLimitReachedError

if TYPE_CHECKING:
    import numpy as np

    from ailedger.chain.contracts.federated_jobs import FederatedJob, Membership
    from ailedger.federated.secagg import KeyVouching, SecAggParty
    from ailedger.privacy.charges import Charge
    from ailedger.privacy.desk import Plan
    from ailedger.session import Session
    from ailedger.sharing.owner import OwnerNode

# A refusal for the privacy budget starts so: a job with ``on_budget = "stop"`` stops on it.
BUDGET_REFUSAL = "privacy budget: "
# Most row visits one round may cost (epochs x rows, and DP-SGD's Poisson sampling visits
# every row on each of its epochs/q steps): beyond, the round would outlast any timeout,
# and its charge would be made for an update nobody waits for any more.
MAX_ROW_VISITS = 200_000_000
# What a requester can change so that a round costs less privacy.
CHEAPER = (
    "the task needs a larger noise_multiplier, fewer local_epochs or a larger batch_size, "
    "or the dataset's owner a higher cap"
)


@dataclass(frozen=True)
class TrainOrder:
    """One round's order, as the ClientApp relays it."""

    round: int
    weights: list[float]
    task: Task


def parse_train_order(body: Any) -> TrainOrder:
    """``{"round": r, "weights": [...], "task": {...}}``, or MalformedRequestError."""
    if not isinstance(body, dict) or set(body) != {"round", "weights", "task"}:
        raise MalformedRequestError('a train order is {"round", "weights", "task"}, no more')
    number, weights = body["round"], body["weights"]
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise MalformedRequestError("round is a whole number from 1")
    if not isinstance(weights, list) or not all(
        isinstance(w, int | float) and not isinstance(w, bool) and math.isfinite(w) for w in weights
    ):
        raise MalformedRequestError("weights is a list of finite numbers")
    try:
        task = task_from_json(body["task"])
    except ConfigError as exc:
        raise MalformedRequestError(f"the task does not parse: {exc}") from None
    if len(weights) != len(task.features) + 1:
        raise MalformedRequestError(
            f"the model has {len(task.features) + 1} weights, not {len(weights)}"
        )
    return TrainOrder(number, [float(w) for w in weights], task)


@dataclass(frozen=True)
class SecAggOrder:
    """One SecAgg+ message, as the ClientApp relays it: the protocol's ConfigRecord
    (Flower's protobuf, base64), and the round's order for the stage that trains."""

    node_id: int
    configs: str
    train: TrainOrder
    signatures: dict[str, str]  # node id -> a member's signature of its keys (key sharing)


MAX_CONFIGS = 4 * 1024 * 1024  # a stage's keys, shares or masked vector, base64
MAX_SECAGG_NODES = 64  # the most nodes a SecAgg+ round has (the worker's limit on shares)
# An update's weight in SecAgg+ is its rows up to this (the protocol's max_weight): more
# would push the weighted update past the clipping range.
SECAGG_MAX_WEIGHT = 50_000


def parse_secagg_order(body: Any) -> SecAggOrder:
    """``{"node_id", "configs", "round", "weights", "task", "signatures"}``, or
    MalformedRequestError."""
    keys = {"node_id", "configs", "round", "weights", "task", "signatures"}
    if not isinstance(body, dict) or set(body) != keys:
        raise MalformedRequestError(f"a SecAgg+ order is {sorted(keys)}, no more")
    node, configs = body["node_id"], body["configs"]
    if isinstance(node, bool) or not isinstance(node, int) or node < 0:
        raise MalformedRequestError("node_id is a whole number")
    if not isinstance(configs, str) or not 0 < len(configs) <= MAX_CONFIGS:
        raise MalformedRequestError(f"configs is base64 text of at most {MAX_CONFIGS} bytes")
    train = parse_train_order({k: body[k] for k in ("round", "weights", "task")})
    return SecAggOrder(node, configs, train, _parse_signatures(body["signatures"]))


def _parse_signatures(signatures: Any) -> dict[str, str]:
    from ailedger.federated.secagg import SIGNATURE

    if (
        not isinstance(signatures, dict)
        or len(signatures) > MAX_SECAGG_NODES
        or not all(
            isinstance(node, str)
            and node.isascii()
            and node.isdigit()
            and isinstance(signature, str)
            and SIGNATURE.fullmatch(signature)
            for node, signature in signatures.items()
        )
    ):
        raise MalformedRequestError(
            f"signatures maps at most {MAX_SECAGG_NODES} node ids to 65-byte hex signatures"
        )
    return dict(signatures)


class InstitutionDesk:
    """Consent, round by round, for one institution's dataset in one federated job."""

    def __init__(
        self, node: OwnerNode, job_id: int, say: Callable[[str], None] = lambda _: None
    ) -> None:
        session = node.session
        job = session.federated_jobs.job(job_id)
        if job is None:
            raise ConfigError(f"there is no federated job {job_id} on chain")
        member = _membership(session.federated_jobs.members(job_id), session.address)
        if member is None:
            raise ConfigError(f"this home has not joined job {job_id}: `ailedger fl join` first")
        self.node, self.job_id, self.member, self.say = node, job_id, member, say
        self.requester, self.purpose = job.requester, job.task.purpose
        self._served = ServedRounds(
            session.home.layout.federated
            / f"{session.federated_jobs.address.lower()}-job-{job_id}.json"
        )
        self.table = self._decrypt()
        self.task_hash = job.task.task_hash
        self.rounds = job.task.rounds
        self._parsed: tuple[Any, Any] | None = None  # (x, y) under the job's one task
        self._lock = threading.Lock()
        self._party: SecAggParty | None = None  # this job's SecAgg+ secrets, if it has any
        self._secagg_lock = threading.Lock()

    def train(self, order: TrainOrder) -> dict[str, Any]:
        """This institution's update for one round, or ``{"ok": false, "reason"}``. A job
        under secure aggregation never gets an update in the clear (only :meth:`secagg`
        masks and sends it)."""
        if order.task.secure_aggregation:
            return {
                "ok": False,
                "reason": "this job aggregates securely: an update leaves only masked "
                "(SecAgg+), never by /fl/train",
            }
        return self._serve(order)

    def _serve(self, order: TrainOrder) -> dict[str, Any]:
        answer = self._train(order)
        if answer["ok"]:
            spent = f", epsilon now {answer['epsilon_spent']}" if "epsilon_spent" in answer else ""
            self.say(f"round {order.round}: trained on {answer['num_examples']} rows{spent}")
        else:
            self.say(f"round {order.round}: refused ({answer['reason']})")
        return answer

    def _train(self, order: TrainOrder) -> dict[str, Any]:
        with self._lock:
            refusal = self._refusal() or self._task_refusal(order.task)
            if refusal is not None:
                return {"ok": False, "reason": refusal}
            start = weights_key(order.weights)
            served = self._served.answer(order.round)
            if served is not None:
                served_with, earlier = served
                if served_with == start:
                    return earlier  # a retry: the same update, read and charged once
                return {"ok": False, "reason": f"round {order.round} was served already"}
            refusal = self._round_refusal(order.round)
            if refusal is not None:
                return {"ok": False, "reason": refusal}
            try:
                x, y = self._rows_of(order.task)
            except ConfigError as exc:
                return {"ok": False, "reason": str(exc)}
            refusal = work_refusal(order.task, len(y))
            plan: Plan | None = None
            if refusal is None and order.task.privacy is not None:
                plan, refusal = self._privacy_plan(order.task, len(y))
            if refusal is None:
                refusal = self._log_read(order.round)
            if refusal is not None:
                return {"ok": False, "reason": refusal}
            weights = train_round(order, x, y)
            if not all(math.isfinite(w) for w in weights):
                return {"ok": False, "reason": "training diverged (non-finite weights)"}
            if plan is not None:
                refusal = self._charge(order.round, plan)
                if refusal is not None:  # nothing leaves a round it could not charge
                    return {"ok": False, "reason": refusal}
            answer: dict[str, Any] = {"ok": True, "weights": weights, "num_examples": len(y)}
            if plan is not None:
                answer["epsilon_spent"] = round(plan.spent_after, 6)
            self._served.record(order.round, start, answer)
            return answer

    def secagg(self, order: SecAggOrder) -> dict[str, Any]:
        """One SecAgg+ step: ``{"ok": true, "configs"}`` (with ``num_examples`` in the
        stage that masks this round's update, trained here first under every check of
        :meth:`train`), or ``{"ok": false, "reason"}``."""
        from ailedger.federated.secagg import SecAggParty

        task = order.train.task
        refusal = self._refusal() or self._task_refusal(task)
        if refusal is None and not task.secure_aggregation:
            refusal = "this job does not aggregate securely: its updates go by /fl/train"
        if refusal is not None:
            return {"ok": False, "reason": refusal}
        # One step at a time, start to end: two collect stages on one state would mask
        # two updates alike, and their difference would show.
        with self._secagg_lock:
            if self._party is None:
                self._party = SecAggParty(self._vouching())
            try:
                return self._secagg_step(self._party, order)
            except ConfigError as exc:
                return {"ok": False, "reason": str(exc)}

    def _vouching(self) -> KeyVouching:
        """Neighbours' keys must be signed by members of the job, as the chain has them
        at each key sharing; this institution signs its own with its account."""
        from ailedger.federated.secagg import KeyVouching

        jobs = self.node.session.federated_jobs
        return KeyVouching(
            jobs.address,
            self.job_id,
            self.node.session.require_account(),
            lambda: [member.institution for member in jobs.members(self.job_id)],
        )

    def _secagg_step(self, party: SecAggParty, order: SecAggOrder) -> dict[str, Any]:
        number = order.train.round
        step = party.step(order.node_id, number, order.configs, order.signatures)
        if not step.get("needs_update"):
            return {"ok": True, **step}
        if self._served.masked(number):
            # The same round again among other nodes (set up anew) would let the server
            # subtract one sum from another: each round's update is masked once.
            return {"ok": False, "reason": f"round {number} was masked and sent already"}
        trained = self._serve(order.train)
        if not trained["ok"]:
            return trained
        rows = min(int(trained["num_examples"]), SECAGG_MAX_WEIGHT)
        self._served.record_masked(number)
        step = party.step(
            order.node_id, number, order.configs, order.signatures, trained["weights"], rows
        )
        return {"ok": True, **step, "num_examples": rows}

    def close(self) -> None:
        """Forget the table (it was only ever in memory)."""
        self.table, self._parsed = "", None

    def _rows_of(self, task: Task) -> tuple[Any, Any]:
        """The table as the task reads it, parsed once: only the posted task is trained."""
        if self._parsed is None:
            self._parsed = parse_table(task, self.table, "this institution's table")
        return self._parsed

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

    def _round_refusal(self, number: int) -> str | None:
        """Only the job's next round, as the chain counts them, is trained."""
        job = self.node.session.federated_jobs.job(self.job_id)
        done = job.rounds_done if job is not None else 0
        if number > self.rounds:
            return f"the job has {self.rounds} rounds, not {number}"
        if number != done + 1:
            return f"round {number} is not the job's next: {done} anchored on chain"
        return None

    def _task_refusal(self, task: Task) -> str | None:
        if task.digest() != self.task_hash:
            return "this is not the task the job posted (its hash differs): not trained"
        if task.privacy is None and self.node.session.privacy_ledger.is_private(
            self.member.dataset_id
        ):
            return (
                "this dataset has a privacy budget: it trains only in jobs with privacy "
                "terms ([privacy] in the task)"
            )
        return None

    def _privacy_plan(self, task: Task, rows: int) -> tuple[Plan | None, str | None]:
        """The spend this round would bring, or why it cannot be spent. A dataset without a
        budget still trains by DP-SGD; it has no cap to charge."""
        from ailedger.privacy.desk import PrivacyDesk, spend_refusal

        dataset = self.member.dataset_id
        if task.privacy is None or not self.node.session.privacy_ledger.is_private(dataset):
            return None, None
        plan = PrivacyDesk(self.node).plan(dataset, [round_charge(task, rows)])
        if plan.spent_after > plan.budget.epsilon_cap:
            return None, BUDGET_REFUSAL + spend_refusal(plan.budget, plan.spent_after, CHEAPER)
        return plan, None

    def _charge(self, round_no: int, plan: Plan) -> str | None:
        from ailedger.chain.contracts.privacy_ledger import ChargeKind
        from ailedger.privacy.charges import encode_charges

        ref = round_charge_ref(self.job_id, round_no)
        try:
            self.node.session.privacy_ledger.charge(
                self.member.dataset_id,
                self.requester,
                ref,
                ChargeKind.TRAINING,
                encode_charges(plan.charges),
                plan.spent_after,
                plan.index,
            )
        except AiledgerError as exc:
            return f"the round could not be charged on chain, so nothing leaves ({exc})"
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

    def _decrypt(self) -> str:
        """The dataset's single CSV table as text: decrypted into a private scratch
        directory, read, and the directory removed whatever happens."""
        scratch = Path(tempfile.mkdtemp(prefix="ailedger-fl-"))
        try:
            os.chmod(scratch, 0o700)
            source = scratch / "data"
            self.node.decrypt_own(self.member.dataset_id, source)
            tables = [source] if source.is_file() else sorted(source.rglob("*.csv"))
            if len(tables) != 1 or not tables[0].is_file():
                raise ConfigError(
                    f"federated training reads one CSV table; this dataset holds {len(tables)}"
                )
            try:
                return tables[0].read_text(encoding="utf-8")
            except UnicodeDecodeError:
                raise ConfigError("the dataset's table is not UTF-8 text") from None
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


def projected_refusal(session: Session, dataset_id: bytes, task: Task, rows: int) -> str | None:
    """Why one more round on ``rows`` rows would pass the dataset's cap, from the chain
    alone (budgets and charges are public); None if it fits or the dataset has no budget."""
    from ailedger.privacy.accountant import projected_epsilon
    from ailedger.privacy.desk import spend_refusal
    from ailedger.privacy.report import releases_of

    budget = session.privacy_ledger.budget(dataset_id)
    if not budget.private:
        return None
    charge = [round_charge(task, rows)]
    after = projected_epsilon(releases_of(session, dataset_id), charge, budget.delta)
    if after <= budget.epsilon_cap:
        return None
    return BUDGET_REFUSAL + spend_refusal(budget, after, CHEAPER)


def work_refusal(task: Task, rows: int) -> str | None:
    """Why a round of ``task`` on ``rows`` rows is too much work to serve, or None."""
    visits = task.local_epochs * rows
    if task.privacy is not None:
        visits = dp_schedule(task, rows)[1] * rows
    if visits <= MAX_ROW_VISITS:
        return None
    return (
        f"one round would visit {visits:,} rows, over {MAX_ROW_VISITS:,}: the task needs "
        "a larger batch_size or fewer local_epochs"
    )


def weights_key(weights: list[float]) -> bytes:
    """What identifies a round's starting weights (exactly, as float64)."""
    import numpy as np

    return hashlib.sha256(np.asarray(weights, dtype="<f8").tobytes()).digest()


def dp_schedule(task: Task, rows: int) -> tuple[float, int]:
    """(sampling rate, steps) of one round's DP-SGD on ``rows`` rows: ``local_epochs``
    passes in expectation."""
    q = min(1.0, task.batch_size / max(rows, 1))
    return q, max(1, round(task.local_epochs / q))


def round_charge_ref(job_id: int, round_no: int) -> bytes:
    """The ``ref`` of a round's charge on the privacy ledger: the lineage finds it so."""
    return hashlib.sha256(f"ailedger-fl:{job_id}:{round_no}".encode()).digest()


def round_charge(task: Task, rows: int) -> Charge:
    """One round's release under the task's privacy terms: DP-SGD's steps as one
    sampled-Gaussian charge (see the module's docstring)."""
    from ailedger.privacy.charges import Charge

    if task.privacy is None:
        raise ConfigError("a task without privacy terms releases no charge")
    q, steps = dp_schedule(task, rows)
    return Charge(
        "sampled_gaussian",
        noise_multiplier=task.privacy.noise_multiplier,
        sampling_rate=q,
        count=steps,
    )


def train_round(order: TrainOrder, x: np.ndarray, y: np.ndarray) -> list[float]:
    """The weights after this institution's round: plain mini-batch descent in the same
    order for the same round, or, under privacy terms, DP-SGD with the OS's randomness."""
    import secrets

    import numpy as np

    from ailedger.federated.logistic import train_local
    from ailedger.privacy.training import sgd_logistic

    task, start = order.task, np.asarray(order.weights, dtype=np.float64)
    if task.privacy is None:
        trained = train_local(
            start,
            x,
            y,
            epochs=task.local_epochs,
            lr=task.learning_rate,
            batch=task.batch_size,
            rng=np.random.default_rng(order.round),
        )
    else:
        q, steps = dp_schedule(task, len(y))
        trained = sgd_logistic(
            x,
            y,
            q=q,
            steps=steps,
            learning_rate=task.learning_rate,
            rng=np.random.default_rng(secrets.randbits(128)),
            clip_norm=task.privacy.clip_norm,
            noise_multiplier=task.privacy.noise_multiplier,
            initial=start,
        )
    return [float(w) for w in trained]


def _membership(members: list[Membership], address: str) -> Membership | None:
    return next((m for m in members if m.institution.lower() == address.lower()), None)

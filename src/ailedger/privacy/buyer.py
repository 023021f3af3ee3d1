"""A buyer's side of private releases: check the budget, pay, ask the owner's node.

:func:`ask` refuses a query whose projected spend is over the dataset's cap *before any
payment*: the charges of a query are known from its spec alone, and every earlier
release is public in the PrivacyLedger's events, so the buyer's node composes them with
the same accountant the owner's node uses. A training's sampling rate needs the number
of rows, which only the owner's node knows: the buyer checks what it can (a training
alone over the cap, a spent budget) and the owner's node checks exactly before it runs.
Only then is access bought (``buy=True``) and the signed request sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ailedger.errors import AiledgerError, ConfigError, PeerUnreachableError
from ailedger.peer import wire
from ailedger.privacy.accountant import projected_epsilon
from ailedger.privacy.desk import (
    KINDS,
    BudgetExhaustedError,
    NotPrivateError,
    new_nonce,
    spend_refusal,
)
from ailedger.privacy.errors import PrivacyError
from ailedger.privacy.report import releases_of

if TYPE_CHECKING:
    from ailedger.chain.contracts.privacy_ledger import PrivacyBudget
    from ailedger.session import Session

TRAINING_TIMEOUT_S = 600.0
ANSWER_LIMIT = 4 * 1024 * 1024  # statistics or a linear model, never a table
QUERY_TIMEOUT_S = 120.0


class ReleaseRefusedError(AiledgerError):
    """The owner's node refused the release; the message says why (and what remains)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Bought:
    grant_id: int
    tx_hash: str


def private_budget(session: Session, dataset_id: bytes) -> PrivacyBudget:
    """The dataset's budget; raises :class:`NotPrivateError` if it has none."""
    if session.data_market.dataset(dataset_id) is None:
        raise ConfigError(f"no dataset 0x{dataset_id.hex()} on chain; check the id")
    budget = session.privacy_ledger.budget(dataset_id)
    if not budget.private:
        raise NotPrivateError(
            f"dataset 0x{dataset_id.hex()} has no privacy budget: its owner releases "
            "nothing labelled private"
        )
    return budget


def precheck(session: Session, dataset_id: bytes, kind: str, spec: Any) -> float | None:
    """Refuse, before any payment, a release the budget cannot hold; returns the
    projected spend when it is known from the spec alone (a query), else None."""
    if kind not in KINDS:
        raise ConfigError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    budget = private_budget(session, dataset_id)
    try:
        if kind == "query":
            from ailedger.privacy.queries import parse_query, plan_charges

            planned = plan_charges(parse_query(spec))
            projected = projected_epsilon(releases_of(session, dataset_id), planned, budget.delta)
            if projected > budget.epsilon_cap:
                raise BudgetExhaustedError(spend_refusal(budget, projected))
            return projected
        from ailedger.privacy.training import parse_training

        wanted = parse_training(spec).epsilon
    except PrivacyError as exc:
        raise ConfigError(f"the {kind} spec is not valid: {exc}") from exc
    if budget.remaining <= 0 or max(wanted, budget.spent) > budget.epsilon_cap:
        raise BudgetExhaustedError(spend_refusal(budget, max(wanted, budget.spent)))
    return None


def buy_access(session: Session, dataset_id: bytes, purpose: int) -> Bought:
    """Pay for a grant; refuses a dataset that needs its owner's approval (the grant
    would not be usable until then: ask with `ailedger data request` and wait)."""
    from ailedger.sharing.requester import request_access

    record = session.data_market.dataset(dataset_id)
    if record is None:
        raise ConfigError(f"no dataset 0x{dataset_id.hex()} on chain; check the id")
    if record.policy.needs_approval:
        raise ConfigError(
            "this dataset needs its owner's approval: request access with "
            "`ailedger data request`, wait for the grant, then pass --grant"
        )
    grant, tx = request_access(session, dataset_id, purpose)
    return Bought(grant, tx)


def ask(session: Session, dataset_id: bytes, grant_id: int, kind: str, spec: Any) -> dict[str, Any]:
    """Send a signed release request to the dataset owner's node; returns its answer
    (values, the charges applied, the spend before and after, the charge's tx)."""
    from ailedger.peer.signed_json import post_signed_json, refusal_text

    precheck(session, dataset_id, kind, spec)
    record = session.data_market.dataset(dataset_id)
    assert record is not None  # precheck found it
    url = session.node_registry.url_of(record.owner)
    if url is None:
        raise PeerUnreachableError(f"the owner {record.owner} has registered no node URL")
    body = {
        "dataset": "0x" + dataset_id.hex(),
        "grant": grant_id,
        "kind": kind,
        "spec": spec,
        "nonce": new_nonce(),
    }
    status, answer, raw = post_signed_json(
        session.require_account(),
        record.owner,
        str(url),
        wire.PRIVATE_RELEASE,
        body,
        limit=ANSWER_LIMIT,
        timeout=TRAINING_TIMEOUT_S if kind == "training" else QUERY_TIMEOUT_S,
    )
    if status != 200:
        raise ReleaseRefusedError(refusal_text(status, answer, raw), status)
    if not isinstance(answer, dict):
        raise ReleaseRefusedError("the owner's node answered something that is not a release")
    return answer

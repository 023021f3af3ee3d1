"""What a dataset's privacy budget holds: spent, by whom, on what, and what remains.

Everything here is read from the chain, so the owner, any buyer and any auditor get the
same report: the cap the owner set, and every charged release from the PrivacyLedger's
events. The total is recomputed from those events with the PLD accountant and set beside
the figure the owner's node charged; they agree unless the owner's node under-charged,
which :attr:`BudgetReport.consistent` says. The RDP accountant gives a second, looser
figure as a cross-check.

Shares by buyer and by kind are each group's releases composed alone: privacy loss does
not add up across groups, so the shares may sum to more than the total.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ailedger.privacy.accountant import rdp_epsilon, spent_epsilon
from ailedger.privacy.charges import Charge, decode_charges

if TYPE_CHECKING:
    from ailedger.session import Session

# The owner's node rounds each charged total up to a millionth; a recomputed figure may
# sit that far below it, and the PLD discretisation adds its own small pessimism.
TOLERANCE = 1e-4


@dataclass(frozen=True)
class ReleaseLine:
    index: int
    buyer: str
    kind: str
    ref: str
    epsilon_alone: float
    spent_after: float
    block: int
    tx_hash: str


@dataclass(frozen=True)
class BudgetReport:
    dataset: str
    private: bool
    epsilon_cap: float
    delta: float
    spent_charged: float
    spent_recomputed: float
    spent_rdp: float
    releases: list[ReleaseLine] = field(default_factory=list)
    by_buyer: dict[str, float] = field(default_factory=dict)
    by_kind: dict[str, float] = field(default_factory=dict)

    @property
    def remaining(self) -> float:
        return max(0.0, self.epsilon_cap - max(self.spent_charged, self.spent_recomputed))

    @property
    def consistent(self) -> bool:
        """True unless the events compose to more than the owner's node charged."""
        return self.spent_recomputed <= self.spent_charged + TOLERANCE

    def as_dict(self) -> dict[str, object]:
        return {
            "dataset": self.dataset,
            "private": self.private,
            "epsilon_cap": self.epsilon_cap,
            "delta": self.delta,
            "spent_charged": self.spent_charged,
            "spent_recomputed": round(self.spent_recomputed, 6),
            "spent_rdp": round(self.spent_rdp, 6),
            "remaining": round(self.remaining, 6),
            "consistent": self.consistent,
            "by_buyer": {k: round(v, 6) for k, v in self.by_buyer.items()},
            "by_kind": {k: round(v, 6) for k, v in self.by_kind.items()},
            "releases": [vars(line) for line in self.releases],
        }


def releases_of(session: Session, dataset_id: bytes) -> list[list[Charge]]:
    """Every release charged to the dataset, decoded from the chain's events."""
    records = session.privacy_ledger.charges(dataset_id, session.deployment.block)
    return [decode_charges(r.charges) for r in records]


def budget_report(session: Session, dataset_id: bytes) -> BudgetReport:
    """The dataset's budget, every release charged to it, recomputed from the chain."""
    ledger = session.privacy_ledger
    budget = ledger.budget(dataset_id)
    records = ledger.charges(dataset_id, session.deployment.block)
    decoded = [decode_charges(r.charges) for r in records]
    delta = budget.delta if budget.private else 1e-6
    lines = [
        ReleaseLine(
            index=r.index,
            buyer=r.buyer,
            kind=r.kind.name.lower(),
            ref="0x" + r.ref.hex(),
            epsilon_alone=spent_epsilon([charges], delta),
            spent_after=r.spent_after,
            block=r.block,
            tx_hash=r.tx_hash,
        )
        for r, charges in zip(records, decoded, strict=True)
    ]
    return BudgetReport(
        dataset="0x" + dataset_id.hex(),
        private=budget.private,
        epsilon_cap=budget.epsilon_cap,
        delta=budget.delta,
        spent_charged=budget.spent,
        spent_recomputed=spent_epsilon(decoded, delta),
        spent_rdp=rdp_epsilon(decoded, delta) if decoded else 0.0,
        releases=lines,
        by_buyer=_shares(decoded, [r.buyer for r in records], delta),
        by_kind=_shares(decoded, [r.kind.name.lower() for r in records], delta),
    )


def _shares(
    releases: Sequence[list[Charge]], groups: Sequence[str], delta: float
) -> dict[str, float]:
    grouped: dict[str, list[list[Charge]]] = {}
    for charges, group in zip(releases, groups, strict=True):
        grouped.setdefault(group, []).append(charges)
    return {group: spent_epsilon(items, delta) for group, items in sorted(grouped.items())}

"""A person's wearable data composed with sharing and privacy: their day-to-day patterns
published for a clinician they grant, or privately for researchers (DP answers only)."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ailedger.errors import ConfigError

if TYPE_CHECKING:
    from ailedger.health.wearables.vault import WearableVault
    from ailedger.session import Session
    from ailedger.sharing.owner import OwnerNode

AUDIENCES = {
    "clinical-care": ("clinical-care",),
    "research": ("rare-disease-research", "model-training", "public-health"),
}
DELTA = 1e-6  # the delta a research budget is measured at


@dataclass(frozen=True)
class SharedPatterns:
    dataset_id: bytes
    days: int
    audience: str
    private: bool
    tx_hash: str


def vault_of(session: Session, node: OwnerNode) -> WearableVault:
    """This home's wearable vault: its database, blob store and encryption key."""
    from ailedger.health.wearables.vault import WearableVault

    return WearableVault(session.database, node.blobs, session.encryption_key(), session.address)


def share_patterns(
    session: Session,
    node: OwnerNode,
    audience: str,
    *,
    price: int = 0,
    duration_s: int = 30 * 86400,
    title: str = "Daily wearable patterns",
    epsilon_cap: float | None = None,
) -> SharedPatterns:
    """Publish the person's daily patterns (never the readings) for ``audience``; every
    request needs their approval. For research the dataset is made private in the next
    transaction, before anyone can have been granted it: its rows are never served."""
    from ailedger.chain.contracts.data_market import Policy, purpose_mask
    from ailedger.health.wearables.patterns import daily_table
    from ailedger.privacy.owner import set_privacy_cap

    if audience not in AUDIENCES:
        raise ConfigError(f"share for clinical-care or research, not {audience!r}")
    if audience == "research" and epsilon_cap is None:
        raise ConfigError(
            "sharing for research needs --epsilon-cap (e.g. 1.0): the budget every answer "
            "is charged to; without one the rows could be read"
        )
    if audience == "clinical-care" and epsilon_cap is not None:
        raise ConfigError("--epsilon-cap is for research; a clinician you grant sees the patterns")
    policy = Policy(purpose_mask(list(AUDIENCES[audience])), True, price, duration_s, 0)
    table = daily_table(vault_of(session, node).all_observations())
    days = table.count("\n") - 1
    if days < 1:
        raise ConfigError("no wearable data to share yet: `ailedger wearables import` first")
    scratch = Path(tempfile.mkdtemp(prefix="ailedger-patterns-"))
    try:
        source = scratch / "daily-patterns.csv"
        source.write_text(table)
        metadata = {"title": title, "tags": ["wearables", audience], "description": ""}
        published = node.publish(source, policy, metadata, None)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if epsilon_cap is not None:
        set_privacy_cap(session, published.dataset_id, epsilon_cap, DELTA)
    return SharedPatterns(
        published.dataset_id, days, audience, epsilon_cap is not None, published.tx_hash
    )

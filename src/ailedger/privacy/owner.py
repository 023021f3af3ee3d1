"""An owner's act on a privacy budget: setting or changing its cap.

The cap lives on chain (PrivacyLedger), and its first setting makes the dataset private
for good: from then on its rows never leave the owner's node, only differentially
private answers do. Nothing refreshes a budget by itself; only the owner changes a cap,
and each change is both an on-chain event and an entry in the owner's audit log.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ailedger.errors import ConfigError

if TYPE_CHECKING:
    from ailedger.session import Session

PRIVACY_CAP = "privacy-cap"


@dataclass(frozen=True)
class CapChange:
    dataset: str
    epsilon_cap: float
    delta: float
    previous_cap: float | None
    tx_hash: str
    block: int


def set_privacy_cap(session: Session, dataset_id: bytes, epsilon: float, delta: float) -> CapChange:
    """Set the dataset's privacy cap (its owner only) and log the act."""
    from ailedger.sharing.owner import OwnerNode

    record = session.data_market.dataset(dataset_id)
    if record is None:
        raise ConfigError(f"no dataset 0x{dataset_id.hex()} on chain; check the id")
    if record.owner.lower() != session.address.lower():
        raise ConfigError(f"dataset 0x{dataset_id.hex()} is not yours; only its owner sets a cap")
    ledger = session.privacy_ledger
    before = ledger.budget(dataset_id)
    result = ledger.set_cap(dataset_id, epsilon, delta)
    after = ledger.budget(dataset_id)
    with OwnerNode(session) as node:
        node.append_own(
            {
                "kind": PRIVACY_CAP,
                "outcome": "set",
                "dataset": "0x" + dataset_id.hex(),
                "epsilon_cap": str(after.epsilon_cap),
                "delta": str(after.delta),
                "previous_cap": str(before.epsilon_cap) if before.private else "none",
                "tx": result.tx_hash,
                "time": int(time.time()),
            }
        )
    return CapChange(
        "0x" + dataset_id.hex(),
        after.epsilon_cap,
        after.delta,
        before.epsilon_cap if before.private else None,
        result.tx_hash,
        result.block_number,
    )

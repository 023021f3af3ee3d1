"""Offers: models and algorithms listed for sale, and what a buyer checks before paying.

An offer is a DataMarket listing like a dataset: the artefact is encrypted at its owner's
node, a buyer pays the listing's price for a grant (escrowed until the owner approves,
when the listing asks for approval), and every use goes through the owner's gateway and
audit log. The published metadata (whose hash is on chain) says what is sold::

    {"title": ..., "offer": "model-licence" | "model-predictions" | "algorithm",
     "model": "0x<id>", "version": 3, "passport": "0x<sha256 of the bundle>",
     "bundle": "0x<the job bundle's hash>", "delivery": "served" (predictions only)}

- a **model licence** is the model's files, passport and public key, fetched under the
  grant for its duration, at most ``max_reads`` times;
- **model predictions** never leave the owner's node: the grant buys ``max_reads``
  predictions, each recorded as a decision receipt (``ailedger market predict``);
- an **algorithm** is a job bundle, fetched like a dataset and run with ``job submit``.

Anyone can write metadata, so a buyer trusts only what the chain confirms
(:func:`offer_problems`): a model offer must name a registered, current version whose
owner is the listing's owner (nobody can sell someone else's model), and after the
fetch the files must carry that very passport (:mod:`ailedger.ai.market`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ailedger.sharing.owner_store import DELIVERY, SERVED_ONLY

if TYPE_CHECKING:
    from ailedger.session import Session
    from ailedger.sharing.catalog import CatalogEntry

MODEL_LICENCE = "model-licence"
MODEL_PREDICTIONS = "model-predictions"
ALGORITHM = "algorithm"
KINDS = (MODEL_LICENCE, MODEL_PREDICTIONS, ALGORITHM)
_HEX32 = re.compile(r"0x[0-9a-f]{64}")


@dataclass(frozen=True)
class Offer:
    """A listing of a model or an algorithm, with what the chain confirms of its claims.

    ``problems`` is empty when every claim the chain can check holds; a buyer's node
    refuses to pay for an offer with problems."""

    offer_id: str
    kind: str
    owner: str
    title: str
    price: int
    duration: int
    max_uses: int
    purposes: int
    needs_approval: bool
    retired: bool
    model: str | None = None
    version: int | None = None
    passport: str | None = None
    bundle: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def trusted(self) -> bool:
        return not self.problems

    def as_json(self) -> dict[str, Any]:
        from ailedger.chain.contracts.data_market import purpose_names

        return {
            "offer": self.offer_id,
            "kind": self.kind,
            "owner": self.owner,
            "title": self.title,
            "price": str(self.price),
            "duration_s": self.duration,
            "max_uses": self.max_uses,
            "purposes": purpose_names(self.purposes),
            "needs_approval": self.needs_approval,
            "retired": self.retired,
            "model": self.model,
            "version": self.version,
            "passport": self.passport,
            "bundle": self.bundle,
            "problems": self.problems,
        }


def model_metadata(
    kind: str, title: str, model_id: bytes, version: int, passport: str, description: str = ""
) -> dict[str, Any]:
    """The published metadata of a model offer."""
    if kind not in (MODEL_LICENCE, MODEL_PREDICTIONS):
        raise ValueError(f"not a model offer kind: {kind}")
    document: dict[str, Any] = {
        "title": title,
        "tags": ["model", kind],
        "description": description,
        "offer": kind,
        "model": "0x" + model_id.hex(),
        "version": version,
        "passport": passport,
    }
    if kind == MODEL_PREDICTIONS:
        document[DELIVERY] = SERVED_ONLY  # the gateway never sends its files
    return document


def algorithm_metadata(title: str, bundle_hash: bytes, description: str = "") -> dict[str, Any]:
    """The published metadata of an algorithm (a job bundle) offer."""
    return {
        "title": title,
        "tags": ["algorithm"],
        "description": description,
        "offer": ALGORITHM,
        "bundle": "0x" + bundle_hash.hex(),
    }


def offer_of(session: Session, entry: CatalogEntry) -> Offer | None:
    """The offer a catalog entry lists, with its claims checked on chain; None for an
    entry that is not an offer (a dataset, or metadata the owner's node never served)."""
    meta = entry.metadata or {}
    kind = meta.get("offer")
    if kind not in KINDS:
        return None
    offer = Offer(
        offer_id=entry.dataset_id,
        kind=str(kind),
        owner=entry.owner,
        title=entry.title,
        price=entry.price,
        duration=entry.duration,
        max_uses=entry.max_reads,
        purposes=entry.purposes,
        needs_approval=entry.needs_approval,
        retired=entry.retired,
        model=_hex32(meta.get("model")),
        version=_version(meta.get("version")),
        passport=_hex32(meta.get("passport")),
        bundle=_hex32(meta.get("bundle")),
    )
    offer.problems.extend(offer_problems(session, offer, meta))
    return offer


def offer_problems(session: Session, offer: Offer, meta: dict[str, Any]) -> list[str]:
    """Each claim of the offer that the chain does not confirm."""
    if offer.kind == ALGORITHM:
        return [] if offer.bundle else ["the offer names no bundle hash (0x and 64 hex digits)"]
    if offer.model is None or offer.version is None or offer.passport is None:
        return ["the offer does not name its model, version and passport"]
    served = meta.get(DELIVERY) == SERVED_ONLY
    if served != (offer.kind == MODEL_PREDICTIONS):
        return ["the offer's delivery does not match its kind"]
    record = session.model_registry.by_passport(bytes.fromhex(offer.passport[2:]))
    if record is None:
        return [f"no registered model version has the passport {offer.passport[:18]}…"]
    problems = []
    if "0x" + record.model_id.hex() != offer.model or record.version != offer.version:
        problems.append(
            f"the passport belongs to version {record.version} of 0x{record.model_id.hex()}, "
            "not the one the offer names"
        )
    if record.owner.lower() != offer.owner.lower():
        problems.append(
            f"the model belongs to {record.owner}, not to the seller {offer.owner}: "
            "nobody may sell another's model"
        )
    if record.retired:
        problems.append("its owner retired this model version")
    return problems


def find_offers(session: Session, *, kind: str = "", include_retired: bool = False) -> list[Offer]:
    """Every model and algorithm offer in the (synced) catalog, oldest first."""
    from ailedger.sharing.desk import synced_catalog

    found = []
    for entry in synced_catalog(session).search(include_retired=include_retired):
        offer = offer_of(session, entry)
        if offer is not None and (not kind or offer.kind == kind):
            found.append(offer)
    return found


def _hex32(value: Any) -> str | None:
    return value.lower() if isinstance(value, str) and _HEX32.fullmatch(value.lower()) else None


def _version(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return None
    return value

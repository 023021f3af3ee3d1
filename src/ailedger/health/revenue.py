"""The patients' share of what a published de-identified dataset earns.

A hospital publishes records of many patients (``ailedger health deidentify``, then
``ailedger data publish``). Those it has linked to a wallet (``ailedger health link``)
get a share of each sale of that dataset, pro rata by how many records (FHIR resources)
of theirs it holds, paid by the DataMarket into the Patients contract and claimed by each
(see ``contracts/Patients.vy``). :func:`cohort_of` finds them: the published file names
each patient only by a random surrogate, which the hospital's key file
(``deid-keys.json``, never published) maps back to its own record, and the hospital's
link table maps the record to its link. Nothing leaves the hospital but link ids and
weights; a link id names no one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ailedger.errors import ConfigError
from ailedger.health.deidentify import KEY_FILE

if TYPE_CHECKING:
    from ailedger.health.patient_links import PatientLinks
    from ailedger.session import Session

OPEN_LINKS = ("proposed", "active")


@dataclass(frozen=True)
class Cohort:
    """The dataset's linked patients: link id -> weight; and how many records it holds
    of patients with no open link (they neither earn nor object)."""

    weights: dict[bytes, int]
    unlinked: int


@dataclass(frozen=True)
class SharedRevenue:
    added: int  # links newly named for the dataset
    already: int  # links it named before
    unlinked: int
    bps: int


def cohort_of(published: Path, health_dir: Path, links: PatientLinks) -> Cohort:
    """The links behind the records of ``published`` (a file ``deidentify`` wrote)."""
    records = _records(published)
    keys = _surrogates(health_dir / KEY_FILE)
    by_local = links.by_local_id()
    weights: dict[bytes, int] = {}
    unlinked = 0
    for record in records:
        local = keys.get(str(record.get("id")))
        if local is None:
            raise ConfigError(
                f"{published} holds the record {record.get('id')!r}, which this home's key file "
                "does not know: it was de-identified elsewhere, or the key file was replaced"
            )
        link = by_local.get(local)
        if link is None or link.status not in OPEN_LINKS:
            unlinked += 1
            continue
        weight = max(1, len(record.get("fhir") or []))
        weights[link.link_bytes] = weights.get(link.link_bytes, 0) + weight
    return Cohort(weights, unlinked)


def share_revenue(session: Session, dataset_id: bytes, cohort: Cohort, bps: int) -> SharedRevenue:
    """Name the cohort's links for ``dataset_id`` (once each) and set the patients' share;
    only the dataset's owner may."""
    record = session.data_market.dataset(dataset_id)
    if record is None:
        raise ConfigError(f"there is no dataset 0x{dataset_id.hex()} on chain")
    if record.owner.lower() != session.address.lower():
        raise ConfigError(f"dataset 0x{dataset_id.hex()} is {record.owner}'s, not this home's")
    patients = session.patients
    new = {
        link: weight
        for link, weight in cohort.weights.items()
        if patients.weight(dataset_id, link) == 0
    }
    if new:
        patients.add_to_cohort(dataset_id, new)
    patients.set_share(dataset_id, bps)
    return SharedRevenue(len(new), len(cohort.weights) - len(new), cohort.unlinked, bps)


def _records(published: Path) -> list[dict[str, Any]]:
    try:
        document = json.loads(published.read_text(encoding="utf-8"))
        records = document["records"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"cannot read {published} as de-identified records (`ailedger health "
            f"deidentify` writes them): {exc}"
        ) from None
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise ConfigError(f"{published} holds no list of records")
    return records


def _surrogates(path: Path) -> dict[str, str]:
    """Surrogate id -> the hospital's local id, from the key file."""
    try:
        patients = json.loads(path.read_text(encoding="utf-8"))["patients"]
        return {str(s): str(entry["local_id"]) for s, entry in patients.items()}
    except FileNotFoundError:
        raise ConfigError(
            f"no de-identification keys at {path}: run `ailedger health deidentify` in this "
            "home first"
        ) from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"cannot read the de-identification keys {path}: {exc}") from None

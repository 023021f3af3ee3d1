"""The demo's patient chapter: a person's wearable data at their own node, feedback they
can verify, and a say (and a share) in what the hospital's records of them earn."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ailedger.errors import AiledgerError
from ailedger.session import Session
from ailedger.units import format_amount

Say = Callable[[str], None]
AIL = 10**18
PATIENT_SHARE_BPS = 1_000  # 10 % of each sale of the cohort goes to its consenting patients


def patient_in_control(
    hospital: Session,
    researcher: Session,
    new_party: Callable[[str], Session],
    registry: bytes,
    root: Path,
    say: Say,
) -> None:
    """``registry``: the de-identified records the hospital published in chapter 9, from
    ``root / "deidentified.json"``."""
    say("\n[bold]16. A patient in control: wearable data at home, consent, a share[/bold]")
    patient = new_party("patient")
    _wearables(patient, hospital, root, say)
    _clinician(patient, hospital, root, say)
    export = root / "deidentified.json"
    link = _link(hospital, patient, export, say)
    _sales(hospital, researcher, patient, registry, export, link, say)


def _wearables(patient: Session, clinician_view: Session, root: Path, say: Say) -> None:
    from ailedger.node.wearables import run_feedback, vault_of
    from ailedger.sharing.owner import OwnerNode

    export = _apple_export(root / "patient-export.zip")
    with OwnerNode(patient) as node:
        vault = vault_of(patient, node)
        outcome = vault.import_file(export, node.audit)
        counts = outcome.report.counts()
        say(
            f"  the patient imports three weeks from their watch and phone: {counts['accepted']} "
            f"readings kept, {counts['overridden']} steps the phone also counted set aside, "
            f"{counts['rejected']} impossible reading rejected; encrypted at their own node"
        )
        done = run_feedback(patient, node)
    for finding in done.findings:
        if finding.status == "flag":
            say(f"  feedback FLAG {finding.rule}: {finding.explanation}")
    receipts = done.receipts
    size = done.anchored[0] if done.anchored else "?"
    say(
        f"  {len(receipts)} flags recorded as receipts in the patient's audit log (a "
        f"commitment each, no value), anchored on chain at size {size}"
    )
    checked = [_verify(clinician_view, receipt) for receipt in receipts]
    say(
        f"  anyone the patient shows a receipt checks it against the chain alone: "
        f"{sum(not problems for problems in checked)} of {len(checked)} verified"
    )


def _clinician(patient: Session, clinician: Session, root: Path, say: Say) -> None:
    """The patient shares their day-to-day patterns with the clinician they grant, and
    with no one else: the clinician fetches one row a day, never a reading."""
    from ailedger.chain.contracts.data_market import PURPOSES
    from ailedger.node.app import create_app
    from ailedger.node.service import BackgroundServer, announce
    from ailedger.node.wearables import share_patterns
    from ailedger.sharing.owner import OwnerNode
    from ailedger.sharing.requester import fetch, request_access

    patient.key_registry.register(patient.home.encryption_public_key)
    with OwnerNode(patient) as node:
        shared = share_patterns(patient, node, "clinical-care")
        with BackgroundServer(create_app(node.gateway())) as url:
            announce(patient, url)
            grant, _ = request_access(clinician, shared.dataset_id, PURPOSES["clinical-care"])
            patient.data_market.grant(grant)
            got = fetch(clinician, shared.dataset_id, grant, root / "patient-patterns.csv")
    header, *days = got.path.read_text().splitlines()
    say(
        f"  the patient grants the hospital's clinician their day-to-day patterns: "
        f"{len(days)} days fetched ({header.replace(',', ', ')}), no single reading"
    )


def _verify(reader: Session, receipt: dict[str, Any]) -> list[str]:
    from ailedger.audit.home import HomeAudit
    from ailedger.health.wearables.feedback import verify_feedback

    audit = HomeAudit(reader)
    return verify_feedback(receipt, lambda r: audit.receipt_problems(r, str(receipt["node"]))[0])


def _link(hospital: Session, patient: Session, export: Path, say: Say) -> bytes:
    """The hospital links one of the patients its published registry holds to the
    patient's wallet; the patient accepts and consents."""
    from ailedger.health.deidentify import KEY_FILE
    from ailedger.health.node import HealthNode
    from ailedger.health.patient_links import accept_link, propose_link, set_consent

    with HealthNode(hospital.home.path, hospital.settings.database_url) as health:
        keys = json.loads((health.directory / KEY_FILE).read_text())["patients"]
        first = json.loads(export.read_text())["records"][0]["id"]
        record = propose_link(hospital, health.store, keys[first]["local_id"], patient.address)
    accept_link(patient, record.link_bytes)
    set_consent(patient, ["rare-disease-research", "matchmaking"], [])
    say(
        f"  the hospital links its records of one registry patient to their wallet (link "
        f"{record.link_id[:16]}…, random: no identity on chain); the patient accepts and "
        "consents to rare-disease research and matchmaking"
    )
    return record.link_bytes


def _sales(
    hospital: Session,
    researcher: Session,
    patient: Session,
    registry: bytes,
    export: Path,
    link: bytes,
    say: Say,
) -> None:
    from ailedger.chain.contracts.data_market import PURPOSES
    from ailedger.health.node import HealthNode
    from ailedger.health.patient_links import claim, set_consent
    from ailedger.health.revenue import cohort_of, share_revenue

    research = PURPOSES["rare-disease-research"]
    with HealthNode(hospital.home.path, hospital.settings.database_url) as health:
        cohort = cohort_of(export, health.directory, health.links)
    shared = share_revenue(hospital, registry, cohort, PATIENT_SHARE_BPS)
    paid, owed = _sale(hospital, researcher, patient, registry, research)
    say(
        f"  the hospital gives the registry's patients {PATIENT_SHARE_BPS // 100}% of each "
        f"sale ({shared.added} linked, {shared.unlinked} not); the researcher buys it: the "
        f"hospital receives {format_amount(paid)}, the consenting patients {format_amount(owed)}"
    )
    say(f"  the patient claims {format_amount(claim(patient))} themselves")

    set_consent(patient, [], ["rare-disease-research"])
    allowed = hospital.patients.consents_to(link, research)
    try:
        _sale(hospital, researcher, patient, registry, research)
        refused = "UNEXPECTED: sold"
    except AiledgerError as exc:
        refused = str(exc)
    say(
        f"  the patient withdraws research consent: the hospital's node is told consent "
        f"holds: {allowed}; the next request for the registry is refused on chain "
        f"({refused}) until the hospital publishes it again without their records; what "
        "they earned stays theirs"
    )


def _sale(
    hospital: Session, researcher: Session, patient: Session, dataset: bytes, purpose: int
) -> tuple[int, int]:
    """One granted request: (what the hospital received, what the patient can claim)."""
    from ailedger.sharing.requester import request_access

    before = hospital.token.balance_of(hospital.address)
    grant, _ = request_access(researcher, dataset, purpose)
    hospital.data_market.grant(grant)
    paid = hospital.token.balance_of(hospital.address) - before
    return paid, patient.patients.claimable(patient.address)


def _apple_export(path: Path) -> Path:
    """Three weeks of an Apple Health export: resting heart rate rising in the last week,
    steps from watch and phone for the same walks, blood pressure, one impossible value."""
    records = []
    for day in range(1, 22):
        stamp = f"2024-02-{day:02d}"
        records.append(
            _record(
                "RestingHeartRate", 55 if day <= 14 else 63, "count/min", f"{stamp} 06:00:00 +0000"
            )
        )
        for source in ("Sam's Apple Watch", "Sam's iPhone"):
            steps = 7200 if "Watch" in source else 6900
            records.append(
                _record(
                    "StepCount",
                    steps,
                    "count",
                    f"{stamp} 09:00:00 +0000",
                    source,
                    f"{stamp} 09:50:00 +0000",
                )
            )
    for day in (19, 20, 21):
        records.append(
            _record("BloodPressureSystolic", 134, "mmHg", f"2024-02-{day} 08:00:00 +0000")
        )
        records.append(
            _record("BloodPressureDiastolic", 82, "mmHg", f"2024-02-{day} 08:00:00 +0000")
        )
    records.append(_record("HeartRate", -40, "count/min", "2024-02-21 10:00:00 +0000"))
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<HealthData locale="en_GB">\n'
        ' <ExportDate value="2024-02-22 09:00:00 +0000"/>\n' + "".join(records) + "</HealthData>\n"
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("apple_health_export/export.xml", xml)
    return path


def _record(
    kind: str,
    value: float,
    unit: str,
    start: str,
    source: str = "Sam's Apple Watch",
    end: str | None = None,
) -> str:
    return (
        f' <Record type="HKQuantityTypeIdentifier{kind}" sourceName="{source}" unit="{unit}" '
        f'startDate="{start}" endDate="{end or start}" value="{value}"/>\n'
    )

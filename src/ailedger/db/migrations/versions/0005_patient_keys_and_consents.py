"""Patients keyed so that two sources never overwrite each other, and consent recorded at
the node.

- ``health_patient_consents``: one row per consent decision recorded at this node
  (``ailedger health consent``): patient, purpose, granted or withdrawn, who recorded it,
  when and on what basis. Append-only; the latest per patient and purpose is in force.
- Phenopackets were keyed by ``subject.id`` alone, which repeats across publications
  ("Patient 1"); they are keyed ``phenopacket-id/subject-id`` now. Each stored phenopacket
  row (and a link naming it) moves to its new key, its record's ``local_id`` with it; FHIR
  rows keep theirs (``Patient.id``). No row is dropped: the old keys were distinct, and a
  new key holds a ``/`` that no old phenopacket or FHIR key (a FHIR id has none) could
  hold, so no two rows meet.

The key rule is written out here, not imported, so this migration never changes when the
health code does.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_patients = sa.table(
    "health_patients", sa.column("local_id", sa.String), sa.column("record", sa.Text)
)
_links = sa.table("health_patient_links", sa.column("local_id", sa.String))


def upgrade() -> None:
    op.create_table(
        "health_patient_consents",
        sa.Column("seq", sa.Integer(), autoincrement=True),
        sa.Column("local_id", sa.String(256), nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("recorded_by", sa.String(200), nullable=False),
        sa.Column("recorded_at", sa.BigInteger(), nullable=False),
        sa.Column("basis", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_health_patient_consents"),
    )
    op.create_index("ix_health_patient_consents_local_id", "health_patient_consents", ["local_id"])
    _rekey_phenopackets(op.get_bind(), forward=True)


def downgrade() -> None:
    _rekey_phenopackets(op.get_bind(), forward=False)
    op.drop_index("ix_health_patient_consents_local_id", "health_patient_consents")
    op.drop_table("health_patient_consents")


def _new_key(record: dict[str, Any]) -> str | None:
    """The phenopacket key of a row keyed by ``subject.id`` (None: not such a row)."""
    resources = record.get("resources") or [{}]
    doc = resources[0] if isinstance(resources[0], dict) else {}
    subject = doc.get("subject")
    if (
        record.get("source") == "phenopacket"
        and isinstance(doc.get("id"), str)
        and isinstance(subject, dict)
        and subject.get("id") == record.get("local_id")
    ):
        return f"{doc['id']}/{record['local_id']}"[:256]
    return None


def _rekey_phenopackets(connection: sa.Connection, *, forward: bool) -> None:
    rows = connection.execute(sa.select(_patients.c.local_id, _patients.c.record)).all()
    for local_id, text in rows:
        record = json.loads(text)
        if forward:
            key = _new_key(record)
        else:  # back to subject.id, unless another row holds it already (then keep the new one)
            doc = (record.get("resources") or [{}])[0]
            subject = doc.get("subject") if isinstance(doc, dict) else None
            is_new = record.get("source") == "phenopacket" and isinstance(subject, dict)
            key = str(subject.get("id")) if is_new and isinstance(subject, dict) else None
            taken = (
                key is not None
                and connection.execute(
                    sa.select(_patients.c.local_id).where(_patients.c.local_id == key)
                ).first()
            )
            if key == local_id or taken:
                key = None
        if key is None:
            continue
        record["local_id"] = key
        connection.execute(
            _patients.update()
            .where(_patients.c.local_id == local_id)
            .values(local_id=key, record=json.dumps(record, separators=(",", ":")))
        )
        connection.execute(
            _links.update().where(_links.c.local_id == local_id).values(local_id=key)
        )

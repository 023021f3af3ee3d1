"""A person's wearable readings, kept at their own node: encrypted, deduplicated, provable.

An import (:func:`~ailedger.health.wearables.importer.import_readings`: streamed, checked,
deduplicated) becomes one *batch*:

- its readings as FHIR R4 Observations, one canonical JSON line each, encrypted into the
  home's blob store (STREAM over AES-256-GCM, :mod:`ailedger.store.objects`) under a fresh
  data key sealed to the home's own X25519 key (HPKE, RFC 9180): the node's disk holds no
  reading in the clear, and the plaintext exists only in a 0700 scratch directory during
  the import;
- an RFC 6962 Merkle root over those lines, written into the node's audit log (an entry
  of kind ``wearables-import`` with the batch id, the root and the count; no reading), so
  once the log is anchored on chain the person can later prove that a reading was held at
  that time (:meth:`WearableVault.prove`, :func:`verify_reading_proof`);
- one row per reading in ``health_wearable_readings``: an HMAC of its key under a key
  derived from the home's encryption key, so a later upload of the same readings is
  recognised without decrypting anything, and the table reveals nothing one could confirm
  by guessing a value and a time.

Order on a crash: blob, then audit entry, then the database rows in one transaction. A
crash before the commit leaves at most an unreferenced encrypted blob and an audit entry
naming a root nobody holds, never a batch half recorded; the import can be run again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import Engine, insert, select

from ailedger.audit.merkle import (
    inclusion_proof,
    leaf_hash,
    list_subtree_hasher,
    root_from_leaves,
    verify_inclusion,
)
from ailedger.db import transaction
from ailedger.health.wearables.errors import WearableImportError
from ailedger.health.wearables.importer import (
    DEFAULT_PRIORITY,
    ImportReport,
    detect_format,
    import_readings,
)
from ailedger.health.wearables.observations import Reading, reading_key, to_observation
from ailedger.health.wearables.vault_tables import batches_table, readings_table

if TYPE_CHECKING:
    from datetime import datetime

    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from ailedger.health.wearables.apple_health import ProgressCallback
    from ailedger.store.blobs import BlobStore

ENTRY_KIND = "wearables-import"
_DIGEST_INFO = b"ailedger wearables reading digest v1"
_CHUNK = 10_000  # reading rows per INSERT


class AuditLogLike(Protocol):
    """What the vault needs of the node's audit log."""

    def append(self, entry: dict[str, Any]) -> int: ...

    def receipt(self, index: int) -> dict[str, Any]: ...


@dataclass(frozen=True)
class StoredBatch:
    batch_id: str
    imported_at: int
    file_name: str
    format: str
    readings: int
    first_start: int
    last_end: int
    merkle_root: str
    audit_index: int
    report: dict[str, Any]
    provenance: dict[str, Any]


@dataclass(frozen=True)
class ImportOutcome:
    """What an import did: the batch stored (None when nothing new was accepted) and the
    report of every record of the file."""

    batch: StoredBatch | None
    report: ImportReport


class WearableVault:
    """The wearable batches of one home: ``engine`` its database, ``blobs`` its blob
    store, ``private_key`` its X25519 encryption key, ``owner`` its account."""

    def __init__(
        self, engine: Engine, blobs: BlobStore, private_key: X25519PrivateKey, owner: str
    ) -> None:
        self.engine, self.blobs, self.private_key, self.owner = engine, blobs, private_key, owner
        raw = private_key.private_bytes_raw()
        self._digest_key = hmac.new(raw, _DIGEST_INFO, hashlib.sha256).digest()
        self._public = private_key.public_key().public_bytes_raw()  # batches are sealed to it

    def digest(self, reading: Reading) -> str:
        """The keyed digest a reading is known by here (and its Observation's id)."""
        return hmac.new(self._digest_key, reading_key(reading), hashlib.sha256).hexdigest()

    # ------------------------------------------------------------ import

    def import_file(
        self,
        path: Path,
        audit: AuditLogLike,
        *,
        format: str = "auto",
        priority: Sequence[str] = DEFAULT_PRIORITY,
        now: datetime | None = None,
        progress: ProgressCallback | None = None,
    ) -> ImportOutcome:
        """Import ``path`` whole, or raise :class:`WearableImportError` with nothing kept."""
        fmt = detect_format(path) if format == "auto" else format
        held = self._known_digests()
        known_key = self._digest_key

        def known(key: bytes) -> bool:
            return hmac.new(known_key, key, hashlib.sha256).digest() in held

        with import_readings(
            path, format=fmt, priority=priority, now=now, progress=progress, known=known
        ) as result:
            if not len(result):
                return ImportOutcome(None, result.report)
            batch = self._store(path, fmt, result, result.report, audit)
        return ImportOutcome(batch, result.report)

    def _known_digests(self) -> set[bytes]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(readings_table.c.digest))
            return {bytes.fromhex(row[0]) for row in rows}

    def _store(
        self,
        path: Path,
        format: str,
        readings: Iterable[Reading],
        report: ImportReport,
        audit: AuditLogLike,
    ) -> StoredBatch:
        from ailedger.store.objects import encrypt_object

        batch_id = secrets.token_hex(16)
        scratch = Path(tempfile.mkdtemp(prefix="ailedger-wearables-"))
        try:
            plain = scratch / "observations.ndjson"
            digests, leaves, span = self._write_lines(readings, plain)
            stored = encrypt_object(plain, self.blobs, object_id=_object_id(batch_id), version=1)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        root, now = root_from_leaves(leaves), int(time.time())
        provenance = batch_provenance(batch_id, path, format, now, self.owner)
        entry = {
            "kind": ENTRY_KIND,
            "batch": batch_id,
            "root": root.hex(),
            "readings": len(digests),
            "provenance": _digest(provenance),
            "time": now,
        }
        index = audit.append(entry)
        batch = StoredBatch(
            batch_id,
            now,
            path.name[:512],
            format,
            len(digests),
            span[0],
            span[1],
            root.hex(),
            index,
            report.counts(),
            provenance,
        )
        self._record(batch, self._wrap(stored.data_key, batch_id), stored.blob.hash_hex, digests)
        return batch

    def _write_lines(
        self, readings: Iterable[Reading], plain: Path
    ) -> tuple[list[str], list[bytes], tuple[int, int]]:
        digests: list[str] = []
        leaves: list[bytes] = []
        first, last = 2**62, 0
        with plain.open("wb") as out:
            plain.chmod(0o600)
            for reading in readings:
                digest = self.digest(reading)
                line = observation_line(reading, digest)
                out.write(line + b"\n")
                digests.append(digest)
                leaves.append(leaf_hash(line))
                first = min(first, int(reading.start.timestamp()))
                last = max(last, int(reading.end.timestamp()))
        return digests, leaves, (first, last)

    def _wrap(self, data_key: bytes, batch_id: str) -> str:
        from ailedger.crypto.hpke import wrap_data_key

        wrapped = wrap_data_key(
            data_key,
            recipient_public=self._public,
            owner_private=self.private_key,
            object_id=_object_id(batch_id),
            version=1,
            requester=self.owner,
        )
        return wrapped.hex()

    def _record(self, batch: StoredBatch, wrapped: str, blob: str, digests: list[str]) -> None:
        row = {
            "batch_id": batch.batch_id,
            "imported_at": batch.imported_at,
            "file_name": batch.file_name,
            "format": batch.format,
            "readings": batch.readings,
            "first_start": batch.first_start,
            "last_end": batch.last_end,
            "blob": blob,
            "wrapped_key": wrapped,
            "merkle_root": batch.merkle_root,
            "audit_index": batch.audit_index,
            "report": json.dumps(batch.report, sort_keys=True),
            "provenance": json.dumps(batch.provenance, sort_keys=True),
        }
        with transaction(self.engine) as conn:
            conn.execute(insert(batches_table), [row])
            for start in range(0, len(digests), _CHUNK):
                conn.execute(
                    insert(readings_table),
                    [
                        {"digest": d, "batch_id": batch.batch_id, "position": start + i}
                        for i, d in enumerate(digests[start : start + _CHUNK])
                    ],
                )

    # ------------------------------------------------------------ reading back

    def batches(self) -> list[StoredBatch]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(batches_table).order_by(batches_table.c.imported_at))
            return [_batch(row._mapping) for row in rows]

    def observations(self, batch_id: str) -> list[bytes]:
        """The batch's Observation lines, decrypted (the canonical bytes its root covers)."""
        return self._decrypt(self._batch_row(batch_id))

    def _decrypt(self, row: dict[str, Any]) -> list[bytes]:
        from ailedger.crypto.hpke import unwrap_data_key
        from ailedger.store.objects import decrypt_object

        batch_id = str(row["batch_id"])
        key = unwrap_data_key(
            bytes.fromhex(str(row["wrapped_key"])),
            recipient_private=self.private_key,
            owner_public=self._public,
            object_id=_object_id(batch_id),
            version=1,
            requester=self.owner,
        )
        scratch = Path(tempfile.mkdtemp(prefix="ailedger-wearables-"))
        try:
            dest = scratch / "observations.ndjson"
            with self.blobs.open(str(row["blob"])) as reader:
                decrypt_object(reader, key, object_id=_object_id(batch_id), version=1, dest=dest)
            return dest.read_bytes().splitlines()
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def all_observations(self) -> Iterator[dict[str, Any]]:
        """Every Observation held here, batch by batch (decrypted one batch at a time)."""
        for batch in self.batches():
            for line in self.observations(batch.batch_id):
                yield json.loads(line)

    def _batch_row(self, batch_id: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(batches_table).where(batches_table.c.batch_id == batch_id)
            ).first()
        if row is None:
            raise WearableImportError(f"there is no wearable batch {batch_id} at this home")
        return dict(row._mapping)

    def prove(self, observation_id: str, audit: AuditLogLike) -> dict[str, Any]:
        """A self-contained proof that the Observation ``observation_id`` was held here:
        the Observation, its inclusion in its batch's Merkle root, and the audit receipt
        of the entry naming that root (checkable against the anchors on chain)."""
        with self.engine.connect() as conn:
            found = conn.execute(
                select(readings_table).where(readings_table.c.digest == observation_id.lower())
            ).first()
        if found is None:
            raise WearableImportError(
                f"no reading {observation_id!r} here: `ailedger wearables list` shows the "
                "batches, and each Observation's id is the one to prove"
            )
        batch_id, position = str(found.batch_id), int(found.position)
        row = self._batch_row(batch_id)
        lines = self._decrypt(row)
        leaves = [leaf_hash(line) for line in lines]
        path = inclusion_proof(position, len(leaves), list_subtree_hasher(leaves))
        return {
            "kind": "ailedger-wearable-proof",
            "observation": lines[position].decode(),
            "batch": batch_id,
            "position": position,
            "size": len(leaves),
            "root": str(row["merkle_root"]),
            "path": [p.hex() for p in path],
            "provenance": json.loads(str(row["provenance"])),
            "audit": audit.receipt(int(row["audit_index"])),
            "node": self.owner,
        }


def observation_line(reading: Reading, digest: str) -> bytes:
    """The Observation as one canonical JSON line: what the batch's Merkle root covers."""
    observation = {"id": digest, **to_observation(reading)}
    return json.dumps(observation, sort_keys=True, separators=(",", ":")).encode()


def verify_reading_proof(
    proof: dict[str, Any], check_receipt: Callable[[dict[str, Any]], list[str]]
) -> list[str]:
    """What is wrong with ``proof`` (empty when it holds): the Observation is in the
    batch's tree, the tree is the one the audit entry names, and ``check_receipt`` (the
    audit receipt against the node's key and anchors on chain) finds no problem."""
    try:
        line = str(proof["observation"]).encode()
        root, size, position = (
            bytes.fromhex(proof["root"]),
            int(proof["size"]),
            int(proof["position"]),
        )
        path = [bytes.fromhex(p) for p in proof["path"]]
        entry = json.loads(proof["audit"]["entry"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return [f"the proof is malformed: {exc!r}"]
    problems = []
    if not verify_inclusion(leaf_hash(line), position, size, path, root):
        problems.append("the Observation is not in the batch's Merkle tree at that position")
    if entry.get("kind") != ENTRY_KIND or entry.get("batch") != proof.get("batch"):
        problems.append("the audit entry is not this batch's import")
    elif entry.get("root") != root.hex() or entry.get("readings") != size:
        problems.append("the audit entry names another root or count than the proof's")
    elif entry.get("provenance") != _digest(proof.get("provenance")):
        problems.append("the batch's provenance is not the one the audit entry names")
    return problems + check_receipt(proof["audit"])


def batch_provenance(
    batch_id: str, path: Path, format: str, recorded: int, owner: str
) -> dict[str, Any]:
    """A FHIR R4 Provenance of an import batch: the batch (a collection Bundle of its
    Observations) derived from the file (by its SHA-256 and format), assembled by the
    person's node (by wallet). Nothing in it names a person or a device."""
    from datetime import UTC, datetime

    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(1 << 20):
            digest.update(chunk)
    return {
        "resourceType": "Provenance",
        "id": batch_id,
        "target": [{"reference": f"Bundle/{batch_id}"}],
        "recorded": datetime.fromtimestamp(recorded, UTC).isoformat().replace("+00:00", "Z"),
        "activity": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation",
                    "code": "CREATE",
                }
            ]
        },
        "agent": [
            {
                "type": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                            "code": "assembler",
                        }
                    ]
                },
                "who": {"identifier": {"system": "urn:ailedger:wallet", "value": owner}},
            }
        ],
        "entity": [
            {
                "role": "source",
                "what": {
                    "identifier": {"system": "urn:ailedger:sha256", "value": digest.hexdigest()},
                    "display": f"{format} export",
                },
            }
        ],
    }


def _digest(document: Any) -> str:
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def _object_id(batch_id: str) -> bytes:
    return hashlib.sha256(b"ailedger-wearables-batch:" + batch_id.encode()).digest()


def _batch(row: Any) -> StoredBatch:
    return StoredBatch(
        str(row["batch_id"]),
        int(row["imported_at"]),
        str(row["file_name"]),
        str(row["format"]),
        int(row["readings"]),
        int(row["first_start"]),
        int(row["last_end"]),
        str(row["merkle_root"]),
        int(row["audit_index"]),
        json.loads(str(row["report"])),
        json.loads(str(row["provenance"])),
    )

"""A model version's lineage: where it came from, as the passport signs it.

The document names the training jobs (with the output hash each revealed on chain), the
federated jobs (with the global model hash each anchored last), the datasets with the grant
and purpose under which each was used, the differential-privacy
charges spent on them, and the evaluation. It is canonical JSON (sorted keys, no spaces),
so the same lineage always hashes the same, and it is parsed strictly: a lineage file comes
from whoever handed over the model, so sizes are bounded and every field is checked.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from ailedger.ai.errors import LineageError
from ailedger.untrusted_json import UnreadableJsonError, parse_untrusted

MAX_LINEAGE_BYTES = 1 << 20
MAX_ENTRIES = 10_000
"""Most training jobs, datasets or privacy charges in one lineage."""
MAX_METRICS = 1_000
MAX_TEXT = 256
TRAINING_PURPOSE = "model-training"

_HASH32 = re.compile(r"0x[0-9a-f]{64}")


@dataclass(frozen=True)
class TrainingJob:
    job: int
    output_hash: str


@dataclass(frozen=True)
class FederatedTraining:
    """A federated job that trained the model, and the global model its last round anchored."""

    job: int
    model_hash: str


@dataclass(frozen=True)
class DatasetUse:
    dataset: str
    grant: int
    purpose: str = TRAINING_PURPOSE


@dataclass(frozen=True)
class PrivacyCharge:
    dataset: str
    charge_index: int
    epsilon: float


@dataclass(frozen=True)
class Evaluation:
    sha256: str
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Lineage:
    """What a model version was made from. Hashes are ``0x`` + 64 lowercase hex digits."""

    name: str
    version: str
    training_jobs: tuple[TrainingJob, ...]
    datasets: tuple[DatasetUse, ...]
    privacy: tuple[PrivacyCharge, ...]
    evaluation: Evaluation
    created_at: int
    # Present in the document only when not empty, so lineages without one hash as before.
    federated_jobs: tuple[FederatedTraining, ...] = ()

    def __post_init__(self) -> None:
        # Checked on construction too, so a lineage that would not read back is never signed.
        _check(self)

    def to_document(self) -> dict[str, Any]:
        federated = [{"job": f.job, "model_hash": f.model_hash} for f in self.federated_jobs]
        return ({"federated_jobs": federated} if federated else {}) | {
            "model": {"name": self.name, "version": self.version},
            "training_jobs": [
                {"job": j.job, "output_hash": j.output_hash} for j in self.training_jobs
            ],
            "datasets": [
                {"dataset": d.dataset, "grant": d.grant, "purpose": d.purpose}
                for d in self.datasets
            ],
            "privacy": [
                {"dataset": p.dataset, "charge_index": p.charge_index, "epsilon": p.epsilon}
                for p in self.privacy
            ],
            "evaluation": {
                "sha256": self.evaluation.sha256,
                "metrics": dict(self.evaluation.metrics),
            },
            "created_at": self.created_at,
        }

    def to_json(self) -> bytes:
        """Canonical JSON: sorted keys, no insignificant whitespace, UTF-8."""
        text = json.dumps(
            self.to_document(),
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=False,
        )
        return text.encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes) -> Lineage:
        """Parse and check a lineage document; raises :class:`LineageError` naming the field."""
        if len(data) > MAX_LINEAGE_BYTES:
            raise LineageError(f"the lineage is {len(data)} bytes, over {MAX_LINEAGE_BYTES}")
        try:
            doc = parse_untrusted(data)
        except UnreadableJsonError as exc:
            raise LineageError(f"the lineage is not readable JSON: {exc}") from None
        keys = {"model", "training_jobs", "datasets", "privacy", "evaluation", "created_at"}
        federated = isinstance(doc, dict) and "federated_jobs" in doc
        top = _object(doc, "lineage", keys | ({"federated_jobs"} if federated else set()))
        model = _object(top["model"], "model", {"name", "version"})
        evaluation = _object(top["evaluation"], "evaluation", {"sha256", "metrics"})
        metrics = evaluation["metrics"]
        if not isinstance(metrics, dict) or len(metrics) > MAX_METRICS:
            raise LineageError(
                f"evaluation.metrics must be an object of at most {MAX_METRICS} numbers"
            )
        return cls(
            name=_str(model["name"], "model.name"),
            version=_str(model["version"], "model.version"),
            training_jobs=tuple(
                TrainingJob(_int(o["job"], "job"), o["output_hash"])
                for o in _entries(top["training_jobs"], "training_jobs", {"job", "output_hash"})
            ),
            datasets=tuple(
                DatasetUse(o["dataset"], _int(o["grant"], "grant"), o["purpose"])
                for o in _entries(top["datasets"], "datasets", {"dataset", "grant", "purpose"})
            ),
            privacy=tuple(
                PrivacyCharge(
                    o["dataset"],
                    _int(o["charge_index"], "charge_index"),
                    _number(o["epsilon"], "epsilon"),
                )
                for o in _entries(top["privacy"], "privacy", {"dataset", "charge_index", "epsilon"})
            ),
            evaluation=Evaluation(
                evaluation["sha256"],
                {_str(k, "metric name"): _number(v, f"metric {k}") for k, v in metrics.items()},
            ),
            created_at=_int(top["created_at"], "created_at"),
            federated_jobs=tuple(
                FederatedTraining(_int(o["job"], "federated job"), o["model_hash"])
                for o in _entries(
                    top.get("federated_jobs", []), "federated_jobs", {"job", "model_hash"}
                )
            ),
        )


def _check(lineage: Lineage) -> None:
    _str(lineage.name, "model.name")
    _str(lineage.version, "model.version")
    _int(lineage.created_at, "created_at")
    for what, items in (
        ("training_jobs", lineage.training_jobs),
        ("datasets", lineage.datasets),
        ("privacy", lineage.privacy),
        ("federated_jobs", lineage.federated_jobs),
    ):
        if len(items) > MAX_ENTRIES:
            raise LineageError(f"{what} has {len(items)} entries, over {MAX_ENTRIES}")
    for j in lineage.training_jobs:
        _int(j.job, "training_jobs.job")
        _hash(j.output_hash, "training_jobs.output_hash")
    for f in lineage.federated_jobs:
        _int(f.job, "federated_jobs.job")
        _hash(f.model_hash, "federated_jobs.model_hash")
    for d in lineage.datasets:
        _hash(d.dataset, "datasets.dataset")
        _int(d.grant, "datasets.grant")
        if d.purpose != TRAINING_PURPOSE:
            raise LineageError(
                f"datasets.purpose is {d.purpose!r}: a model may only be "
                f"trained on data granted for {TRAINING_PURPOSE!r}"
            )
    for p in lineage.privacy:
        _hash(p.dataset, "privacy.dataset")
        _int(p.charge_index, "privacy.charge_index")
        if _number(p.epsilon, "privacy.epsilon") <= 0:
            raise LineageError("privacy.epsilon must be positive")
    _hash(lineage.evaluation.sha256, "evaluation.sha256")
    if len(lineage.evaluation.metrics) > MAX_METRICS:
        raise LineageError(f"evaluation.metrics has more than {MAX_METRICS} entries")
    for k, v in lineage.evaluation.metrics.items():
        _str(k, "metric name")
        _number(v, f"metric {k}")


def _object(value: Any, what: str, keys: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict) or set(value) != keys:
        got = sorted(value) if isinstance(value, dict) else type(value).__name__
        raise LineageError(f"{what} must be an object with exactly {sorted(keys)}, got {got}")
    return value


def _entries(value: Any, what: str, keys: set[str]) -> list[dict[str, Any]]:
    if not isinstance(value, list) or len(value) > MAX_ENTRIES:
        raise LineageError(f"{what} must be a list of at most {MAX_ENTRIES} entries")
    return [_object(v, f"an entry of {what}", keys) for v in value]


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_TEXT:
        raise LineageError(f"{what} must be a non-empty string of at most {MAX_TEXT} characters")
    return value


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**256:
        raise LineageError(f"{what} must be a non-negative integer, got {value!r:.40}")
    return value


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise LineageError(f"{what} must be a finite number, got {value!r:.40}")
    return float(value)


def _hash(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _HASH32.fullmatch(value):
        raise LineageError(
            f"{what} must be 0x followed by 64 lowercase hex digits, got {value!r:.80}"
        )
    return value

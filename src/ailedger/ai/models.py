"""Registering a model version with its passport, and verifying one end to end.

:func:`register_model` turns a training job's output (a compute job's, or the global
model a federated job anchored last) into a registered model in one call:

1. It reads the lineage from the chain (the jobs, their settled output hashes or anchored
   model, the datasets and grants they read, a federated job's privacy charges), never
   from what the caller says.
2. It hashes the evaluation report.
3. It signs the passport (OpenSSF model-signing over the model's files, its card and its
   lineage) with the home's passport key.
4. It registers the version in ModelRegistry, whose contract checks the compute jobs
   again (federated jobs are checked by the verifier against FederatedJobs).

The bundle and the public key are kept under the home (``models/<id>/``).

:func:`verify_model` is what anyone runs with the model's directory, its bundle and the
owner's public key:

1. The stock signature verification over every file (a card edited after signing is
   named).
2. The bundle's hash must be registered on chain, which gives the version and its owner.
3. The card and evaluation must match their registered hashes.
4. Every lineage hop is checked against the chain (:mod:`ailedger.ai.provenance`).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ailedger.ai.lineage import Evaluation, FederatedTraining, Lineage, PrivacyCharge
from ailedger.ai.passport import Passport, passport_key, sign_passport, verify_passport
from ailedger.ai.provenance import (
    Hop,
    check_lineage,
    federated_lineage,
    is_job_output,
    jobs_lineage,
)
from ailedger.errors import ConfigError
from ailedger.federated.model_file import anchored_model_mismatch
from ailedger.untrusted_json import parse_untrusted

if TYPE_CHECKING:
    from ailedger.chain.contracts.model_registry import ModelVersion
    from ailedger.session import Session

MAX_EVALUATION_BYTES = 1024 * 1024
DEFAULT_CARD = "# {name}\n\nVersion {version}. Trained by {jobs} on ailedger.\n"


@dataclass(frozen=True)
class Registered:
    model_id: bytes
    version: int
    passport: Passport
    public_key: Path
    tx_hash: str
    block: int
    lineage: Lineage


@dataclass(frozen=True)
class ModelCheck:
    """The verdict of :func:`verify_model`: the registered version, and each hop."""

    version: ModelVersion | None
    lineage: Lineage | None
    hops: list[Hop] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.version is not None and all(h.ok for h in self.hops)


def sha256_hex(data: bytes) -> str:
    return "0x" + hashlib.sha256(data).hexdigest()


def read_evaluation(path: Path | None) -> tuple[Evaluation, bytes]:
    """The evaluation report's digest and metrics (a JSON object of numbers), and the
    hash of its canonical metrics; no report: an empty evaluation."""
    if path is None:
        empty = json.dumps({}, sort_keys=True).encode()
        return Evaluation(sha256_hex(b""), {}), hashlib.sha256(empty).digest()
    raw = path.read_bytes()
    if len(raw) > MAX_EVALUATION_BYTES:
        raise ConfigError(f"{path} is over {MAX_EVALUATION_BYTES} bytes; give the metrics only")
    try:
        report = parse_untrusted(raw)
    except ValueError as exc:
        raise ConfigError(f"{path} is not JSON: {exc}") from None
    metrics = report.get("metrics", report) if isinstance(report, dict) else None
    if not isinstance(metrics, dict) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in metrics.values()
    ):
        raise ConfigError(
            f'{path} must be a JSON object of numbers, e.g. {{"accuracy": 0.95}} '
            '(or hold one under "metrics")'
        )
    numbers = {str(k): float(v) for k, v in metrics.items()}
    canonical = json.dumps(numbers, sort_keys=True, separators=(",", ":")).encode()
    return Evaluation(sha256_hex(raw), numbers), hashlib.sha256(canonical).digest()


def register_model(
    session: Session,
    model_dir: Path,
    jobs: Sequence[int],
    *,
    name: str,
    evaluation: Path | None = None,
    card: str | None = None,
    model_id: bytes | None = None,
    price: int = 0,
    period: int = 0,
    federated_job: int | None = None,
) -> Registered:
    """Sign ``model_dir``'s passport and register it as the next version of ``model_id``
    (a new model when None). The lineage's jobs must be this home's, completed; a
    ``federated_job`` this home's and finished, its last anchored model in ``model_dir``."""
    from ailedger.chain.contracts.model_registry import new_model_id

    if not model_dir.is_dir():
        raise ConfigError(f"{model_dir} is not a directory; give the model's directory")
    registry = session.model_registry
    if model_id is not None and registry.owner_of(model_id) is None:
        raise ConfigError(f"there is no model 0x{model_id.hex()} on chain to add a version to")
    model_id = model_id or new_model_id()
    latest = registry.latest(model_id)
    version = latest.version + 1 if latest else 1
    training, datasets = jobs_lineage(session, jobs)
    if training and not is_job_output(model_dir, training[-1].output_hash):
        raise ConfigError(
            f"{model_dir} is not the output job {training[-1].job} settled on (its hash "
            "differs): register the directory `ailedger job result` wrote, unchanged"
        )
    federated: tuple[FederatedTraining, ...] = ()
    privacy: tuple[PrivacyCharge, ...] = ()
    made_by = f"compute job(s) {list(jobs)}"
    if federated_job is not None:
        fl, fl_datasets, privacy = federated_lineage(session, federated_job)
        mismatch = _federated_model_hop(session, model_dir, fl).reason
        if mismatch:
            raise ConfigError(
                f"{model_dir} is not the model federated job {federated_job} anchored last "
                f"({mismatch}): register the directory `ailedger fl run` wrote, unchanged"
            )
        federated, datasets = (fl,), datasets + fl_datasets
        made_by = f"federated job {federated_job}" + (f" and {made_by}" if jobs else "")
    report, metrics_hash = read_evaluation(evaluation)
    lineage = Lineage(
        name=name,
        version=str(version),
        training_jobs=training,
        datasets=datasets,
        privacy=privacy,
        evaluation=report,
        created_at=int(time.time()),
        federated_jobs=federated,
    )
    text = (
        card if card is not None else DEFAULT_CARD.format(name=name, version=version, jobs=made_by)
    )
    where = session.home.path / "models" / model_id.hex()
    where.mkdir(parents=True, exist_ok=True)
    key, public_pem = passport_key(session.home.path)
    public_key = where / "passport.pub.pem"
    public_key.write_bytes(public_pem)
    passport = sign_passport(
        model_dir,
        lineage,
        text,
        key,
        where / f"v{version}.sig",
        digest_cache=where / "digests.json",
    )
    version_no, result = registry.register_version(
        model_id,
        bytes.fromhex(passport.sha256[2:]),
        hashlib.sha256(text.encode()).digest(),
        bytes.fromhex(report.sha256[2:]),
        metrics_hash,
        list(jobs),
        price,
        period,
    )
    return Registered(
        model_id, version_no, passport, public_key, result.tx_hash, result.block_number, lineage
    )


def verify_model(session: Session, model_dir: Path, bundle: Path, public_pem: bytes) -> ModelCheck:
    """Check a model end to end; raises a ``PassportError`` when a file or the
    signature is wrong, and answers each chain hop otherwise."""
    verified = verify_passport(model_dir, bundle, public_pem)
    record = session.model_registry.by_passport(bytes.fromhex(verified.sha256[2:]))
    if record is None:
        registered = Hop("the passport is registered on chain", False, "no version has it")
        return ModelCheck(None, verified.lineage, [registered])
    hops = [
        Hop(f"registered as version {record.version} of 0x{record.model_id.hex()}", True),
        Hop(
            "the version is current",
            not record.retired,
            "its owner retired this version",
        ),
        Hop(
            "the card is the registered one",
            hashlib.sha256(verified.card.encode()).digest() == record.card_hash,
            "the card's hash differs from the registered one",
        ),
        Hop(
            "the evaluation is the registered one",
            verified.lineage.evaluation.sha256 == "0x" + record.eval_hash.hex(),
            "the evaluation's hash differs from the registered one",
        ),
    ]
    hops += [_federated_model_hop(session, model_dir, fl) for fl in verified.lineage.federated_jobs]
    if verified.lineage.training_jobs:
        last = verified.lineage.training_jobs[-1]
        hops.append(
            Hop(
                f"the model's files are job {last.job}'s settled output",
                is_job_output(model_dir, last.output_hash),
                "the files differ from the output the market settled on",
            )
        )
    hops += check_lineage(session, record.owner, verified.lineage, record.jobs)
    return ModelCheck(record, verified.lineage, hops)


def _federated_model_hop(session: Session, model_dir: Path, fl: FederatedTraining) -> Hop:
    what = f"the model is federated job {fl.job}'s last anchored model, for its task"
    job = session.federated_jobs.job(fl.job)
    if job is None:
        return Hop(what, False, f"there is no federated job {fl.job} on chain")
    mismatch = anchored_model_mismatch(model_dir, fl.model_hash, job.task.task_hash)
    return Hop(what, mismatch is None, mismatch or "")


def model_summary(version: Any) -> dict[str, Any]:
    """A registered version as JSON-ready fields (for ``model show`` and ``model list``)."""
    return {
        "model": "0x" + version.model_id.hex(),
        "version": version.version,
        "owner": version.owner,
        "passport": "0x" + version.passport_hash.hex(),
        "jobs": list(version.jobs),
        "price": str(version.price),
        "period": version.period,
        "retired": version.retired,
    }

"""The ModelRegistry contract: versions of a model, each with its passport hash and a
lineage of ComputeMarket jobs that the contract checks on chain.

A model is a random 32-byte id owned by whoever registered its first version; each
version records the sha256 of the signed passport bundle, the hashes of its card,
evaluation report and metrics, the training jobs and a licence (a price per period, 0 =
free). The contract refuses a job that is not the registrant's own, not COMPLETED, over
data granted for another purpose than model training, or already backing another model
(see ``contracts/ModelRegistry.vy``). The ``VersionRegistered`` events carry every field
plus the union of the jobs' datasets, so :meth:`ModelRegistryClient.history` rebuilds the
registry from events alone.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ailedger.chain.contracts._base import ContractClient
from ailedger.chain.transactions import TxResult
from ailedger.errors import ConfigError, ContractError, TransactionRevertedError

# The contract's bounds, checked here first so a bad registration fails before it costs gas.
MAX_JOBS = 8
MAX_PERIOD = 10 * 365 * 86400
_UINT256 = 2**256

# Each revert reason of the contract, and what the caller can do about it.
_ADVICE = {
    "models: passport already registered": "sign a new passport bundle for this version",
    "models: caller is not the model owner": "only its owner adds versions: use a new model id",
    "models: unknown job": "cite the id of a job posted on this chain's ComputeMarket",
    "models: job of another requester": "cite only jobs this account posted",
    "models: job not completed": "wait until the job is COMPLETED, then register",
    "models: job data not for model training": (
        "cite only jobs whose dataset grants are for the model-training purpose"
    ),
    "models: job backs another model": "a job backs one model only: cite it there",
    "models: job listed twice": "list each job once",
    "models: unknown model": "check the model id: nobody registered it",
    "models: unknown version": "check the version number: see the model's latest",
    "models: version already retired": "nothing to do: it is retired",
}


class ModelRegistryError(TransactionRevertedError):
    """The ModelRegistry refused a registration or a retirement (a lineage job, the
    passport, the owner, the version); the message says which and what to do."""


def new_model_id() -> bytes:
    """A fresh random model id (32 bytes): nobody can guess or pre-empt it."""
    return secrets.token_bytes(32)


@dataclass(frozen=True)
class ModelVersion:
    """One version of a model, as the contract records it."""

    model_id: bytes
    version: int
    owner: str
    passport_hash: bytes
    card_hash: bytes
    eval_hash: bytes
    metrics_hash: bytes
    jobs: tuple[int, ...]
    price: int
    period: int
    registered_at: int
    retired: bool

    @property
    def free(self) -> bool:
        return self.price == 0


@dataclass(frozen=True)
class VersionEvent(ModelVersion):
    """One ``VersionRegistered`` event (``retired`` if a later ``VersionRetired`` says so):
    the version as recorded, with the union of its jobs' datasets and where it landed."""

    datasets: tuple[bytes, ...]
    block: int
    tx_hash: str


def _check_hash(name: str, value: bytes, nonzero: bool = False) -> None:
    if not isinstance(value, bytes) or len(value) != 32:
        raise ConfigError(f"the {name} must be 32 bytes, not {value!r}")
    if nonzero and not any(value):
        raise ConfigError(f"the {name} must not be all zeros")


def _check_registration(
    model_id: bytes, hashes: dict[str, bytes], jobs: Sequence[int], price: int, period: int
) -> None:
    _check_hash("model id", model_id, nonzero=True)
    for name, value in hashes.items():
        _check_hash(name, value, nonzero=name == "passport hash")
    if len(jobs) > MAX_JOBS:
        raise ConfigError(f"a version cites at most {MAX_JOBS} training jobs, not {len(jobs)}")
    if any(not 0 < job < _UINT256 for job in jobs):
        raise ConfigError(f"job ids are positive integers, not {list(jobs)}")
    if len(set(jobs)) != len(jobs):
        raise ConfigError(f"each job is cited once, not {list(jobs)}")
    if not 0 <= price < _UINT256:
        raise ConfigError(f"the licence price is 0 (free) or more base units, not {price}")
    if price == 0 and period != 0:
        raise ConfigError("a free licence (price 0) has no period: pass period=0")
    if price != 0 and not 0 < period <= MAX_PERIOD:
        raise ConfigError(
            f"a priced licence needs a period of 1 .. {MAX_PERIOD} seconds, not {period}"
        )


class ModelRegistryClient(ContractClient):
    """Model versions and their lineage: owners register and retire versions; anyone
    reads a version, a model's latest, the version of a passport, and the history."""

    contract_name = "ModelRegistry"

    # --------------------------------------------------------------- owners

    def register_version(
        self,
        model_id: bytes,
        passport_hash: bytes,
        card_hash: bytes,
        eval_hash: bytes,
        metrics_hash: bytes,
        jobs: Sequence[int],
        price: int = 0,
        period: int = 0,
    ) -> tuple[int, TxResult]:
        """Register the next version of ``model_id`` (creating the model, owned by this
        account, on its first version); returns the version number.

        ConfigError for what can be checked here (32-byte hashes, a nonzero model id and
        passport hash, at most 8 distinct jobs, licence terms); ModelRegistryError if
        the contract refuses a job, the passport or the caller."""
        from web3.logs import DISCARD

        hashes = {
            "passport hash": passport_hash,
            "card hash": card_hash,
            "eval hash": eval_hash,
            "metrics hash": metrics_hash,
        }
        _check_registration(model_id, hashes, jobs, price, period)
        try:
            result = self._write(
                "register_version", model_id, *hashes.values(), list(jobs), price, period
            )
        except TransactionRevertedError as exc:
            if "models:" not in str(exc) and self._read("passport_used", passport_hash):
                # Passed the estimate, then lost the passport to a transaction mined first.
                exc = TransactionRevertedError(f"models: passport already registered ({exc})")
            raise _refusal(exc, model_id) from exc
        events = self._contract.events.VersionRegistered().process_receipt(
            result.receipt, errors=DISCARD
        )
        if not events:
            raise ContractError(f"registration {result.tx_hash} emitted no VersionRegistered")
        return int(events[0]["args"]["version"]), result

    def retire_version(self, model_id: bytes, version: int) -> TxResult:
        """Retire a version for good (owner only); it stays on record, marked retired."""
        _check_hash("model id", model_id)
        try:
            return self._write("retire_version", model_id, version)
        except TransactionRevertedError as exc:
            raise _refusal(exc, model_id) from exc

    # ---------------------------------------------------------------- views

    def owner_of(self, model_id: bytes) -> str | None:
        """The model's owner; None for a model nobody registered."""
        owner, _ = self._read("model", model_id)
        return None if int(owner, 16) == 0 else str(owner)

    def version(self, model_id: bytes, version: int) -> ModelVersion | None:
        """One version; None if the model or the version does not exist."""
        owner, count = self._read("model", model_id)
        if not 1 <= version <= int(count):
            return None
        raw = self._read("version", model_id, version)
        jobs = self._read("version_jobs", model_id, version)
        return _model_version(model_id, version, str(owner), _fields(raw), jobs)

    def latest(self, model_id: bytes) -> ModelVersion | None:
        """The model's newest version (retired or not); None for an unknown model."""
        _, count = self._read("model", model_id)
        return self.version(model_id, int(count)) if int(count) else None

    def by_passport(self, passport_hash: bytes) -> ModelVersion | None:
        """The version registered with this passport hash; None if there is none."""
        model_id, version = self._read("passport_version", passport_hash)
        return self.version(bytes(model_id), int(version)) if int(version) else None

    def history(self, from_block: int = 0, owner: str | None = None) -> list[VersionEvent]:
        """Every version registered since ``from_block`` (only ``owner``'s, if given), in
        chain order, rebuilt from the events alone: retirements are applied."""
        filters = {} if owner is None else {"owner": self.web3.to_checksum_address(owner)}
        try:
            registered = self._contract.events.VersionRegistered().get_logs(
                from_block=from_block, argument_filters=filters
            )
            retired_logs = self._contract.events.VersionRetired().get_logs(
                from_block=from_block, argument_filters=filters
            )
        except Exception as exc:
            raise ContractError(f"reading ModelRegistry events failed: {exc}") from exc
        retired = {(bytes(e["args"]["model_id"]), int(e["args"]["version"])) for e in retired_logs}
        times: dict[int, int] = {}
        found = []
        for e in sorted(registered, key=lambda e: (e["blockNumber"], e["logIndex"])):
            a, block = e["args"], int(e["blockNumber"])
            if block not in times:
                times[block] = int(self.web3.eth.get_block(block)["timestamp"])
            key = (bytes(a["model_id"]), int(a["version"]))
            found.append(
                VersionEvent(
                    model_id=key[0],
                    version=key[1],
                    owner=str(a["owner"]),
                    passport_hash=bytes(a["passport_hash"]),
                    card_hash=bytes(a["card_hash"]),
                    eval_hash=bytes(a["eval_hash"]),
                    metrics_hash=bytes(a["metrics_hash"]),
                    jobs=tuple(int(j) for j in a["jobs"]),
                    price=int(a["price"]),
                    period=int(a["period"]),
                    registered_at=times[block],
                    retired=key in retired,
                    datasets=tuple(bytes(d) for d in a["datasets"]),
                    block=block,
                    tx_hash="0x" + bytes(e["transactionHash"]).hex(),
                )
            )
        return found


_VERSION_FIELDS = (
    "passport_hash",
    "card_hash",
    "eval_hash",
    "metrics_hash",
    "price",
    "period",
    "registered_at",
    "retired",
)


def _fields(raw: Any) -> dict[str, Any]:
    """The contract's ``Version`` struct by field name (web3 returns a tuple or a dict)."""
    if isinstance(raw, dict):
        return dict(raw)
    return dict(zip(_VERSION_FIELDS, raw, strict=True))


def _model_version(
    model_id: bytes, version: int, owner: str, f: dict[str, Any], jobs: Sequence[int]
) -> ModelVersion:
    return ModelVersion(
        model_id=model_id,
        version=version,
        owner=owner,
        passport_hash=bytes(f["passport_hash"]),
        card_hash=bytes(f["card_hash"]),
        eval_hash=bytes(f["eval_hash"]),
        metrics_hash=bytes(f["metrics_hash"]),
        jobs=tuple(int(j) for j in jobs),
        price=int(f["price"]),
        period=int(f["period"]),
        registered_at=int(f["registered_at"]),
        retired=bool(f["retired"]),
    )


def _refusal(exc: TransactionRevertedError, model_id: bytes) -> TransactionRevertedError:
    """The contract's reason with what to do about it; other reverts pass unchanged."""
    text = str(exc)
    for reason, advice in _ADVICE.items():
        if reason in text:
            return ModelRegistryError(
                f"the model registry refused model 0x{model_id.hex()}: "
                f"{reason.removeprefix('models: ')}; {advice}"
            )
    return exc

"""ailedger: a ledger for AI on EVM smart contracts.

The names below are the SDK: what a program needs to open a home, share data under a
policy, rent compute and match rare-disease patients. They are the same functions the
CLI calls; docs/sdk.md walks through them. ::

    from ailedger import load_settings, open_session, publish

Importing the package has no side effects and pulls in no heavy dependency: each name
is loaded from its module on first use (PEP 562), so ``ailedger --help`` stays fast and
a program pays only for the parts it touches. Type checkers see the real imports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

__all__ = [
    "PURPOSES",
    "AccessRefusedError",
    "AiledgerError",
    "BackPressureError",
    "Catalog",
    "CatalogEntry",
    "ChainError",
    "ChainUnreachableError",
    "ConfigError",
    "DiseaseRanker",
    "FederatedAnswer",
    "Fetched",
    "GrantStatus",
    "HealthNode",
    "HomeError",
    "JobBundle",
    "JobSpecError",
    "JobStateError",
    "JobStatus",
    "LockedError",
    "NodeHome",
    "OutputMismatchError",
    "PeerError",
    "PeerUnreachableError",
    "PhenotypeError",
    "PhenotypeProfile",
    "Policy",
    "Published",
    "Session",
    "Settings",
    "Submitted",
    "TamperedDataError",
    "TransactionRejectedError",
    "TransactionRevertedError",
    "WrongPassphraseError",
    "cancel_job",
    "check_receipt",
    "federated_match",
    "fetch",
    "fetch_result",
    "format_amount",
    "job_logs",
    "job_status",
    "load_settings",
    "open_session",
    "parse_amount",
    "publish",
    "purpose_bit",
    "purpose_mask",
    "request_access",
    "submit_job",
]

# Public name -> (module, name there). The compute requester's verbs get names that say
# what they act on: `ailedger.status` or `ailedger.submit` would not.
_EXPORTS: dict[str, tuple[str, str]] = {
    # settings, homes, sessions
    "Settings": ("ailedger.settings", "Settings"),
    "load_settings": ("ailedger.settings", "load_settings"),
    "NodeHome": ("ailedger.keys.home", "NodeHome"),
    "Session": ("ailedger.session", "Session"),
    "open_session": ("ailedger.session", "open_session"),
    "parse_amount": ("ailedger.units", "parse_amount"),
    "format_amount": ("ailedger.units", "format_amount"),
    # errors a caller handles
    "AiledgerError": ("ailedger.errors", "AiledgerError"),
    "ConfigError": ("ailedger.errors", "ConfigError"),
    "HomeError": ("ailedger.errors", "HomeError"),
    "WrongPassphraseError": ("ailedger.errors", "WrongPassphraseError"),
    "LockedError": ("ailedger.errors", "LockedError"),
    "ChainError": ("ailedger.errors", "ChainError"),
    "ChainUnreachableError": ("ailedger.errors", "ChainUnreachableError"),
    "TransactionRejectedError": ("ailedger.errors", "TransactionRejectedError"),
    "TransactionRevertedError": ("ailedger.errors", "TransactionRevertedError"),
    "PeerError": ("ailedger.errors", "PeerError"),
    "PeerUnreachableError": ("ailedger.errors", "PeerUnreachableError"),
    "BackPressureError": ("ailedger.errors", "BackPressureError"),
    "AccessRefusedError": ("ailedger.sharing.requester", "AccessRefusedError"),
    "TamperedDataError": ("ailedger.sharing.requester", "TamperedDataError"),
    "JobSpecError": ("ailedger.compute.jobs", "JobSpecError"),
    "JobStateError": ("ailedger.compute.requester.job", "JobStateError"),
    "OutputMismatchError": ("ailedger.compute.transfer", "OutputMismatchError"),
    "PhenotypeError": ("ailedger.health.phenotype", "PhenotypeError"),
    # data sharing
    "PURPOSES": ("ailedger.chain.contracts.data_market", "PURPOSES"),
    "purpose_bit": ("ailedger.chain.contracts.data_market", "purpose_bit"),
    "purpose_mask": ("ailedger.chain.contracts.data_market", "purpose_mask"),
    "Policy": ("ailedger.chain.contracts.data_market", "Policy"),
    "GrantStatus": ("ailedger.chain.contracts.data_market", "GrantStatus"),
    "publish": ("ailedger.sharing.owner", "publish"),
    "Published": ("ailedger.sharing.owner", "Published"),
    "Catalog": ("ailedger.sharing.catalog", "Catalog"),
    "CatalogEntry": ("ailedger.sharing.catalog", "CatalogEntry"),
    "request_access": ("ailedger.sharing.requester", "request_access"),
    "fetch": ("ailedger.sharing.requester", "fetch"),
    "Fetched": ("ailedger.sharing.requester", "Fetched"),
    "check_receipt": ("ailedger.sharing.requester", "check_receipt"),
    # compute
    "JobBundle": ("ailedger.compute.jobs", "JobBundle"),
    "JobStatus": ("ailedger.chain.contracts.compute_market", "JobStatus"),
    "submit_job": ("ailedger.compute.requester.job", "submit"),
    "Submitted": ("ailedger.compute.requester.job", "Submitted"),
    "job_status": ("ailedger.compute.requester.job", "status"),
    "job_logs": ("ailedger.compute.requester.job", "logs"),
    "fetch_result": ("ailedger.compute.requester.job", "fetch_result"),
    "cancel_job": ("ailedger.compute.requester.job", "cancel"),
    # health
    "HealthNode": ("ailedger.health.node", "HealthNode"),
    "PhenotypeProfile": ("ailedger.health.profile", "PhenotypeProfile"),
    "DiseaseRanker": ("ailedger.health.diagnosis", "DiseaseRanker"),
    "federated_match": ("ailedger.health.federation", "federated_match"),
    "FederatedAnswer": ("ailedger.health.federation", "FederatedAnswer"),
}

if TYPE_CHECKING:
    from ailedger.chain.contracts.compute_market import JobStatus
    from ailedger.chain.contracts.data_market import (
        PURPOSES,
        GrantStatus,
        Policy,
        purpose_bit,
        purpose_mask,
    )
    from ailedger.compute.jobs import JobBundle, JobSpecError
    from ailedger.compute.requester.job import JobStateError, Submitted, fetch_result
    from ailedger.compute.requester.job import cancel as cancel_job
    from ailedger.compute.requester.job import logs as job_logs
    from ailedger.compute.requester.job import status as job_status
    from ailedger.compute.requester.job import submit as submit_job
    from ailedger.compute.transfer import OutputMismatchError
    from ailedger.errors import (
        AiledgerError,
        BackPressureError,
        ChainError,
        ChainUnreachableError,
        ConfigError,
        HomeError,
        LockedError,
        PeerError,
        PeerUnreachableError,
        TransactionRejectedError,
        TransactionRevertedError,
        WrongPassphraseError,
    )
    from ailedger.health.diagnosis import DiseaseRanker
    from ailedger.health.federation import FederatedAnswer, federated_match
    from ailedger.health.node import HealthNode
    from ailedger.health.phenotype import PhenotypeError
    from ailedger.health.profile import PhenotypeProfile
    from ailedger.keys.home import NodeHome
    from ailedger.session import Session, open_session
    from ailedger.settings import Settings, load_settings
    from ailedger.sharing.catalog import Catalog, CatalogEntry
    from ailedger.sharing.owner import Published, publish
    from ailedger.sharing.requester import (
        AccessRefusedError,
        Fetched,
        TamperedDataError,
        check_receipt,
        fetch,
        request_access,
    )
    from ailedger.units import format_amount, parse_amount


def _load(name: str) -> object:
    """Import the module that defines public ``name`` and keep the value here, so the
    next access is an ordinary attribute lookup."""
    try:
        module, attribute = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'ailedger' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if not TYPE_CHECKING:
    # Hidden from type checkers: they see the imports above, and a module-level
    # __getattr__ would make them accept any misspelt name as `object`.
    __getattr__ = _load

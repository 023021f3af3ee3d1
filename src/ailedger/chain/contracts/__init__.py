"""Typed clients for ailedger's contracts: one module and one class per contract.

Each client is bound to a deployed address and, for writes, a local account; a
:class:`~ailedger.session.Session` hands out one of each (``session.token``,
``session.data_market``, ...). The value classes here are the contracts' own data
(structs, enums, bit sets) in Python form.
"""

from ailedger.chain.contracts._base import ContractClient
from ailedger.chain.contracts.audit_anchor import AuditAnchorClient
from ailedger.chain.contracts.compute_market import (
    Assignment,
    ComputeMarketClient,
    JobInfo,
    JobRecord,
    JobStatus,
    JobTerms,
    MarketEvent,
)
from ailedger.chain.contracts.compute_policy import ComputePolicyClient, OutputPolicy
from ailedger.chain.contracts.compute_providers import ComputeProvidersClient, ProviderInfo
from ailedger.chain.contracts.data_market import (
    DataMarketClient,
    DatasetRecord,
    GrantRecord,
    GrantStatus,
    Policy,
)
from ailedger.chain.contracts.federated_jobs import (
    AnchoredRound,
    FederatedJob,
    FederatedJobsClient,
    FederatedJobsError,
    FederatedTask,
    JobState,
    Membership,
)
from ailedger.chain.contracts.key_registry import KeyRegistryClient
from ailedger.chain.contracts.model_registry import (
    ModelRegistryClient,
    ModelRegistryError,
    ModelVersion,
    VersionEvent,
)
from ailedger.chain.contracts.node_registry import NodeRegistryClient
from ailedger.chain.contracts.patients import LinkStatus, PatientLink, PatientsClient
from ailedger.chain.contracts.privacy_ledger import (
    ChargeKind,
    ChargeRecord,
    PrivacyBudget,
    PrivacyLedgerClient,
    charges_digest,
)
from ailedger.chain.contracts.token import TokenClient

__all__ = [
    "AnchoredRound",
    "Assignment",
    "AuditAnchorClient",
    "ChargeKind",
    "ChargeRecord",
    "ComputeMarketClient",
    "ComputePolicyClient",
    "ComputeProvidersClient",
    "ContractClient",
    "DataMarketClient",
    "DatasetRecord",
    "FederatedJob",
    "FederatedJobsClient",
    "FederatedJobsError",
    "FederatedTask",
    "GrantRecord",
    "GrantStatus",
    "JobInfo",
    "JobRecord",
    "JobState",
    "JobStatus",
    "JobTerms",
    "KeyRegistryClient",
    "LinkStatus",
    "MarketEvent",
    "Membership",
    "ModelRegistryClient",
    "ModelRegistryError",
    "ModelVersion",
    "NodeRegistryClient",
    "OutputPolicy",
    "PatientLink",
    "PatientsClient",
    "Policy",
    "PrivacyBudget",
    "PrivacyLedgerClient",
    "ProviderInfo",
    "TokenClient",
    "VersionEvent",
    "charges_digest",
]

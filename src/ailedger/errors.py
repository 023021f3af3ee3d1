"""Errors a caller of ailedger can act on.

Every failure that crosses a public boundary is an :class:`AiledgerError`; errors of
web3, httpx, SQLAlchemy or py-evm are translated where they are caught (``raise ... from``),
so callers never need to know which library sits underneath. Each message says what
happened and what to do next.

Errors a node answers over HTTP carry their status as ``http_status``: the node's exception
handlers (``ailedger.peer.http_errors``) read it there, so each status is written once, here,
and the modules that raise them know no HTTP.

Hierarchy::

    AiledgerError
    ├── ConfigError                 bad setting, flag or file
    ├── HomeError                   node home missing, incomplete or already present
    ├── KeyError_                   keystore problems
    │   └── WrongPassphraseError    the passphrase does not open the keystore
    ├── LockedError                 the action needs the unlocked account or encryption key
    ├── ContractError               compile failure, unknown deployment
    │   └── NotDeployedError        no contract manifest for this chain
    ├── ChainError                  talking to a chain failed
    │   ├── ChainUnreachableError   the RPC endpoint does not answer
    │   ├── ChainLockedError        another process holds the embedded chain directory
    │   ├── TransactionRejectedError  the node refused a transaction (nonce, funds, ...)
    │   └── TransactionRevertedError  the transaction was mined but reverted
    │       ├── chain.contracts.model_registry.ModelRegistryError  the model registry
    │       │                       refused a version: lineage job, passport, owner
    │       └── chain.contracts.federated_jobs.FederatedJobsError  the federated jobs
    │                               contract refused (says why and what to do)
    ├── PrivacyBudgetError          a charge to a privacy budget is invalid or refused
    │   ├── StaleChargeError        another release charged first (also a
    │   │                           TransactionRevertedError): re-read, recompute, retry
    │   └── BudgetExceededError     the charge would spend past the dataset's cap (also a
    │                               TransactionRevertedError): do not release
    ├── PeerError                   talking to another node failed
    │   ├── PeerUnreachableError    it has no URL on chain, or does not answer there
    │   ├── peer.client.SignedRequestError  it did not take a signed request (says why)
    │   └── peer.client.AnswerTooLargeError  it answered with more bytes than a peer may send
    ├── BackPressureError           503 too much pending work; retry after ``retry_after`` s
    ├── RequestRefusedError         a node refused a peer's request; ``reason`` says why
    │   ├── MalformedRequestError   400 the request cannot be read (not JSON, wrong shape)
    │   ├── UnauthenticatedError    401 no valid signature or token: sign the request
    │   ├── ForbiddenError          403 the signer is known but may not do this
    │   ├── NotFoundError           404 no such job, dataset or entry at this node
    │   │   └── GoneError           410 it was here and is no longer
    │   ├── NotAcceptableError      406 the request's API version is not one this node speaks
    │   ├── PayloadTooLargeError    413 the body or a part it names exceeds the node's limit
    │   ├── UnsupportedMediaTypeError  415 the body is not in a content type the route takes
    │   ├── UnprocessableError      422 readable, but not a valid request (``details``: where)
    │   └── TooManyRequestsError    429 this peer sent too many; retry after ``retry_after`` s
    │
    │   defined beside the code that raises them (one module each):
    ├── crypto.errors.CryptoError   DecryptionError (WrongObjectError), CiphertextFormatError,
    │                               HpkeError: tampered, truncated or misaddressed ciphertext
    ├── store.errors.StoreError     InvalidBlobHashError, BlobNotFoundError, UnsafeArchiveError
    ├── db.DatabaseError            the node's database cannot be opened, migrated or used
    ├── audit.errors.AuditLogError  AuditLogCorruptError: storage disagrees with a checkpoint
    │                               or is not a readable log
    ├── untrusted_json.UnreadableJsonError  JSON from outside that is not JSON, or nests
    │                               too deep to parse safely (also a ValueError)
    │
    │   sharing/
    ├── access_request.InvalidRequestError   bad, stale or foreign-signed request
    ├── gateway.AccessDeniedError            the gateway refused: a ForbiddenError,
    │   ├── UnknownDatasetError              ... and a NotFoundError
    │   └── UnreadableRequestError           ... and a MalformedRequestError
    ├── gateway.ServeFailedError             500 allowed, but this node could not serve it
    ├── reads.ReadLimitReachedError          a ForbiddenError: the grant has no read left
    ├── requester.AccessRefusedError         the requester's view of that refusal
    ├── requester.TamperedDataError          ciphertext differs from its on-chain hash
    │
    │   compute/
    ├── jobs.JobSpecError                    job.toml or the bundle is malformed (names the field)
    │   └── UnsafeBundleError                a path, link or tar entry could escape the bundle
    ├── outputs.OutputPolicyViolation        an output breaks its dataset's release rules: withheld
    ├── output_schema.OutputSchemaError      job.toml's declared output is malformed (says where)
    ├── transfer.OutputMismatchError         a decrypted output does not hash to its revealed value
    ├── requester.job.JobStateError          the job is not in a state that allows the action
    ├── provider.standing.StandingError      not a provider, stake locked or too small for it
    ├── provider.runner.JobFetchError        the bundle could not be fetched or fails its hash
    ├── provider.c2d.ComputeRefusedError     this node will not run the job over its data
    ├── provider.sandbox.SandboxError        a job could not be started in the sandbox
    │   └── ConfinementUnavailableError      no confinement here, and unconfined not allowed
    │
    │   health/
    ├── phenotype.PhenotypeError             a profile or an HPO term cannot be used
    │   ├── UnknownTermError                 the term is not in the ontology
    │   │   └── MalformedTermError           the text is not an HPO id at all
    │   └── annotations.AnnotationsMissingError  the HPO annotations were never fetched
    ├── cases.CaseFileError                  a case file is not a Phenopacket v2 (says why)
    ├── patients.PatientStoreError           the patient records cannot be read or written
    │   └── PatientNotFoundError             no patient with that id
    ├── patients.InvalidRecordError          an imported record is malformed (says where)
    ├── deidentify.DeidentificationError     de-identification could not finish
    ├── patient_links.PatientLinkError       a patient link cannot be made, accepted or
    │   │                                    used (says what to do)
    │   ├── AlreadyLinkedError               the record already has an open link
    │   ├── NoSuchLinkError                  no such link on chain, or it has ended
    │   └── NotTheNamedPatientError          the wallet is not the one the link names
    ├── wearables.errors.WearableImportError  a wearable export is malformed, hostile,
    │                                        too large or truncated (says where): nothing
    │                                        imported (also a ConfigError)
    │
    │   privacy/
    ├── errors.PrivacyError                  base of the privacy capability's errors
    │   ├── QueryError                       a query or training spec is invalid (says how to fix)
    │   └── ChargeError                      a charge is invalid (NaN, <= 0, too large, unknown)
    ├── desk.BudgetExhaustedError            a ForbiddenError: the release would pass the cap
    ├── desk.NotPrivateError                 a ForbiddenError: the dataset has no privacy budget
    ├── buyer.ReleaseRefusedError            the owner's node refused a release (says why)
    │
    │   ai/
    ├── errors.PassportError                 a model passport cannot be made, read or trusted
    │   ├── SignatureInvalidError            bad signature, or files changed/added/removed
    │   │                                    after signing (``files`` names them)
    │   ├── LineageError                     the signed lineage is missing or malformed
    │   └── ModelDirectoryError              a link or special file in the model directory
    ├── errors.DecisionError                 a decision cannot be recorded, proven or exported
    │   ├── ExplanationError                 its explanation does not add up: never logged
    │   └── RetentionError                   a salt asked to be destroyed before retention ends
    ├── market.OfferRefusedError             an offer's claims fail on chain, or a fetch is not
    │                                        what it claims: nothing paid, nothing kept
    ├── market.PredictionRefusedError        the owner's node refused predictions, or its
    │                                        receipts do not prove them
    │
    │   federated/
    ├── aggregation.AggregationError         updates, weights or rule parameters unusable
    │   └── InvalidUpdateError               one update is unusable (``index``): drop it
    ├── contribution.ContributionError       scores or a payout cannot be computed as asked
    ├── logistic.ModelInputError             weights, features, labels or bounds disagree
    ├── flower.FlowerError                   Flower's venv is missing, or a Flower process or
    │                                        run could not start or finish (says which, log path)
    │
    │   web/
    ├── api.market.UntrustedAnswerError      502 the model owner's node failed or its answer
    │                                        does not prove itself
    └── siwe.SiweFormatError                 a MalformedRequestError: not an EIP-4361
                                             sign-in message (names the wrong line)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class AiledgerError(Exception):
    """Base of every error ailedger raises on purpose."""


class ConfigError(AiledgerError):
    """A setting, flag or configuration file is invalid."""


class HomeError(AiledgerError):
    """The node home is missing, incomplete, or would be overwritten."""


class KeyError_(AiledgerError):
    """A keystore or key file cannot be used."""


class WrongPassphraseError(KeyError_):
    """The passphrase does not decrypt the keystore."""


class LockedError(AiledgerError):
    """The action signs or decrypts, but the session was opened without the passphrase."""


class ContractError(AiledgerError):
    """A contract cannot be compiled, found or used."""


class NotDeployedError(ContractError):
    """The contracts are not deployed on the selected chain."""


class ChainError(AiledgerError):
    """Talking to the chain failed."""


class ChainUnreachableError(ChainError):
    """The JSON-RPC endpoint does not answer."""


class ChainLockedError(ChainError):
    """Another process already has the embedded chain directory open."""


class TransactionRejectedError(ChainError):
    """The node refused to accept a transaction."""


class TransactionRevertedError(ChainError):
    """A transaction was mined but its execution reverted."""


class PrivacyBudgetError(AiledgerError):
    """A charge to a dataset's privacy budget is invalid (NaN, negative, empty)."""


class StaleChargeError(PrivacyBudgetError, TransactionRevertedError):
    """The charge named a stale index: another release was charged first. Read the budget
    again, recompute the spend with the new charge list, and charge again."""


class BudgetExceededError(PrivacyBudgetError, TransactionRevertedError):
    """The charge would spend past the dataset's privacy cap: the release must not leave."""


class PeerError(AiledgerError):
    """Talking to another node (a gateway, a requester's node, an MME peer) failed."""


class PeerUnreachableError(PeerError):
    """The other node has no URL on chain, or does not answer at it."""


class BackPressureError(AiledgerError):
    """Too much work is pending; the caller should retry later."""

    http_status = 503

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RequestRefusedError(AiledgerError):
    """A node refused a peer's request; ``reason`` is what the peer is told, ``details``
    any structured detail it also gets (the fields of an invalid document)."""

    http_status = 400

    def __init__(self, reason: str, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.details = dict(details or {})


class MalformedRequestError(RequestRefusedError):
    """The request cannot be read: its body is not JSON or not of the expected shape."""

    http_status = 400


class UnauthenticatedError(RequestRefusedError):
    """The request carries no valid signature or token; sign it with a known account."""

    http_status = 401


class ForbiddenError(RequestRefusedError):
    """The signer is known but may not do this (not assigned, not registered, no grant)."""

    http_status = 403


class NotFoundError(RequestRefusedError):
    """What the request names (a job, a dataset, an audit entry) is not at this node."""

    http_status = 404


class GoneError(NotFoundError):
    """What the request names was at this node and is no longer."""

    http_status = 410


class PayloadTooLargeError(RequestRefusedError):
    """The body, or a part the request names, is beyond this node's limit."""

    http_status = 413


class UnsupportedMediaTypeError(RequestRefusedError):
    """The body is in a content type the route does not take."""

    http_status = 415


class NotAcceptableError(RequestRefusedError):
    """The request asks for a version of the API this node does not speak; the refusal
    names the one it does."""

    http_status = 406


class UnprocessableError(RequestRefusedError):
    """The body is readable but not a valid request; ``details`` say what is wrong."""

    http_status = 422


class TooManyRequestsError(RequestRefusedError):
    """This peer sent more requests than the node takes from one address; retry after
    ``retry_after`` seconds (RFC 6585 section 4)."""

    http_status = 429

    def __init__(self, reason: str, retry_after: float) -> None:
        super().__init__(reason)
        self.retry_after = retry_after

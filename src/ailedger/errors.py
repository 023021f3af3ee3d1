"""Errors a caller of ailedger can act on.

Every failure that crosses a public boundary is an :class:`AiledgerError`; errors of
web3, httpx, SQLAlchemy or py-evm are translated where they are caught (``raise ... from``),
so callers never need to know which library sits underneath. Each message says what
happened and what to do next.

Hierarchy::

    AiledgerError
    ├── ConfigError                 bad setting, flag or file
    ├── HomeError                   node home missing, incomplete or already present
    ├── KeyError_                   keystore problems
    │   └── WrongPassphraseError    the passphrase does not open the keystore
    ├── ContractError               compile failure, unknown deployment
    │   └── NotDeployedError        no contract manifest for this chain
    ├── ChainError                  talking to a chain failed
    │   ├── ChainUnreachableError   the RPC endpoint does not answer
    │   ├── ChainLockedError        another process holds the embedded chain directory
    │   ├── TransactionRejectedError  the node refused a transaction (nonce, funds, ...)
    │   └── TransactionRevertedError  the transaction was mined but reverted
    ├── BackPressureError           too much pending work; retry after ``retry_after`` s
    │
    │   defined beside the code that raises them:
    ├── crypto.errors.CryptoError   DecryptionError (WrongObjectError), CiphertextFormatError,
    │                               HpkeError: tampered, truncated or misaddressed ciphertext
    ├── store.errors.StoreError     InvalidBlobHashError, BlobNotFoundError, UnsafeArchiveError
    ├── db.DatabaseError            the node's database cannot be opened or migrated
    ├── audit.log.AuditLogError     AuditLogCorruptError: storage disagrees with a checkpoint
    ├── sharing.access_request.InvalidRequestError   bad, stale or foreign-signed request
    ├── sharing.gateway.AccessDeniedError            the gateway refused (reason logged)
    ├── sharing.requester.AccessRefusedError         the requester's view of that refusal
    └── sharing.requester.TamperedDataError          ciphertext differs from its on-chain hash
"""

from __future__ import annotations


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


class BackPressureError(AiledgerError):
    """Too much work is pending; the caller should retry later."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after

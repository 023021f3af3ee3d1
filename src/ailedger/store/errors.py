"""Errors of ``ailedger.store``; all are :class:`~ailedger.errors.AiledgerError`.

Hierarchy (below ``AiledgerError``)::

    StoreError                 the blob store cannot do what was asked
    ├── InvalidBlobHashError   a blob name is not 64 lowercase hex characters
    ├── BlobNotFoundError      no blob with that hash
    └── UnsafeArchiveError     a packed directory holds a path or entry that is refused
"""

from __future__ import annotations

from ailedger.errors import AiledgerError


class StoreError(AiledgerError):
    """The blob store cannot do what was asked."""


class InvalidBlobHashError(StoreError):
    """A blob name is not a lowercase hex SHA-256 digest."""


class BlobNotFoundError(StoreError):
    """The store holds no blob with that hash."""


class UnsafeArchiveError(StoreError):
    """A directory archive holds an entry that could escape or is not a plain file/dir."""

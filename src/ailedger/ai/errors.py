"""Errors of the ai capability: a passport that cannot be made, read or trusted.

Hierarchy::

    AiledgerError
    └── PassportError               a passport cannot be made, read or trusted
        ├── SignatureInvalidError   the signature or a file's digest does not match: the
        │                           model was changed after signing, or signed by another key
        ├── LineageError            the signed lineage is missing or malformed
        └── ModelDirectoryError     the directory holds a link or a special file
"""

from __future__ import annotations

from ailedger.errors import AiledgerError


class PassportError(AiledgerError):
    """A model passport cannot be made, read or trusted."""


class SignatureInvalidError(PassportError):
    """The passport does not verify: do not use the model; ask its publisher for the files
    and passport they signed."""

    def __init__(self, message: str, files: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.files = files
        """The files model-signing named as extra, missing or changed."""


class LineageError(PassportError):
    """The lineage document is missing or malformed: fix it and sign again."""


class ModelDirectoryError(PassportError):
    """The model directory holds something that cannot be signed (a link, a socket)."""

"""Errors of the ai capability: a passport that cannot be made, read or trusted, and a
decision that cannot be explained, logged, proven or redacted.

Hierarchy::

    AiledgerError
    ├── PassportError               a passport cannot be made, read or trusted
    │   ├── SignatureInvalidError   the signature or a file's digest does not match: the
    │   │                           model was changed after signing, or signed by another key
    │   ├── LineageError            the signed lineage is missing or malformed
    │   └── ModelDirectoryError     the directory holds a link or a special file
    └── DecisionError               a decision cannot be recorded, proven or exported
        ├── ExplanationError        the explanation does not add up: refused, never logged
        └── RetentionError          a salt was asked to be destroyed before retention ended
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


class DecisionError(AiledgerError):
    """A decision cannot be recorded, proven or exported (the message says why)."""


class ExplanationError(DecisionError):
    """The explanation does not add up to the model's output: it is refused, never logged."""


class RetentionError(DecisionError):
    """A salt was asked to be destroyed before its retention period ended."""

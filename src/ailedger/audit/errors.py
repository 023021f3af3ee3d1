"""Failures of the audit log: it cannot be opened, written or read as a log."""

from __future__ import annotations

from ailedger.errors import AiledgerError


class AuditLogError(AiledgerError):
    """The audit log cannot be opened or written (closed, locked, corrupt, disk failure)."""


class AuditLogCorruptError(AuditLogError):
    """The stored log disagrees with its own last checkpoint, or is not a readable log:
    run ``ailedger audit verify`` to locate why."""

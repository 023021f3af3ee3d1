"""Failures of decision receipts: a decision that cannot be explained, logged or redacted."""

from __future__ import annotations

from ailedger.errors import AiledgerError


class DecisionError(AiledgerError):
    """A decision cannot be recorded, proven or exported (the message says why)."""


class ExplanationError(DecisionError):
    """The explanation does not add up to the model's output: it is refused, never logged."""


class RetentionError(DecisionError):
    """A salt was asked to be destroyed before its retention period ended."""

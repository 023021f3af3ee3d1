"""Errors of the privacy capability: a bad query or training spec, a bad charge."""

from __future__ import annotations

from ailedger.errors import AiledgerError


class PrivacyError(AiledgerError):
    """Base of the errors raised by :mod:`ailedger.privacy`."""


class QueryError(PrivacyError):
    """A query or training spec (or the data it names) cannot be used; the message says
    which field is wrong and how to fix it."""


class ChargeError(PrivacyError):
    """A charge description is invalid (NaN, infinite, negative or zero, an unknown
    mechanism, too large, or not in the canonical encoding)."""

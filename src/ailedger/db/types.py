"""Column types for values the chain holds: a uint256 kept exactly on every backend.

No SQL integer holds a uint256 (PostgreSQL's BIGINT and SQLite's INTEGER stop at 2^63),
and SQLite's NUMERIC falls back to an 8-byte float past that, so a value the contract
accepts (a read limit of 2^70, a price near 2^256) would overflow or round. A
:class:`Uint256` column stores the decimal digits as text, zero-padded to the 78 digits
of 2^256 - 1: exact on both backends, and ordered as the numbers are, so ``ORDER BY``
and primary keys keep working.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

UINT256_DIGITS = 78  # len(str(2**256 - 1))
UINT256_MAX = 2**256 - 1


def as_uint256(value: Any) -> int:
    """``value`` as an int in 0..2^256-1; ValueError for anything else (bools included)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected a uint256, got {type(value).__name__} {value!r:.80}")
    if not 0 <= value <= UINT256_MAX:
        raise ValueError(f"{value!r:.80} is outside the uint256 range")
    return value


class Uint256(TypeDecorator[int]):
    """An unsigned 256-bit integer, stored as 78 zero-padded decimal digits."""

    impl = String(UINT256_DIGITS)
    cache_ok = True

    def process_bind_param(self, value: int | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return str(as_uint256(value)).zfill(UINT256_DIGITS)

    def process_result_value(self, value: Any, dialect: Dialect) -> int | None:
        return None if value is None else int(value)

    @property
    def python_type(self) -> type[int]:
        return int

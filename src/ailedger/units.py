"""Token amounts: people write decimals ("12.5"), contracts count base units (10**-18)."""

from __future__ import annotations

import re
from decimal import MAX_EMAX, MIN_EMIN, Context, Decimal, InvalidOperation

from ailedger.errors import ConfigError

DECIMALS = 18
MAX_UINT256 = 2**256 - 1
"""The largest amount a contract can hold (every amount is a ``uint256`` on chain)."""
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_MAX_TEXT = 100  # a uint256 has 78 digits; longer text is a mistake, not an amount
# Exact for every accepted text: the default context keeps 28 digits and would round
# 12345678901.123456789012345678 silently.
_EXACT = Context(prec=_MAX_TEXT + DECIMALS + 2, Emin=MIN_EMIN, Emax=MAX_EMAX)


def parse_amount(text: str, unit: str = "AIL") -> int:
    """``"12.5"`` -> 12_500_000_000_000_000_000; refuses negatives, sub-unit dust and
    amounts no ``uint256`` can hold (``1e400``), before any of them reaches a contract."""
    shown = text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + "..."
    if len(text) > _MAX_TEXT:
        raise ConfigError(f"{shown!r} is not an amount; write a number such as 12.5")
    # ASCII decimals only: Decimal() alone also takes "NaN", "1_000" and other scripts'
    # digits ("١٢"), none of which a person means as an amount of money.
    if not _NUMBER.fullmatch(text.strip()):
        raise ConfigError(f"{shown!r} is not an amount; write a number such as 12.5")
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ConfigError(f"{shown!r} is not an amount; write a number such as 12.5") from None
    if value < 0:
        raise ConfigError(f"the amount must be a positive number of {unit}, not {shown!r}")
    # The exponent first: int() of 1e999999999 would build a billion-digit integer.
    too_large = f"{shown} {unit} is more than any account can hold"
    if value and value.adjusted() + DECIMALS >= len(str(MAX_UINT256)):
        raise ConfigError(too_large)
    base = value.scaleb(DECIMALS, _EXACT)
    if base != base.to_integral_value(context=_EXACT):
        raise ConfigError(f"{shown} {unit} has more than {DECIMALS} decimal places")
    if int(base) > MAX_UINT256:
        raise ConfigError(too_large)
    return int(base)


def format_amount(base_units: int, unit: str = "AIL") -> str:
    """12_500_000_000_000_000_000 -> ``"12.5 AIL"``."""
    text = format(Decimal(base_units).scaleb(-DECIMALS, _EXACT), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{text} {unit}"

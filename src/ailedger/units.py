"""Token amounts: people write decimals ("12.5"), contracts count base units (10**-18)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from ailedger.errors import ConfigError

DECIMALS = 18
_SCALE = Decimal(10) ** DECIMALS


def parse_amount(text: str, unit: str = "AIL") -> int:
    """``"12.5"`` -> 12_500_000_000_000_000_000; refuses negatives and sub-unit dust."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ConfigError(f"{text!r} is not an amount; write a number such as 12.5") from None
    if not value.is_finite() or value < 0:
        raise ConfigError(f"the amount must be a positive number of {unit}, not {text!r}")
    base = value * _SCALE
    if base != base.to_integral_value():
        raise ConfigError(f"{text} {unit} has more than {DECIMALS} decimal places")
    return int(base)


def format_amount(base_units: int, unit: str = "AIL") -> str:
    """12_500_000_000_000_000_000 -> ``"12.5 AIL"``."""
    text = format(Decimal(base_units) / _SCALE, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{text} {unit}"

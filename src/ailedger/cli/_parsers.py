"""The command line's values, read and bounded before any work: addresses, ids, durations.

Each parser takes the text as typed and returns what the contracts take, or raises
:class:`~ailedger.errors.ConfigError` saying what to write instead. Nothing here loads a
chain library, so a refused value costs nothing. Amounts are read by
:func:`ailedger.units.parse_amount`; purposes by ``data_market.purpose_bit``.
"""

from __future__ import annotations

import re
from typing import Any

import typer

from ailedger.errors import ConfigError
from ailedger.units import MAX_UINT256

MAX_GRANT_DURATION_S = 100 * 365 * 86400
"""DataMarket's ``MAX_DURATION``: a grant longer than a century is a mistake."""
MAX_READS = 2**63 - 1
"""Most reads a grant may allow: what every store (a SQL ``BIGINT``) can hold."""
MAX_PORT = 65535
MIN_REPUTATION, MAX_REPUTATION = -(2**255), 2**255 - 1
"""ComputeMarket keeps reputation as an ``int256``: completed - failed - 2 * slashed."""
MAX_WAIT_S = 7 * 86400.0
"""Longest a command waits on the market; ``nan`` and ``inf`` are refused with the rest."""

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_HEX32 = re.compile(r"(?:0x)?[0-9a-fA-F]{64}")
_DURATION = re.compile(r"([0-9]{1,12})([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _shown(text: str) -> str:
    return repr(text if len(text) <= 80 else text[:80] + "...")


def address(text: str) -> str:
    """An Ethereum address in its EIP-55 checksum form. Mixed case *is* a checksum and
    must be right (a typo in it is caught here, not paid to); all-lower or all-upper hex
    carries none and is accepted as written."""
    from eth_utils.address import is_checksum_address, to_checksum_address

    if not _ADDRESS.fullmatch(text):
        raise ConfigError(
            f"{_shown(text)} is not an Ethereum address (0x followed by 40 hex digits)"
        )
    digits = text[2:]
    if digits != digits.lower() and digits != digits.upper() and not is_checksum_address(text):
        raise ConfigError(
            f"{_shown(text)} fails its EIP-55 checksum (a mistyped letter?); "
            "check the address, or write it in lower case to skip the check"
        )
    return str(to_checksum_address(text))


def hex32(text: str, what: str) -> bytes:
    """32 bytes written as 64 hex digits, with or without ``0x``."""
    if not _HEX32.fullmatch(text):
        raise ConfigError(f"{_shown(text)} is not {what}")
    return bytes.fromhex(text.removeprefix("0x"))


def dataset_id(text: str) -> bytes:
    return hex32(text, "a dataset id (0x followed by 64 hex digits)")


def bundle_hash(text: str) -> bytes:
    return hex32(text, "a bundle hash (0x + 64 hex digits, as `job check` prints it)")


def duration(text: str) -> int:
    """``90s``, ``30m``, ``12h``, ``30d`` -> seconds, at least 1 and at most a century."""
    found = _DURATION.fullmatch(text)
    if found is None or int(found[1]) == 0:
        raise ConfigError(f"{_shown(text)} is not a duration; write e.g. 90s, 30m, 12h or 30d")
    seconds = int(found[1]) * _UNITS[found[2]]
    if seconds > MAX_GRANT_DURATION_S:
        raise ConfigError(f"{text} is longer than the longest grant, 36500d")
    return seconds


def max_reads(value: int) -> int:
    if not 0 <= value <= MAX_READS:
        raise ConfigError(f"--max-reads must be 0 (unlimited) .. {MAX_READS}, not {value}")
    return value


def uint256_argument(help_text: str) -> Any:
    """A positional id the contracts count in ``uint256`` (request, job, log index):
    anything else is a usage error before any connection is made."""
    return typer.Argument(..., min=0, max=MAX_UINT256, help=help_text)


def uint256_option(flag: str, help_text: str) -> Any:
    """A required ``--flag`` holding such an id."""
    return typer.Option(..., flag, min=0, max=MAX_UINT256, help=help_text)


def port_option(default: int, help_text: str) -> Any:
    return typer.Option(default, min=0, max=MAX_PORT, help=help_text)

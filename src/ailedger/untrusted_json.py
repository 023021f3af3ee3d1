"""JSON from outside (imported files, peers' bodies, job outputs), parsed without crashing.

``json.loads`` recurses in C once per nesting level, and the Ethereum libraries raise
Python's recursion limit to 100,000 at import (py-evm, py_ecc), so a document of 100,000
``[`` overflows the C stack and kills the process (SIGSEGV) instead of raising. No document
ailedger reads nests anywhere near :data:`MAX_DEPTH`, so the nesting is measured *before*
parsing, in linear time, and anything deeper is refused. Integers longer than Python's
4,300-digit conversion limit raise ``ValueError`` inside the parser; they are refused the
same way, as :class:`UnreadableJsonError`.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

from ailedger.errors import AiledgerError

MAX_DEPTH = 100
"""Deepest nesting of arrays and objects accepted (FHIR, MME and Phenopackets stay under 20)."""

# A JSON string, or an unterminated one running to the end of the text: brackets inside
# strings do not nest. Written as an unrolled loop so that matching stays linear.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


class UnreadableJsonError(AiledgerError, ValueError):
    """The text is not JSON, or is JSON too deep or too large to parse safely.

    A ``ValueError`` as well, like ``json.JSONDecodeError``, so code that refuses bad JSON
    with ``except ValueError`` refuses these too."""


def nesting_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in ``text``, outside strings. For text
    that is not JSON it may overstate the depth the parser would reach, never understate it."""
    structure = _STRING.sub("", text)
    steps = map(_STEP.__getitem__, _BRACKET.findall(structure))
    return max(accumulate(steps, initial=0))


def check_nesting(data: str | bytes | bytearray, max_depth: int = MAX_DEPTH) -> str:
    """``data`` as text, if it nests at most ``max_depth`` levels (JSON or not: what a
    JSON parser would make of it is bounded); raises :class:`UnreadableJsonError` if it
    nests deeper or is not text. For a gate in front of parsers it does not control, such
    as a web framework's own body parsing."""
    if isinstance(data, bytes | bytearray):
        try:  # the same decoding json.loads applies to bytes (RFC 8259 section 8.1)
            text = bytes(data).decode(json.detect_encoding(data), "surrogatepass")
        except (UnicodeDecodeError, LookupError) as exc:
            raise UnreadableJsonError(f"not JSON text: {exc}") from None
    else:
        text = data
    # Cheap bound first: fewer brackets than the limit cannot nest deeper than it.
    if text.count("[") + text.count("{") > max_depth:
        depth = nesting_depth(text)
        if depth > max_depth:
            raise UnreadableJsonError(
                f"JSON nested {depth} levels deep; at most {max_depth} are accepted"
            )
    return text


def parse_untrusted(data: str | bytes | bytearray, max_depth: int = MAX_DEPTH) -> Any:
    """Parse JSON from outside: ``json.loads`` after checking that it nests at most
    ``max_depth`` levels. Raises :class:`UnreadableJsonError`, never crashes."""
    text = check_nesting(data, max_depth)
    try:
        return json.loads(text)
    except RecursionError:
        raise UnreadableJsonError(
            f"JSON nested too deeply; at most {max_depth} levels are accepted"
        ) from None
    except ValueError as exc:  # JSONDecodeError, or an integer over the digit limit
        raise UnreadableJsonError(f"not JSON: {exc}") from None

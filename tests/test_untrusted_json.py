"""JSON from outside: read exactly when it is JSON, refused (never a crash) when it is
not, nests too deep, or holds an integer past Python's digit limit."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ailedger.untrusted_json import MAX_DEPTH, UnreadableJsonError, nesting_depth, parse_untrusted

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=20,
)


@given(json_values)
def test_untrusted_json_reads_what_json_writes(value: object) -> None:
    text = json.dumps(value)
    assert parse_untrusted(text) == value
    assert parse_untrusted(text.encode("utf-16")) == value


@given(st.integers(min_value=0, max_value=3 * MAX_DEPTH), st.text(alphabet="[]{}\"\\'a"))
def test_nesting_is_measured_outside_strings(depth: int, noise: str) -> None:
    document = "[" * depth + json.dumps(noise) + "]" * depth
    assert nesting_depth(document) == depth
    if depth <= MAX_DEPTH:
        assert parse_untrusted(document) is not None
    else:
        with pytest.raises(UnreadableJsonError, match="nested"):
            parse_untrusted(document)


@given(st.text() | st.binary())
def test_untrusted_json_parses_or_refuses(data: str | bytes) -> None:
    with contextlib.suppress(UnreadableJsonError):
        parse_untrusted(data)


def test_a_hundred_thousand_brackets_are_refused_with_the_recursion_limit_raised() -> None:
    """In a child process: without the bound, json.loads overflows the C stack (SIGSEGV)."""
    child = (
        "import eth, sys\n"  # py-evm raises the recursion limit to 100,000, as in every command
        "from ailedger.untrusted_json import parse_untrusted\n"
        "try:\n"
        "    parse_untrusted('[' * 100_000 + ']' * 100_000)\n"
        "except ValueError as exc:\n"
        "    print('refused:', exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True)
    assert done.returncode == 0 and "refused: JSON nested 100000 levels" in done.stdout

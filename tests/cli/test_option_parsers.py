"""Every parser of a command-line value, fuzzed: any text gives a value in range or a
:class:`ConfigError`, never another exception, and what people write reads back exactly."""

from __future__ import annotations

import re
from decimal import MAX_EMAX, MIN_EMIN, Context, Decimal, localcontext

import pytest
from eth_utils.address import to_checksum_address
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.cli.test_cli import run

from ailedger.chain.contracts.data_market import PURPOSES, purpose_bit, purpose_mask
from ailedger.cli import _parsers as parse
from ailedger.errors import ConfigError
from ailedger.units import MAX_UINT256, format_amount, parse_amount

# Text a person or a script could pass: any unicode, and the characters numbers are made of.
anything = st.text() | st.text(alphabet="0123456789.eE+-_xXabcdefABCDEF \u0663\uff11\u00b2")


@given(anything)
def test_parse_amount_gives_a_uint256_or_refuses(text: str) -> None:
    try:
        value = parse_amount(text)
    except ConfigError:
        return
    assert 0 <= value <= MAX_UINT256


@given(st.integers(min_value=0, max_value=MAX_UINT256))
def test_amounts_read_back_exactly(base_units: int) -> None:
    written = format_amount(base_units).removesuffix(" AIL")
    assert parse_amount(written) == base_units


@given(
    st.decimals(min_value=0, allow_nan=False, allow_infinity=False, places=30),
    st.sampled_from(["f", "e"]),
)
def test_parse_amount_is_exact_or_refuses(amount: Decimal, style: str) -> None:
    text = format(amount, style)
    with localcontext(Context(prec=400, Emin=MIN_EMIN, Emax=MAX_EMAX)):
        scaled = amount.scaleb(18)
        try:
            value = parse_amount(text)
        except ConfigError:
            fits = scaled == scaled.to_integral_value() and scaled <= MAX_UINT256
            assert not fits or len(text) > 100
            return
        assert Decimal(value) == scaled


@given(anything)
def test_duration_gives_seconds_in_range_or_refuses(text: str) -> None:
    try:
        seconds = parse.duration(text)
    except ConfigError:
        return
    assert 1 <= seconds <= parse.MAX_GRANT_DURATION_S


@given(st.integers(min_value=1, max_value=36500), st.sampled_from(["s", "m", "h", "d"]))
def test_written_durations_read_back(number: int, unit: str) -> None:
    seconds = number * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
    assert parse.duration(f"{number}{unit}") == seconds


@given(anything | st.from_regex(r"0x[0-9a-fA-F]{40}", fullmatch=True))
def test_address_gives_a_checksummed_address_or_refuses(text: str) -> None:
    try:
        address = parse.address(text)
    except ConfigError:
        return
    assert address == to_checksum_address(address) and address.lower() == text.lower()


@given(st.binary(min_size=20, max_size=20), st.data())
def test_addresses_check_their_checksum(raw: bytes, data: st.DataObject) -> None:
    checksummed = to_checksum_address(raw)
    for written in (checksummed, checksummed.lower(), "0x" + checksummed[2:].upper()):
        assert parse.address(written) == checksummed
    letters = [i for i, c in enumerate(checksummed) if i >= 2 and c.isalpha()]
    if not letters:
        return
    i = data.draw(st.sampled_from(letters))
    typo = checksummed[:i] + checksummed[i].swapcase() + checksummed[i + 1 :]
    mixed = typo[2:] not in (typo[2:].lower(), typo[2:].upper())
    if mixed:
        with pytest.raises(ConfigError, match="checksum"):
            parse.address(typo)


@given(anything | st.from_regex(r"(0x)?[0-9a-fA-F]{64}", fullmatch=True))
def test_hex_ids_give_32_bytes_or_refuse(text: str) -> None:
    try:
        raw = parse.dataset_id(text)
    except ConfigError:
        return
    assert len(raw) == 32 and raw.hex() == text.removeprefix("0x").lower()


@given(anything | st.sampled_from(list(PURPOSES)))
def test_purposes_are_known_or_refused(text: str) -> None:
    try:
        bit = purpose_bit(text)
    except ConfigError:
        assert text not in PURPOSES
        return
    assert bit == PURPOSES[text]


@given(st.lists(anything | st.sampled_from(list(PURPOSES)), max_size=4))
def test_purpose_masks_hold_only_known_bits(names: list[str]) -> None:
    try:
        mask = purpose_mask(names)
    except ConfigError:
        return
    assert mask and mask & ~sum(PURPOSES.values()) == 0


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=40)
@given(
    text=st.integers().filter(lambda n: not 0 <= n <= MAX_UINT256).map(str)
    # Not "7.0": the options read it as 7, as they should.
    | st.from_regex(r"[0-9]*[.ex][0-9a-z.]*", fullmatch=True).filter(
        lambda t: not re.fullmatch(r"[0-9]+\.0*", t)
    ),
    command=st.sampled_from(["data grant", "data deny", "job status", "job cancel", "job logs"]),
)
def test_id_arguments_refuse_what_no_uint256_holds(
    text: str, command: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = run([*command.split(), "--", text], capsys, monkeypatch)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err

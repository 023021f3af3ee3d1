from __future__ import annotations

import math
from typing import Any

import pytest
from dp_accounting import dp_event

from ailedger.privacy.charges import (
    MAX_CHARGES,
    Charge,
    decode_charges,
    encode_charges,
    merge_charges,
)
from ailedger.privacy.errors import ChargeError

LAPLACE = Charge("laplace", epsilon=0.5, count=2)
SGD = Charge("sampled_gaussian", noise_multiplier=1.1, sampling_rate=0.1, count=300)


def test_round_trip_is_canonical() -> None:
    data = encode_charges([LAPLACE, SGD])
    assert data == (
        b'[{"count":2,"epsilon":0.5,"mechanism":"laplace"},'
        b'{"count":300,"mechanism":"sampled_gaussian","noise_multiplier":1.1,"sampling_rate":0.1}]'
    )
    assert decode_charges(data) == [LAPLACE, SGD]


def test_to_json_holds_only_the_fields_the_mechanism_uses() -> None:
    assert Charge("gaussian", noise_multiplier=2.0).to_json() == {
        "mechanism": "gaussian",
        "noise_multiplier": 2.0,
        "count": 1,
    }


@pytest.mark.parametrize(
    "raw",
    [
        {"mechanism": "laplace", "epsilon": math.nan, "count": 1},
        {"mechanism": "laplace", "epsilon": math.inf, "count": 1},
        {"mechanism": "laplace", "epsilon": -1.0, "count": 1},
        {"mechanism": "laplace", "epsilon": 0.0, "count": 1},
        {"mechanism": "laplace", "epsilon": 101.0, "count": 1},
        {"mechanism": "laplace", "epsilon": True, "count": 1},
        {"mechanism": "laplace", "epsilon": "1.0", "count": 1},
        {"mechanism": "laplace", "epsilon": 1.0, "count": 0},
        {"mechanism": "laplace", "epsilon": 1.0, "count": 10**6 + 1},
        {"mechanism": "laplace", "epsilon": 1.0, "count": 1.0},
        {"mechanism": "laplace", "epsilon": 1.0, "count": True},
        {"mechanism": "laplace", "epsilon": 1.0},
        {"mechanism": "laplace", "epsilon": 1.0, "count": 1, "delta": 0.1},
        {"mechanism": "laplace", "epsilon": 1.0, "count": 1, "noise_multiplier": 1.0},
        {"mechanism": "exponential", "epsilon": 1.0, "count": 1},
        {"mechanism": "gaussian", "noise_multiplier": 0.001, "count": 1},
        {"mechanism": "gaussian", "noise_multiplier": 1e5, "count": 1},
        {
            "mechanism": "sampled_gaussian",
            "noise_multiplier": 1.0,
            "sampling_rate": 0.0,
            "count": 1,
        },
        {
            "mechanism": "sampled_gaussian",
            "noise_multiplier": 1.0,
            "sampling_rate": 1.5,
            "count": 1,
        },
        ["laplace", 1.0],
        None,
    ],
)
def test_bad_charges_are_refused(raw: Any) -> None:
    with pytest.raises(ChargeError):
        Charge.from_json(raw)


def test_constructor_checks_too() -> None:
    with pytest.raises(ChargeError, match="epsilon"):
        Charge("laplace", epsilon=math.nan)
    with pytest.raises(ChargeError, match="no sampling_rate"):
        Charge("gaussian", noise_multiplier=1.0, sampling_rate=0.5)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"[]",
        b"{}",
        b'[{"count":1,"epsilon":NaN,"mechanism":"laplace"}]',
        b'[{"count":1,"epsilon":1e999,"mechanism":"laplace"}]',
        b'[{"epsilon":0.5,"count":2,"mechanism":"laplace"}]',  # not sorted
        b'[{"count": 2, "epsilon": 0.5, "mechanism": "laplace"}]',  # spaces
        b'[{"count":2,"epsilon":1,"mechanism":"laplace"}]',  # 1 is spelled 1.0
        b"[[[[]]]]",
        b"\xff\xfe",
    ],
)
def test_decode_refuses_anything_but_the_canonical_encoding(data: bytes) -> None:
    with pytest.raises(ChargeError):
        decode_charges(data)


def test_size_limits() -> None:
    many = [Charge("laplace", epsilon=0.01 * (i + 1)) for i in range(MAX_CHARGES + 1)]
    with pytest.raises(ChargeError, match="at most"):
        encode_charges(many)
    with pytest.raises(ChargeError):
        decode_charges(b"[" + b" " * 3000 + b"]")
    with pytest.raises(ChargeError):
        encode_charges([])


def test_dp_events() -> None:
    single = Charge("laplace", epsilon=0.5).dp_event()
    assert single == dp_event.DiscreteLaplaceDpEvent(noise_parameter=0.5, sensitivity=1)
    assert SGD.dp_event() == dp_event.SelfComposedDpEvent(
        dp_event.PoissonSampledDpEvent(0.1, dp_event.GaussianDpEvent(1.1)), 300
    )
    assert Charge("gaussian", noise_multiplier=3.0).dp_event() == dp_event.GaussianDpEvent(3.0)


def test_merge_sums_counts_of_equal_releases() -> None:
    merged = merge_charges([LAPLACE, SGD, LAPLACE])
    assert merged == [Charge("laplace", epsilon=0.5, count=4), SGD]

"""Aggregation rules: hand-computed cases, refusals, and a poisoned update."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

from ailedger.federated.aggregation import (
    RULES,
    AggregationError,
    InvalidUpdateError,
    aggregate,
)
from ailedger.federated.logistic import accuracy, scale, train_local

UPDATES = [np.array([1.0, 2.0]), np.array([3.0, 4.0]), np.array([5.0, 100.0])]


def test_fedavg_is_the_mean_weighted_by_example_counts() -> None:
    assert aggregate(UPDATES, [1, 1, 2], "fedavg").tolist() == [3.5, 51.5]


def test_median_is_coordinate_wise() -> None:
    assert aggregate(UPDATES, [1, 1, 2], "median").tolist() == [3.0, 4.0]


def test_trimmed_mean_drops_the_extremes_of_each_coordinate() -> None:
    updates = [np.array([v, -v]) for v in (1.0, 2.0, 3.0, 4.0, 1000.0)]
    # floor(0.2 * 5) = 1 value trimmed from each side: mean of 2, 3, 4 (and of -4, -3, -2).
    assert aggregate(updates, [1] * 5, "trimmed-mean", trim=0.2).tolist() == [3.0, -3.0]
    assert aggregate(updates, [1] * 5, "trimmed-mean", trim=0.0).tolist() == [202.0, -202.0]


def test_krum_picks_the_update_closest_to_its_neighbours() -> None:
    updates = [np.array([v]) for v in (0.0, 0.1, 0.2, 10.0)]
    # f = 0: each scored on its n - 2 = 2 nearest; 0.1 has 0.01 + 0.01, the others more.
    assert aggregate(updates, [1] * 4, "krum", byzantine=0).tolist() == [0.1]
    updates.append(np.array([-50.0]))  # with f = 1 (n = 5 >= 5), the outliers still lose
    assert aggregate(updates, [1] * 5, "krum", byzantine=1).tolist() == [0.1]


def test_robust_rules_ignore_a_claimed_example_count() -> None:
    weights = [1, 1, 10**9]  # the liar claims a billion rows
    assert aggregate(UPDATES, weights, "median").tolist() == [3.0, 4.0]


def test_krum_refuses_too_few_updates_for_its_byzantine_bound() -> None:
    with pytest.raises(AggregationError, match=r"needs at least 5 updates \(n >= 2f \+ 3\), got 4"):
        aggregate([np.zeros(2)] * 4, [1] * 4, "krum", byzantine=1)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_non_finite_update_is_refused_by_its_index(bad: float) -> None:
    with pytest.raises(InvalidUpdateError, match="update 1 holds NaN or infinite") as caught:
        aggregate([np.zeros(2), np.array([0.0, bad]), np.zeros(2)], [1] * 3, "fedavg")
    assert caught.value.index == 1


@pytest.mark.parametrize(
    ("updates", "weights", "rule", "kwargs", "message"),
    [
        ([], [], "fedavg", {}, "at least one update"),
        ([np.zeros(2), np.zeros(3)], [1, 1], "fedavg", {}, "update 1 has shape"),
        ([np.zeros(2), ["a", "b"]], [1, 1], "fedavg", {}, "update 1 is not an array"),
        ([np.zeros(0)], [1], "median", {}, "update 0 is empty"),
        ([np.zeros(2)], [1, 1], "fedavg", {}, "2 weights for 1 updates"),
        ([np.zeros(2)], [-1], "fedavg", {}, "non-negative"),
        ([np.zeros(2)] * 2, [0, 0], "fedavg", {}, "not all zero"),
        ([np.zeros(2)] * 2, [1, np.nan], "fedavg", {}, "finite"),
        ([np.zeros(2)], [1], "mean", {}, "unknown aggregation rule 'mean'"),
        ([np.zeros(2)], [1], "trimmed-mean", {"trim": 0.5}, r"trim must be in \[0, 0.5\)"),
        ([np.zeros(2)], [1], "krum", {"byzantine": -1}, "byzantine must be an integer >= 0"),
    ],
)
def test_invalid_inputs_are_refused_with_what_to_fix(
    updates: list[object], weights: list[float], rule: str, kwargs: dict[str, float], message: str
) -> None:
    with pytest.raises(AggregationError, match=message):
        aggregate(updates, weights, rule, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("rule", ["median", "trimmed-mean", "krum"])
def test_an_update_near_the_float_limit_is_outvoted_by_robust_rules(rule: str) -> None:
    updates = [np.full(3, 1.0 + i / 10) for i in range(4)] + [np.full(3, 1e300)]
    assert np.all(aggregate(updates, [1] * 5, rule) < 2)


def test_fedavg_refuses_to_overflow_into_an_infinite_model() -> None:
    with pytest.raises(AggregationError, match="fedavg overflowed"):
        aggregate([np.ones(3), np.full(3, 1e308)], [1, 1e10], "fedavg")


def test_rules_constant_names_every_rule() -> None:
    for rule in RULES:
        assert aggregate([np.ones(3)] * 5, [1] * 5, rule).tolist() == [1.0] * 3


@pytest.fixture(scope="module")
def poisoned_round() -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Five honest updates from an IID split, and a sixth: one of them sign-flipped x100."""
    data = load_breast_cancer()
    x = scale(data.data, data.data.min(axis=0), data.data.max(axis=0))
    x_tr, x_val, y_tr, y_val = train_test_split(
        x, data.target, test_size=0.2, random_state=0, stratify=data.target
    )
    honest = [
        train_local(np.zeros(x.shape[1] + 1), x_tr[part], y_tr[part], epochs=5, lr=0.5, batch=32)
        for part in np.array_split(np.random.default_rng(0).permutation(len(y_tr)), 5)
    ]
    return [*honest, -100.0 * honest[0]], x_val, y_val


@pytest.mark.parametrize("rule", ["median", "trimmed-mean", "krum"])
def test_robust_rules_survive_a_poisoned_update_that_wrecks_fedavg(
    poisoned_round: tuple[list[np.ndarray], np.ndarray, np.ndarray], rule: str
) -> None:
    updates, x_val, y_val = poisoned_round
    weights = [1.0] * len(updates)
    clean = accuracy(aggregate(updates[:-1], weights[:-1], "fedavg"), x_val, y_val)
    assert clean > 0.85
    assert accuracy(aggregate(updates, weights, "fedavg"), x_val, y_val) < 0.5
    assert accuracy(aggregate(updates, weights, rule), x_val, y_val) > clean - 0.03

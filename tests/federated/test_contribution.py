"""Contribution scores of one round and the payout: Shapley axioms, GTG against exact,
free riders, exact integer payouts, and refusals."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

from ailedger.errors import AiledgerError
from ailedger.federated.aggregation import aggregate
from ailedger.federated.contribution import (
    ContributionError,
    contribution_scores,
    exact_shapley,
    gtg_shapley,
    leave_one_out,
    payout_shares,
)
from ailedger.federated.logistic import log_loss, scale, train_local

Vector = np.ndarray
Utility = Callable[[Vector], float]
Round = tuple[Vector, list[Vector], list[float], Utility]


def _round(participants: int, split_seed: int = 0) -> Round:
    """Round 2 of a federated run on breast cancer: the previous model is round 1's fedavg;
    utility is negative validation log-loss."""
    data = load_breast_cancer()
    x = scale(data.data, data.data.min(axis=0), data.data.max(axis=0))
    x_tr, x_val, y_tr, y_val = train_test_split(
        x, data.target, test_size=0.2, random_state=0, stratify=data.target
    )
    parts = np.array_split(np.random.default_rng(split_seed).permutation(len(y_tr)), participants)
    weights = [float(len(part)) for part in parts]

    def train(start: Vector) -> list[Vector]:
        return [
            train_local(start, x_tr[part], y_tr[part], epochs=2, lr=0.5, batch=32) for part in parts
        ]

    previous = aggregate(train(np.zeros(x.shape[1] + 1)), weights, "fedavg")

    def utility(model: Vector) -> float:
        return -log_loss(model, x_val, y_val)

    return previous, train(previous), weights, utility


@pytest.fixture(scope="module")
def five() -> Round:
    return _round(5)


def _total(game: Round, rule: str = "fedavg") -> float:
    previous, updates, weights, utility = game
    return utility(aggregate(updates, weights, rule)) - utility(previous)


def _mae(exact: list[float], estimate: list[float]) -> float:
    return float(np.mean(np.abs(np.array(exact) - np.array(estimate))))


@pytest.mark.parametrize("rule", ["fedavg", "median", "trimmed-mean", "krum"])
def test_exact_shapley_is_efficient(five: Round, rule: str) -> None:
    previous, updates, weights, utility = five
    scores = exact_shapley(previous, updates, weights, rule, utility)
    assert len(scores) == 5
    assert sum(scores) == pytest.approx(_total(five, rule), abs=1e-12)
    assert _total(five, rule) > 0


def test_exact_shapley_is_symmetric(five: Round) -> None:
    previous, updates, weights, utility = five
    twin = [*updates, updates[1].copy()]
    scores = exact_shapley(previous, twin, [*weights, weights[1]], "fedavg", utility)
    assert scores[5] == pytest.approx(scores[1], abs=1e-12)


def test_a_utility_blind_to_the_model_scores_everyone_zero(five: Round) -> None:
    """Null players: nothing any update does changes the utility."""
    previous, updates, weights, _ = five
    assert set(exact_shapley(previous, updates, weights, "fedavg", lambda m: 1.0)) == {0.0}


@pytest.mark.parametrize(
    ("participants", "rule"), [(5, "fedavg"), (8, "fedavg"), (8, "median"), (8, "krum")]
)
def test_gtg_shapley_is_within_five_percent_of_exact(participants: int, rule: str) -> None:
    previous, updates, weights, utility = game = _round(participants)
    exact = exact_shapley(previous, updates, weights, rule, utility)
    estimate = gtg_shapley(previous, updates, weights, rule, utility, seed=3)
    assert _mae(exact, estimate) / abs(_total(game, rule)) <= 0.05


def test_gtg_shapley_is_reproducible_from_its_seed(five: Round) -> None:
    calls: list[int] = []
    previous, updates, weights, utility = five

    def counted(model: Vector) -> float:
        calls.append(1)
        return utility(model)

    first = gtg_shapley(previous, updates, weights, "fedavg", counted, seed=7, max_permutations=5)
    again = gtg_shapley(previous, updates, weights, "fedavg", counted, seed=7, max_permutations=5)
    assert first == again
    assert len(calls) <= 2 * 2**5  # memoised: no coalition's utility computed twice per call


def test_gtg_between_round_truncation_scores_a_round_that_changed_nothing_zero(
    five: Round,
) -> None:
    previous, updates, weights, _ = five
    scores = gtg_shapley(previous, updates, weights, "fedavg", lambda m: 0.5)
    assert set(scores) == {0.0}


def _free_rider_share(five: Round, rider: Vector, rule: str) -> float:
    previous, updates, weights, utility = five
    scores = exact_shapley(previous, [*updates, rider], [*weights, 91.0], rule, utility)
    return scores[-1] / sum(max(s, 0.0) for s in scores)


@pytest.mark.parametrize("rule", ["fedavg", "median", "trimmed-mean", "krum"])
def test_a_free_rider_sending_the_previous_model_back_earns_about_nothing(
    five: Round, rule: str
) -> None:
    assert _free_rider_share(five, five[0].copy(), rule) <= 0.02


@pytest.mark.parametrize("rule", ["fedavg", "median", "trimmed-mean", "krum"])
def test_a_free_rider_sending_noise_earns_about_nothing(five: Round, rule: str) -> None:
    noise = np.random.default_rng(1).normal(0.0, 1.0, size=five[0].shape)
    assert _free_rider_share(five, noise, rule) <= 0.02


@pytest.mark.parametrize("rider", ["copy", "noise"])
def test_a_free_rider_is_paid_nothing_or_almost(five: Round, rider: str) -> None:
    previous, updates, weights, utility = five
    noise = np.random.default_rng(1).normal(0.0, 1.0, size=previous.shape)
    sent = previous.copy() if rider == "copy" else noise
    scores = contribution_scores(
        previous, [*updates, sent], [*weights, 91.0], "fedavg", utility, method="gtg", seed=2
    )
    ids = [f"p{i}" for i in range(5)] + [rider]
    pay = payout_shares([dict(zip(ids, scores, strict=True))], 10**18)
    assert pay[rider] <= 0.02 * 10**18


def test_a_copy_of_the_previous_model_earns_for_diluting_an_attacker(five: Round) -> None:
    """Known limit of Shapley values: beside a noise attacker, a copy of the previous model
    pulls the attacker's coalitions back towards it, and is credited for that (a few per
    cent of the pool here). The attacker itself is paid nothing."""
    previous, updates, weights, utility = five
    noise = np.random.default_rng(1).normal(0.0, 1.0, size=previous.shape)
    scores = exact_shapley(
        previous, [*updates, previous.copy(), noise], [*weights, 91.0, 91.0], "fedavg", utility
    )
    pay = payout_shares([dict(zip([*"abcde", "copy", "noise"], scores, strict=True))], 1000)
    assert pay["noise"] == 0
    assert 0 < pay["copy"] <= 100


def test_leave_one_out_is_the_drop_when_one_leaves(five: Round) -> None:
    previous, updates, weights, utility = five
    scores = leave_one_out(previous, updates, weights, "fedavg", utility)
    without = aggregate(updates[:2] + updates[3:], weights[:2] + weights[3:], "fedavg")
    everyone = aggregate(updates, weights, "fedavg")
    assert scores[2] == pytest.approx(utility(everyone) - utility(without), abs=1e-12)


def test_auto_method_is_exact_for_few_and_gtg_for_many() -> None:
    small, large = _round(5), _round(7)
    assert contribution_scores(*small[:3], "fedavg", small[3]) == exact_shapley(
        *small[:3], "fedavg", small[3]
    )
    assert contribution_scores(*large[:3], "median", large[3], seed=4) == gtg_shapley(
        *large[:3], "median", large[3], seed=4
    )


def test_payout_sums_exactly_to_the_pool_pro_rata_to_positive_scores() -> None:
    rounds = [{"a": 1 / 3, "b": 1 / 3, "c": -5.0}, {"a": 1 / 3, "c": 0.1, "d": 0.0}]
    pool = 10**24 + 7
    pay = payout_shares(rounds, pool)
    assert sum(pay.values()) == pool
    assert list(pay) == ["a", "b", "c", "d"]
    assert pay["d"] == 0
    assert pay["a"] == pytest.approx(pool * (2 / 3) / (2 / 3 + 1 / 3 + 0.1), rel=1e-12)
    assert pay["c"] == pytest.approx(pool * 0.1 / (2 / 3 + 1 / 3 + 0.1), rel=1e-12)


def test_payout_ties_go_to_the_smaller_id_and_all_zero_splits_equally() -> None:
    assert payout_shares([{"b": 1.0, "a": 1.0, "c": 1.0}], 10) == {"a": 4, "b": 3, "c": 3}
    assert payout_shares([{"x": -1.0, "y": 0.0}, {"z": 0.0}], 5) == {"x": 2, "y": 2, "z": 1}
    assert payout_shares([{"a": 2.0}], 0) == {"a": 0}
    numpy_scores = {"a": np.float32(1.0), "b": np.float64(3.0)}  # as a utility may return
    assert payout_shares([numpy_scores], 8) == {"a": 2, "b": 6}  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("rounds", "pool", "message"),
    [
        ([{"a": 1.0}], -1, "pool must be an integer >= 0"),
        ([{"a": 1.0}], True, "pool must be an integer >= 0"),
        ([{"a": 1.0}], 1.5, "pool must be an integer >= 0"),
        ([{"a": float("nan")}], 10, "round 0 gives participant a the score nan"),
        ([], 10, "nobody to pay"),
        ([{}], 10, "nobody to pay"),
    ],
)
def test_payout_refuses_bad_input(rounds: list[dict[str, float]], pool: int, message: str) -> None:
    with pytest.raises(ContributionError, match=message):
        payout_shares(rounds, pool)


def test_scores_refuse_bad_rounds(five: Round) -> None:
    previous, updates, weights, utility = five
    bad = updates[3].copy()
    bad[0] = np.nan
    cases: list[tuple[Callable[[], object], type[AiledgerError], str]] = [
        (
            lambda: exact_shapley(previous, updates, weights[:4], "fedavg", utility),
            ContributionError,
            "4 weights for 5 updates",
        ),
        (
            lambda: exact_shapley(
                previous, [*updates[:3], bad, updates[4]], weights, "fedavg", utility
            ),
            ContributionError,
            "update 3 holds NaN",
        ),
        (
            lambda: exact_shapley(previous[:-1], updates, weights, "fedavg", utility),
            ContributionError,
            "previous global model has shape",
        ),
        (
            lambda: exact_shapley(previous, updates, weights, "fedavg", lambda m: float("nan")),
            ContributionError,
            "must return a finite number",
        ),
        (
            lambda: leave_one_out(previous, [], [], "fedavg", utility),
            ContributionError,
            "no updates",
        ),
        (
            lambda: contribution_scores(previous, updates, weights, "fedavg", utility, method="x"),
            ContributionError,
            "unknown method 'x'",
        ),
        (
            lambda: exact_shapley(previous, [updates[0]] * 11, [1.0] * 11, "fedavg", utility),
            ContributionError,
            "use gtg_shapley",
        ),
        (
            lambda: gtg_shapley(previous, updates, weights, "krum", utility, byzantine=2),
            AiledgerError,
            "krum with byzantine=2 needs at least 7 updates",
        ),
    ]
    for call, error, message in cases:
        with pytest.raises(error, match=message):
            call()

"""Contribution scores of one round and the payout: Shapley axioms, GTG against exact,
free riders, exact integer payouts, and refusals."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

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
Round = tuple[Vector, dict[str, Vector], dict[str, float], Callable[[Vector], float]]


def _round(participants: int, split_seed: int = 0) -> Round:
    """Round 2 of a federated run on breast cancer: the previous model is round 1's fedavg;
    utility is negative validation log-loss."""
    data = load_breast_cancer()
    x = scale(data.data, data.data.min(axis=0), data.data.max(axis=0))
    x_tr, x_val, y_tr, y_val = train_test_split(
        x, data.target, test_size=0.2, random_state=0, stratify=data.target
    )
    parts = np.array_split(np.random.default_rng(split_seed).permutation(len(y_tr)), participants)
    ids = [f"p{i}" for i in range(participants)]
    weights = {pid: float(len(part)) for pid, part in zip(ids, parts, strict=True)}

    def train(start: Vector) -> dict[str, Vector]:
        return {
            pid: train_local(start, x_tr[part], y_tr[part], epochs=2, lr=0.5, batch=32)
            for pid, part in zip(ids, parts, strict=True)
        }

    first = train(np.zeros(x.shape[1] + 1))
    previous = aggregate(list(first.values()), list(weights.values()), "fedavg")

    def utility(model: Vector) -> float:
        return -log_loss(model, x_val, y_val)

    return previous, train(previous), weights, utility


@pytest.fixture(scope="module")
def five() -> Round:
    return _round(5)


def _total(game: Round, rule: str = "fedavg") -> float:
    previous, updates, weights, utility = game
    after = aggregate(list(updates.values()), list(weights.values()), rule)
    return utility(after) - utility(previous)


@pytest.mark.parametrize("rule", ["fedavg", "median", "trimmed-mean", "krum"])
def test_exact_shapley_is_efficient(five: Round, rule: str) -> None:
    scores = exact_shapley(*five, rule=rule)
    assert sorted(scores) == [f"p{i}" for i in range(5)]
    assert sum(scores.values()) == pytest.approx(_total(five, rule), abs=1e-12)
    assert _total(five, rule) > 0


def test_exact_shapley_is_symmetric(five: Round) -> None:
    previous, updates, weights, utility = five
    twin = {**updates, "p5": updates["p1"].copy()}
    scores = exact_shapley(previous, twin, {**weights, "p5": weights["p1"]}, utility)
    assert scores["p5"] == pytest.approx(scores["p1"], abs=1e-12)


def test_a_utility_blind_to_the_model_scores_everyone_zero(five: Round) -> None:
    """Null player: a utility blind to the model gives every participant exactly 0."""
    previous, updates, weights, _ = five
    assert set(exact_shapley(previous, updates, weights, lambda m: 1.0).values()) == {0.0}


@pytest.mark.parametrize(
    ("participants", "rule"), [(5, "fedavg"), (8, "fedavg"), (8, "median"), (8, "krum")]
)
def test_gtg_shapley_is_within_five_percent_of_exact(participants: int, rule: str) -> None:
    game = _round(participants)
    exact = exact_shapley(*game, rule=rule)
    estimate = gtg_shapley(*game, rule=rule, seed=3)
    error = np.mean([abs(exact[p] - estimate[p]) for p in exact]) / abs(_total(game, rule))
    assert error <= 0.05


def test_gtg_shapley_is_reproducible_from_its_seed(five: Round) -> None:
    calls: list[int] = []
    previous, updates, weights, utility = five

    def counted(model: Vector) -> float:
        calls.append(1)
        return utility(model)

    first = gtg_shapley(previous, updates, weights, counted, seed=7, max_permutations=5)
    again = gtg_shapley(previous, updates, weights, counted, seed=7, max_permutations=5)
    assert first == again
    assert len(calls) <= 2 * 2**5  # memoised: no coalition's utility computed twice per call


def test_gtg_between_round_truncation_scores_a_round_that_changed_nothing_zero(
    five: Round,
) -> None:
    previous, updates, weights, _ = five
    scores = gtg_shapley(previous, updates, weights, lambda m: 0.5)
    assert set(scores.values()) == {0.0}


def _free_rider_share(five: Round, rider: Vector, rule: str) -> float:
    previous, updates, weights, utility = five
    riders = {**updates, "rider": rider}
    scores = exact_shapley(previous, riders, {**weights, "rider": 91.0}, utility, rule=rule)
    return scores["rider"] / sum(max(s, 0.0) for s in scores.values())


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
    riders = {**updates, rider: previous.copy() if rider == "copy" else noise}
    scores = contribution_scores(
        previous, riders, {**weights, rider: 91.0}, utility, method="gtg", seed=2
    )
    pay = payout_shares([scores], 10**18)
    assert pay[rider] <= 0.02 * 10**18


def test_a_copy_of_the_previous_model_earns_for_diluting_an_attacker(five: Round) -> None:
    """Known limit of Shapley values: beside a noise attacker, a copy of the previous model
    pulls the attacker's coalitions back towards it, and is credited for that (a few per
    cent of the pool here). The attacker itself is paid nothing."""
    previous, updates, weights, utility = five
    noise = np.random.default_rng(1).normal(0.0, 1.0, size=previous.shape)
    riders = {**updates, "copy": previous.copy(), "noise": noise}
    scores = exact_shapley(previous, riders, {**weights, "copy": 91.0, "noise": 91.0}, utility)
    pay = payout_shares([scores], 1000)
    assert pay["noise"] == 0
    assert 0 < pay["copy"] <= 100


def test_leave_one_out_is_the_drop_when_one_leaves(five: Round) -> None:
    _, updates, weights, utility = five
    scores = leave_one_out(*five)
    rest = [p for p in updates if p != "p2"]
    without = aggregate([updates[p] for p in rest], [weights[p] for p in rest], "fedavg")
    everyone = aggregate(list(updates.values()), list(weights.values()), "fedavg")
    assert scores["p2"] == pytest.approx(utility(everyone) - utility(without), abs=1e-12)


def test_auto_method_is_exact_for_few_and_gtg_for_many() -> None:
    small, large = _round(5), _round(7)
    assert contribution_scores(*small) == exact_shapley(*small)
    assert contribution_scores(*large, seed=4) == gtg_shapley(*large, seed=4)


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
    with pytest.raises(ContributionError, match=r"same participants; differ on \['p4'\]"):
        exact_shapley(previous, updates, {p: w for p, w in weights.items() if p != "p4"}, utility)
    with pytest.raises(ContributionError, match=r"update of participant p3 is unusable.*NaN"):
        bad = updates["p3"].copy()
        bad[0] = np.nan
        exact_shapley(previous, {**updates, "p3": bad}, weights, utility)
    with pytest.raises(ContributionError, match="previous global model has shape"):
        exact_shapley(previous[:-1], updates, weights, utility)
    with pytest.raises(ContributionError, match="must return a finite number"):
        exact_shapley(previous, updates, weights, lambda m: float("nan"))
    with pytest.raises(ContributionError, match="no updates"):
        leave_one_out(previous, {}, {}, utility)
    with pytest.raises(ContributionError, match="unknown method 'banzhaf'"):
        contribution_scores(*five, method="banzhaf")
    many = {f"q{i}": updates["p0"] for i in range(11)}
    with pytest.raises(ContributionError, match="use gtg_shapley"):
        exact_shapley(previous, many, dict.fromkeys(many, 1.0), utility)

"""Distinguishing attacks on the shipped mechanisms, with a bound that can fail.

For neighbouring datasets D (without a target row) and D' (with it), an attacker who
says "D'" when the output is at least a threshold t has a true-positive rate p1 and a
false-positive rate p0. (epsilon, delta)-DP requires p1 <= e^epsilon * p0 + delta. Over
many runs we bound p1 from below and p0 from above (one-sided Clopper-Pearson, each at
confidence 1 - 1e-4, so a correct mechanism fails with probability under 2e-4), and the
implied lower bound on epsilon must not exceed the claimed one. Thresholds are fixed in
advance from the claimed mechanism, never chosen from the observed outputs. Each check
also runs against the same mechanism with half the noise, which it must catch: the test
is able to fail.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from scipy.stats import beta

from ailedger.privacy.accountant import spent_epsilon
from ailedger.privacy.charges import Charge
from ailedger.privacy.queries import _count, _sum, epsilon_of
from ailedger.privacy.table import Column
from ailedger.privacy.training import sgd_logistic

ALPHA = 1e-4  # per one-sided bound


def epsilon_lower_bound(hits_d_prime: int, hits_d: int, trials: int, delta: float) -> float:
    """Lower confidence bound on epsilon from the attack's two hit counts."""
    p1_low = beta.ppf(ALPHA, hits_d_prime, trials - hits_d_prime + 1) if hits_d_prime else 0.0
    p0_high = beta.ppf(1 - ALPHA, hits_d + 1, trials - hits_d) if hits_d < trials else 1.0
    if p1_low - delta <= 0:
        return 0.0
    return math.log((p1_low - delta) / p0_high)


def attack(run: Callable[[bool], float], threshold: float, trials: int, delta: float) -> float:
    hits_d_prime = sum(run(True) >= threshold for _ in range(trials))
    hits_d = sum(run(False) >= threshold for _ in range(trials))
    return epsilon_lower_bound(hits_d_prime, hits_d, trials, delta)


# -- pure DP: OpenDP's count and clamped sum, the query path ---------------------------


@pytest.mark.parametrize(("noise_factor", "caught"), [(1.0, False), (0.5, True)])
def test_dp_count(noise_factor: float, caught: bool) -> None:
    # Half the noise scale is the same mechanism built for twice the epsilon.
    claimed = 1.0
    measurement = _count(claimed / noise_factor)
    assert epsilon_of(measurement) == pytest.approx(claimed / noise_factor)
    rows = [True] * 10

    def run(with_target: bool) -> float:
        return float(measurement([*rows, True] if with_target else rows))

    trials = 20_000 if not caught else 5_000
    bound = attack(run, threshold=11, trials=trials, delta=0.0)
    assert (bound > claimed) is caught, bound


@pytest.mark.parametrize(("noise_factor", "caught"), [(1.0, False), (0.5, True)])
def test_dp_sum(noise_factor: float, caught: bool) -> None:
    claimed = 1.0
    column = Column("x", "float", lower=0.0, upper=10.0)
    measurement = _sum(column, claimed / noise_factor)
    rows = [0.0] * 10

    def run(with_target: bool) -> float:
        return float(measurement([*rows, 10.0] if with_target else rows))

    trials = 20_000 if not caught else 5_000
    bound = attack(run, threshold=10.0, trials=trials, delta=0.0)
    assert (bound > claimed) is caught, bound


# -- approximate DP: one DP-SGD step, with and without Poisson sampling ----------------


def _sgd_step(q: float, noise: float, with_target: bool, rng: np.random.Generator) -> float:
    """One DP-SGD step from zero weights; the released weights projected on the target's
    clipped gradient, in units of the claimed noise (see the test for the geometry)."""
    others = np.tile([[-1.0, 0.0]], (50, 1))  # gradients orthogonal to the target's
    x = np.vstack([others, [[1.0, 0.0]]]) if with_target else others
    y = np.zeros(len(x))
    clip = 0.5
    weights = sgd_logistic(
        x, y, q=q, steps=1, learning_rate=1.0, rng=rng, clip_norm=clip, noise_multiplier=noise
    )
    direction = np.array([1.0, 0.0, 1.0]) / math.sqrt(2)
    return float(-(weights @ direction) * q * len(others) / clip)


@pytest.mark.parametrize("q", [1.0, 0.5], ids=["gaussian", "sampled_gaussian"])
@pytest.mark.parametrize(("noise_factor", "caught"), [(1.0, False), (0.5, True)])
def test_dp_sgd_step(q: float, noise_factor: float, caught: bool) -> None:
    claimed_noise, delta = 2.0 if q == 1.0 else 1.0, 0.01
    mechanism = "gaussian" if q == 1.0 else "sampled_gaussian"
    charge = Charge(mechanism, noise_multiplier=claimed_noise, sampling_rate=q if q < 1 else 0.0)
    claimed = spent_epsilon([[charge]], delta)
    rng = np.random.default_rng(20261202)

    def run(with_target: bool) -> float:
        return _sgd_step(q, claimed_noise * noise_factor, with_target, rng) / claimed_noise

    # Threshold: half a noise unit past the target's shift (1 / noise in these units).
    bound = attack(run, threshold=1 / claimed_noise + 0.5, trials=20_000, delta=delta)
    assert (bound > claimed) is caught, (bound, claimed)

from __future__ import annotations

import math

import pytest

from ailedger.privacy.accountant import projected_epsilon, rdp_epsilon, spent_epsilon
from ailedger.privacy.charges import Charge
from ailedger.privacy.errors import ChargeError

SGD = Charge("sampled_gaussian", noise_multiplier=1.1, sampling_rate=0.01, count=1000)


def test_nothing_spent() -> None:
    assert spent_epsilon([], 1e-5) == 0.0
    assert rdp_epsilon([], 1e-5) == 0.0


def test_one_laplace_costs_its_epsilon() -> None:
    assert spent_epsilon([[Charge("laplace", epsilon=0.5)]], 1e-6) == pytest.approx(0.5, abs=2e-3)


def test_k_equal_laplace_releases_compose_as_one_self_composed_charge() -> None:
    single = [[Charge("laplace", epsilon=0.1)]] * 10
    folded = [[Charge("laplace", epsilon=0.1, count=10)]]
    assert spent_epsilon(single, 1e-5) == spent_epsilon(folded, 1e-5)
    # Better than basic composition (1.0), never better than one release.
    assert 0.1 < spent_epsilon(folded, 1e-5) <= 1.0 + 1e-2


def test_pure_dp_is_accounted_as_its_worst_case() -> None:
    # Randomized response at epsilon is the worst epsilon-DP mechanism; composing k of
    # them must cost at least what the k-fold randomized response costs: about
    # k*eps*tanh(eps/2) + eps*sqrt(2k log(1/delta)) for small eps (Kairouz et al. 2015).
    k, eps, delta = 400, 0.05, 1e-5
    spent = spent_epsilon([[Charge("laplace", epsilon=eps, count=k)]], delta)
    assert spent >= k * eps * math.tanh(eps / 2) + eps * math.sqrt(k * math.log(1 / delta))


@pytest.mark.parametrize(
    "releases",
    [
        [[Charge("laplace", epsilon=0.3)], [Charge("laplace", epsilon=0.2, count=5)]],
        [[SGD]],
        [[Charge("gaussian", noise_multiplier=4.0, count=3), Charge("laplace", epsilon=0.1)]],
    ],
)
def test_pld_is_never_above_rdp(releases: list[list[Charge]]) -> None:
    assert 0 < spent_epsilon(releases, 1e-5) <= rdp_epsilon(releases, 1e-5) * 1.001


def test_a_thousand_releases() -> None:
    shapes = [
        [Charge("laplace", epsilon=0.005, count=3)],
        [Charge("laplace", epsilon=0.0025, count=2), Charge("laplace", epsilon=0.005)],
    ]
    releases = [shapes[i % 2] for i in range(1000)]
    spent = spent_epsilon(releases, 1e-6)
    assert spent < sum(c.epsilon * c.count for r in releases for c in r)  # beats basic
    assert spent <= rdp_epsilon(releases, 1e-6)


def test_projection_adds_the_new_release() -> None:
    history = [[SGD]]
    new = [Charge("laplace", epsilon=0.5)]
    assert projected_epsilon(history, new, 1e-5) == spent_epsilon([*history, new], 1e-5)
    assert projected_epsilon(history, new, 1e-5) > spent_epsilon(history, 1e-5)


@pytest.mark.parametrize("delta", [0.0, -1e-5, 0.5, math.nan, True])
def test_bad_delta(delta: float) -> None:
    with pytest.raises(ChargeError, match="delta"):
        spent_epsilon([[SGD]], delta)

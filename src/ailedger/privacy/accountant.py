"""Epsilon spent by every release on a dataset: a PLD accountant, with an RDP cross-check.

Releases compose sequentially: the owner's node keeps each release's charges (on chain)
and asks here what the whole history costs at its ``delta``. The privacy loss
distribution (PLD) accountant of dp-accounting (Koskela et al. 2020; Doroshenko et al.
2022, "Connect the Dots") gives the tightest numerical bound; Rényi DP (Mironov 2017)
gives a looser one from a different method, which the tests use as a cross-check
(PLD <= RDP).

Equal charges are grouped and composed as one ``SelfComposedDpEvent`` whose PLD is
self-convolved once (FFT) instead of 1,000 times: the common case, a dataset asked the
same shapes of query again and again, accounts in well under a second. The losses are
discretized on a grid of :data:`VALUE_DISCRETIZATION_INTERVAL` and rounded *up*
(pessimistic estimate), so the epsilon reported may exceed the exact one, never fall below
it. The grid must be fine next to the smallest charge: at 1e-3, 3,000 laplace charges of
epsilon 0.0025-0.005 cost 1.50 instead of 1.12 (RDP says 1.20); at 1e-4 the result agrees
with grids 2-4x finer to 1e-9. Distinct charges cost one convolution each (1,000 distinct
ones take seconds at 1e-4); equal ones are nearly free.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
from dp_accounting import pld, rdp
from dp_accounting.rdp import rdp_privacy_accountant

from ailedger.privacy.charges import Charge, merge_charges
from ailedger.privacy.errors import ChargeError

VALUE_DISCRETIZATION_INTERVAL = 1e-4
MAX_DELTA = 0.1
# Integer orders only: the fractional ones near 1 that dp-accounting also tries fail to
# converge for subsampled Gaussians and are skipped with a logged warning anyway.
RDP_ORDERS = np.array([*range(2, 65), 128, 256, 512, 1024], dtype=float)


def _check_delta(delta: float) -> None:
    if isinstance(delta, bool) or not isinstance(delta, int | float):
        raise ChargeError(f"delta must be a number, got {delta!r}")
    if not (math.isfinite(delta) and 0.0 < delta <= MAX_DELTA):
        raise ChargeError(f"delta must be in (0, {MAX_DELTA}], got {delta!r}")


def _grouped(releases: Iterable[Sequence[Charge]]) -> list[Charge]:
    return merge_charges([charge for release in releases for charge in release])


def spent_epsilon(releases: Iterable[Sequence[Charge]], delta: float) -> float:
    """Epsilon at ``delta`` of all charges of all releases composed (PLD); 0.0 for none."""
    _check_delta(delta)
    charges = _grouped(releases)
    if not charges:
        return 0.0
    accountant = pld.PLDAccountant(value_discretization_interval=VALUE_DISCRETIZATION_INTERVAL)
    for charge in charges:
        accountant.compose(charge.dp_event())
    return max(0.0, float(accountant.get_epsilon(delta)))


def projected_epsilon(
    releases: Iterable[Sequence[Charge]], new: Sequence[Charge], delta: float
) -> float:
    """What :func:`spent_epsilon` would be after also releasing ``new``."""
    return spent_epsilon([*releases, new], delta)


def _pure_dp_rdp(epsilon: float, orders: np.ndarray) -> np.ndarray:
    """Rényi divergence of randomized response at ``epsilon``: the largest of any
    epsilon-DP mechanism at every order (every epsilon-DP pair is a post-processing of it)."""
    log_p = -math.log1p(math.exp(-epsilon))  # p = e^eps / (1 + e^eps)
    log_q = -math.log1p(math.exp(epsilon))
    a = orders
    log_sum = np.logaddexp(a * log_p + (1 - a) * log_q, a * log_q + (1 - a) * log_p)
    return np.asarray(np.minimum(log_sum / (a - 1), epsilon))


def _charge_rdp(charge: Charge, orders: np.ndarray) -> np.ndarray:
    if charge.mechanism == "laplace":
        curve = _pure_dp_rdp(charge.epsilon, orders)
    elif charge.mechanism == "gaussian":
        curve = orders / (2 * charge.noise_multiplier**2)
    else:
        curve = np.asarray(
            rdp_privacy_accountant._compute_rdp_poisson_subsampled_gaussian(
                charge.sampling_rate, charge.noise_multiplier, orders
            )
        )
    return np.asarray(curve * charge.count)


def rdp_epsilon(releases: Iterable[Sequence[Charge]], delta: float) -> float:
    """Epsilon at ``delta`` by Rényi DP accounting: looser than :func:`spent_epsilon`, a
    cross-check computed by another method."""
    _check_delta(delta)
    charges = _grouped(releases)
    if not charges:
        return 0.0
    total = sum((_charge_rdp(c, RDP_ORDERS) for c in charges), np.zeros_like(RDP_ORDERS))
    epsilon, _ = rdp.compute_epsilon(RDP_ORDERS, total, delta)
    return float(epsilon)

"""Aggregation rules: how one round's model updates become the next global model.

* ``fedavg``: the mean weighted by each participant's example count (McMahan et al. 2017,
  "Communication-Efficient Learning of Deep Networks from Decentralized Data").
* ``median``: the coordinate-wise median (Yin et al. 2018, "Byzantine-Robust Distributed
  Learning: Towards Optimal Statistical Rates").
* ``trimmed-mean``: per coordinate, drop the ``floor(trim * n)`` lowest and highest values
  and average the rest (Yin et al. 2018).
* ``krum``: the single update whose squared distances to its ``n - f - 2`` nearest
  neighbours sum least, for at most ``f`` Byzantine participants among ``n >= 2f + 3``
  (Blanchard et al. 2017, "Machine Learning with Adversaries: Byzantine Tolerant Gradient
  Descent").

Only fedavg uses the weights. The robust rules give every participant one vote: the
example count is the participant's own claim, and a weighted median or Krum would let one
liar who claims a huge count outvote everyone, which is what those rules exist to prevent.
Every update is checked (same shape, finite) before any rule runs; a bad one raises
:class:`InvalidUpdateError` naming its position, so the caller can drop that participant.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from ailedger.errors import AiledgerError

RULES = ("fedavg", "median", "trimmed-mean", "krum")
"""The aggregation rules :func:`aggregate` knows."""


class AggregationError(AiledgerError):
    """The updates, weights or rule parameters cannot be aggregated; the message says
    which and how to fix it."""


class InvalidUpdateError(AggregationError):
    """One update is unusable (wrong shape, not numbers, NaN or infinite): leave that
    participant out of the round. ``index`` is its position in the updates given."""

    def __init__(self, message: str, index: int) -> None:
        super().__init__(message)
        self.index = index


def stack_updates(updates: Sequence[npt.ArrayLike]) -> npt.NDArray[np.float64]:
    """The updates as one ``(n, ...)`` float array, after checking each one."""
    if len(updates) == 0:
        raise AggregationError("no updates to aggregate: a round needs at least one update")
    rows: list[npt.NDArray[np.float64]] = []
    for index, update in enumerate(updates):
        try:
            row = np.asarray(update, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InvalidUpdateError(
                f"update {index} is not an array of numbers ({exc}): leave it out", index
            ) from exc
        if rows and row.shape != rows[0].shape:
            raise InvalidUpdateError(
                f"update {index} has shape {row.shape}, update 0 has {rows[0].shape}: "
                "every participant must send the model's full weight vector",
                index,
            )
        if row.size == 0:
            raise InvalidUpdateError(f"update {index} is empty: leave it out", index)
        if not np.all(np.isfinite(row)):
            raise InvalidUpdateError(
                f"update {index} holds NaN or infinite values: leave it out", index
            )
        rows.append(row)
    return np.stack(rows)


def check_weights(weights: Sequence[float], count: int) -> npt.NDArray[np.float64]:
    """The weights as a float array: one per update, finite, >= 0, not all zero."""
    if len(weights) != count:
        raise AggregationError(f"{len(weights)} weights for {count} updates: give one each")
    try:
        w = np.asarray(weights, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise AggregationError(f"weights must be numbers ({exc})") from exc
    if w.shape != (count,) or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise AggregationError(
            "weights must be finite, non-negative numbers, not all zero (example counts)"
        )
    return w


def _check_params(rule: str, trim: float, byzantine: int) -> None:
    if rule not in RULES:
        raise AggregationError(f"unknown aggregation rule {rule!r}: use one of {', '.join(RULES)}")
    if not (isinstance(trim, int | float) and 0 <= trim < 0.5):
        raise AggregationError(f"trim must be in [0, 0.5), got {trim!r}: it is a share per side")
    if isinstance(byzantine, bool) or not isinstance(byzantine, int) or byzantine < 0:
        raise AggregationError(f"byzantine must be an integer >= 0, got {byzantine!r}")


def trimmed_mean(stacked: npt.NDArray[np.float64], trim: float) -> npt.NDArray[np.float64]:
    """Per coordinate, the mean after dropping the ``floor(trim * n)`` extremes each side."""
    n = stacked.shape[0]
    cut = math.floor(trim * n)
    ordered = np.sort(stacked, axis=0)
    return np.asarray(ordered[cut : n - cut].mean(axis=0), dtype=np.float64)


def krum_index(stacked: npt.NDArray[np.float64], byzantine: int) -> int:
    """Position of the update Krum selects (the lowest position among equal scores)."""
    n = stacked.shape[0]
    if n < 2 * byzantine + 3:
        raise AggregationError(
            f"krum with byzantine={byzantine} needs at least {2 * byzantine + 3} updates "
            f"(n >= 2f + 3), got {n}: lower byzantine, or use median or trimmed-mean"
        )
    flat = stacked.reshape(n, -1)
    # Row by row rather than through the Gram matrix: |a|^2 + |b|^2 - 2ab cancels badly
    # for close updates of large norm, which is exactly the case Krum must rank well.
    distances = np.stack([np.sum((flat - row) ** 2, axis=1) for row in flat])
    np.fill_diagonal(distances, np.inf)  # a point is not its own neighbour
    nearest = np.sort(distances, axis=1)[:, : n - byzantine - 2]
    return int(np.argmin(nearest.sum(axis=1)))


def aggregate(
    updates: Sequence[npt.ArrayLike],
    weights: Sequence[float],
    rule: str,
    *,
    trim: float = 0.2,
    byzantine: int = 1,
) -> npt.NDArray[np.float64]:
    """The next global model from one round's ``updates`` (full weight vectors, not deltas)
    by ``rule`` (one of :data:`RULES`).

    ``weights`` are the participants' example counts, used by ``fedavg`` only. ``trim`` is
    the share trimmed from each side by ``trimmed-mean``; ``byzantine`` is the number of
    attackers ``krum`` tolerates (it needs ``len(updates) >= 2 * byzantine + 3``).
    """
    _check_params(rule, trim, byzantine)
    stacked = stack_updates(updates)
    w = check_weights(weights, stacked.shape[0])
    # Finite inputs can still overflow (an update of 1e300 squared, or summed): Krum ranks
    # an infinite distance correctly, and any other overflow is refused just below.
    with np.errstate(over="ignore", invalid="ignore"):
        if rule == "fedavg":
            model = np.asarray(np.average(stacked, axis=0, weights=w), dtype=np.float64)
        elif rule == "median":
            model = np.asarray(np.median(stacked, axis=0), dtype=np.float64)
        elif rule == "trimmed-mean":
            model = trimmed_mean(stacked, trim)
        else:
            model = np.array(stacked[krum_index(stacked, byzantine)], dtype=np.float64)
    if not np.all(np.isfinite(model)):
        raise AggregationError(
            f"{rule} overflowed: an update or weight is far out of range (near 1e308); "
            "drop it, or aggregate with median, trimmed-mean or krum"
        )
    return model

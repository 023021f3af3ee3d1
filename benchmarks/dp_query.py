"""DP queries through OpenDP against the same query computed plainly, and the accountant.

Figures, measured in the same run:

* a count, a sum and a mean over N rows (100,000; ``--quick``: 20,000) of a CSV, through
  ``run_query`` (reading under the declared schema, clamping, OpenDP's noise) versus the
  same numbers computed without DP by ``csv`` + numpy from the same file (the reference);
  the overhead ratio is DP time / plain time; also each statistic's absolute error;
* ``spent_epsilon`` over 1,000 charged releases (a realistic history: a few query shapes
  asked again and again, plus one DP-SGD run), versus the RDP cross-check on the same
  history; and over 1,000 releases all *distinct* (the worst case, a convolution each).

The last line is ``dp_query_overhead_ratio: x``.
Run ``python benchmarks/dp_query.py --quick`` in CI (seconds).
"""

from __future__ import annotations

import argparse
import csv
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from ailedger.privacy.accountant import rdp_epsilon, spent_epsilon
from ailedger.privacy.charges import Charge
from ailedger.privacy.queries import parse_query, run_query

QUERY = {
    "columns": {
        "age": {"type": "int", "lower": 0, "upper": 120},
        "weight": {"type": "float", "lower": 2.0, "upper": 300.0},
    },
    "statistics": [
        {"kind": "count"},
        {"kind": "sum", "column": "weight"},
        {"kind": "mean", "column": "age"},
    ],
    "epsilon": 1.0,
}


def plain(path: Path) -> dict[str, float]:
    """The reference: the same statistics, clamped the same way, without noise."""
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        ia, iw = header.index("age"), header.index("weight")
        rows = [(r[ia], r[iw]) for r in reader]
    ages = np.clip(np.array([float(a) for a, _ in rows]), 0, 120)
    weights = np.clip(np.array([float(w) for _, w in rows]), 2.0, 300.0)
    return {"count": len(rows), "sum_weight": float(weights.sum()), "mean_age": ages.mean()}


def timed(repeats: int, fn, *args):  # type: ignore[no-untyped-def]
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn(*args)
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def histories() -> tuple[list[list[Charge]], list[list[Charge]]]:
    shapes = [
        [Charge("laplace", epsilon=0.005, count=3)],
        [Charge("laplace", epsilon=0.01), Charge("laplace", epsilon=0.005, count=2)],
        [Charge("laplace", epsilon=0.02)],
    ]
    sgd = [Charge("sampled_gaussian", noise_multiplier=9.0, sampling_rate=0.56, count=18)]
    realistic = [shapes[i % 3] for i in range(999)] + [sgd]
    distinct = [[Charge("laplace", epsilon=0.001 + 1e-5 * i)] for i in range(1000)]
    return realistic, distinct


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 rows, fewer repeats")
    args = parser.parse_args()
    rows, repeats = (20_000, 3) if args.quick else (100_000, 5)

    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "people.csv"
        ages, weights = rng.integers(0, 100, rows), rng.uniform(3, 150, rows).round(2)
        path.write_text(
            "age,weight\n" + "".join(f"{a},{w}\n" for a, w in zip(ages, weights, strict=True))
        )
        spec = parse_query(QUERY)
        t_dp, result = timed(repeats, run_query, spec, path)
        t_plain, exact = timed(repeats, plain, path)
    print(
        f"{rows} rows, count + sum + mean at epsilon 1: run_query {t_dp * 1e3:.0f} ms, "
        f"plain csv+numpy {t_plain * 1e3:.0f} ms"
    )
    for key, value in exact.items():
        print(
            f"  {key}: exact {value:.2f}, DP {result.values[key]:.2f}, "
            f"error {abs(result.values[key] - value):.2f}"
        )

    realistic, distinct = histories()
    t_pld, spent = timed(repeats, spent_epsilon, realistic, 1e-6)
    t_rdp, rdp = timed(repeats, rdp_epsilon, realistic, 1e-6)
    print(
        f"accounting 1,000 releases (3 query shapes + one DP-SGD run), delta 1e-6: PLD "
        f"{spent:.3f} in {t_pld * 1e3:.1f} ms; RDP {rdp:.3f} in {t_rdp * 1e3:.1f} ms; "
        f"basic composition {sum(c.epsilon * c.count for r in realistic for c in r):.2f}"
    )
    if not args.quick:
        t_distinct, spent_distinct = timed(1, spent_epsilon, distinct, 1e-6)
        print(
            f"accounting 1,000 distinct releases (worst case): PLD {spent_distinct:.3f} in "
            f"{t_distinct:.2f} s"
        )
    print(f"dp_query_overhead_ratio: {t_dp / t_plain:.2f}")


if __name__ == "__main__":
    main()

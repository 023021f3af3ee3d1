"""Phenotype match latency: one query against 100,000 stored patients, and its reference.

Figures, measured in one run:

* ontology load (hpo3's embedded HPO, then ailedger's closures and IC), target <= 1 s;
* ``MatchIndex.search`` latency over 100,000 synthetic patients (``--quick``: 10,000):
  p50 target <= 100 ms, p99 <= 300 ms, with ``limit=10`` and the default threshold (0.9);
* the reference: ``MatchIndex.scan`` (the same simGIC score for every stored patient, no
  index) on a 5,000-patient subset, extrapolated linearly to the full cohort; the search on
  that subset must return the same scores as the scan (checked on every reference query).

Synthetic patients (deterministic, ``--seed``): pick an OMIM disease with at least 5 HPO
annotations, sample 5 to 15 of its terms (all when it has fewer); one patient in ten also
excludes one term taken from another disease. Queries are drawn the same way, apart from the
cohort. The last line is ``p50_ms: x``.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import time

from ailedger.health.matching import MatchIndex
from ailedger.health.phenotype import Disease, format_hpo, load_ontology
from ailedger.health.profile import PhenotypeProfile


def synthetic(diseases: list[Disease], rng: random.Random) -> PhenotypeProfile:
    """One patient: 5-15 terms of a random disease; sometimes an excluded term of another."""
    disease = rng.choice(diseases)
    terms = sorted(disease.terms)
    chosen = rng.sample(terms, min(len(terms), rng.randint(5, 15)))
    excluded: list[str] = []
    if rng.random() < 0.1:
        candidates = sorted(rng.choice(diseases).terms - disease.terms)
        excluded = [format_hpo(rng.choice(candidates))] if candidates else []
    return PhenotypeProfile.of([format_hpo(t) for t in chosen], excluded)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10,000 patients, 50 queries")
    parser.add_argument("--patients", type=int, default=None)
    parser.add_argument("--queries", type=int, default=None)
    parser.add_argument("--reference-patients", type=int, default=5000)
    parser.add_argument("--reference-queries", type=int, default=20)
    parser.add_argument("--seed", type=int, default=2015)
    args = parser.parse_args()
    n = args.patients or (10_000 if args.quick else 100_000)
    n_queries = args.queries or (50 if args.quick else 200)

    started = time.perf_counter()
    onto = load_ontology()
    load_s = time.perf_counter() - started
    print(f"ontology load: {load_s:.3f} s (HPO {onto.version}, {len(onto)} terms; target <= 1 s)")
    diseases = [d for d in onto.diseases("omim") if len(d.terms) >= 5]

    rng = random.Random(args.seed)
    cohort = [(f"P{i:06d}", synthetic(diseases, rng)) for i in range(n)]
    queries = [synthetic(diseases, rng) for _ in range(n_queries)]

    started = time.perf_counter()
    index = MatchIndex(onto)
    index.add_many(cohort)
    build_s = time.perf_counter() - started
    started = time.perf_counter()
    index.calibrate()
    calibrate_s = time.perf_counter() - started
    print(f"index: {n} patients in {build_s:.1f} s, calibrated in {calibrate_s:.2f} s")

    index.search(queries[0])  # warm caches outside the timing
    latencies, found = [], []
    for query in queries:
        t0 = time.perf_counter()
        found.append(len(index.search(query, limit=10)))
        latencies.append((time.perf_counter() - t0) * 1000)
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    print(
        f"search over {n}: p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {max(latencies):.1f} ms "
        f"({n_queries} queries, mean {statistics.mean(found):.1f} matches >= 0.9 returned)"
    )

    m = min(args.reference_patients, n)
    reference = MatchIndex(onto)
    reference.add_many(cohort[:m])
    reference.calibrate()
    scan_ms, subset_ms = [], []
    for query in queries[: args.reference_queries]:
        t0 = time.perf_counter()
        expected = reference.scan(query, limit=10)
        scan_ms.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        got = reference.search(query, limit=10)
        subset_ms.append((time.perf_counter() - t0) * 1000)
        same = len(got) == len(expected) and all(
            math.isclose(a.raw_score, b.raw_score, abs_tol=1e-9)
            for a, b in zip(got, expected, strict=True)
        )
        if not same:
            raise SystemExit("index search disagrees with the full scan: a bug")
    scan_p50 = percentile(scan_ms, 0.5) * n / m
    print(
        f"reference full scan (same score, no index): p50 {percentile(scan_ms, 0.5):.1f} ms on "
        f"{m} patients -> {scan_p50:.0f} ms extrapolated to {n}; index search on the same "
        f"{m}: p50 {percentile(subset_ms, 0.5):.1f} ms; identical results"
    )
    print(f"speedup_vs_full_scan: {scan_p50 / p50:.1f}x")
    ok = load_s <= 1.0 and p50 <= 100 and p99 <= 300
    print(f"targets (load <= 1 s, p50 <= 100 ms, p99 <= 300 ms): {'met' if ok else 'NOT met'}")
    print(f"p99_ms: {p99:.1f}")
    print(f"p50_ms: {p50:.1f}")


if __name__ == "__main__":
    main()

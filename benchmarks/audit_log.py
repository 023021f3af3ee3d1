"""Audit log throughput and proof latency, against a naive one-commit-per-append reference.

Figures, each measured in the same run on the same store (SQLite WAL, synchronous=FULL):

* durable appends/s with N threads through ``AuditLog.append`` (group commit) versus the
  reference: the same SQLite schema with one transaction (one fsync) per append;
* checkpoint latency: time from an append's return until a signed checkpoint covers it;
* inclusion proof generate + verify time in a log of 100,000 (``--quick``) or 1,000,000
  entries, built through the bulk path ``AuditLog.extend``.

The last line is ``durable_appends_per_s: x``; the ratio to the reference is printed above it.
Run ``python benchmarks/audit_log.py --quick`` in CI (under a minute).
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import threading
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ailedger.audit import _store
from ailedger.audit.entry import canonical_json
from ailedger.audit.log import AuditLog
from ailedger.audit.merkle import leaf_hash, verify_inclusion


def _entry(i: int) -> dict[str, str | int]:
    return {
        "who": "0x" + "ab" * 20,
        "dataset": "ds-42",
        "purpose": "research",
        "n": i,
        "outcome": "granted",
        "time": 1_780_000_000 + i,
    }


def grouped_rate(directory: Path, threads: int, seconds: float) -> float:
    with AuditLog(directory, Ed25519PrivateKey.generate()) as log:
        stop, counts = time.monotonic() + seconds, [0] * threads

        def worker(t: int) -> None:
            while time.monotonic() < stop:
                log.append(_entry(counts[t]))
                counts[t] += 1

        started = time.monotonic()
        pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
        return sum(counts) / (time.monotonic() - started)


def naive_rate(directory: Path, seconds: float) -> float:
    """Reference: one transaction per append in the same schema (no group commit)."""
    directory.mkdir()
    conn = _store.connect(_store.db_path(directory))
    _store.create_schema(conn)
    frontier: list[bytes] = []
    size, stop, started = 0, time.monotonic() + seconds, time.monotonic()
    while time.monotonic() < stop:
        data = canonical_json(_entry(size))
        nodes: list[_store.NodeRow] = []
        new_size = _store.push_leaf(frontier, size, leaf_hash(data), nodes)
        _store.insert_batch(conn, [(size, data)], nodes, None)
        size = new_size
    conn.close()
    return size / (time.monotonic() - started)


def checkpoint_latency(directory: Path, samples: int) -> list[float]:
    latencies = []
    with AuditLog(directory, Ed25519PrivateKey.generate()) as log:
        for i in range(samples):
            index = log.append(_entry(i))
            started = time.monotonic()
            while (cp := log.latest_checkpoint()) is None or cp.size <= index:
                time.sleep(0.001)
            latencies.append(time.monotonic() - started)
            time.sleep(random.uniform(0.0, 0.3))
    return latencies


def proof_time(directory: Path, size: int, samples: int) -> tuple[float, float]:
    with AuditLog(directory, Ed25519PrivateKey.generate()) as log:
        started = time.monotonic()
        log.extend(_entry(i) for i in range(size))
        build = time.monotonic() - started
        root, rng, times = log.root(size), random.Random(1), []
        for _ in range(samples):
            index = rng.randrange(size)
            leaf = leaf_hash(log.entry_bytes(index))
            t0 = time.perf_counter()
            proof = log.inclusion_proof(index, size)
            assert verify_inclusion(leaf, index, size, proof, root)
            times.append(time.perf_counter() - t0)
        return build, statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CI sizes, under a minute")
    parser.add_argument("--threads", type=int, default=64, help="concurrent appenders")
    args = parser.parse_args()
    seconds, proof_size = (3.0, 100_000) if args.quick else (10.0, 1_000_000)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        naive = naive_rate(root / "naive", seconds)
        print(f"reference (one commit per append): {naive:,.0f} appends/s")
        grouped = grouped_rate(root / "grouped", args.threads, seconds)
        print(f"group commit, {args.threads} threads: {grouped:,.0f} appends/s")
        latencies = checkpoint_latency(root / "cp", 10 if args.quick else 30)
        print(
            f"checkpoint latency after append: median {statistics.median(latencies) * 1000:.0f} ms,"
            f" max {max(latencies) * 1000:.0f} ms"
        )
        build, proof_ms = proof_time(root / "big", proof_size, 1000)
        print(f"bulk load {proof_size:,} entries: {build:.1f} s ({proof_size / build:,.0f}/s)")
        print(f"inclusion proof generate+verify at {proof_size:,}: median {proof_ms:.3f} ms")
        print(f"ratio_vs_one_commit_per_append: {grouped / naive:.1f}")
        print(f"durable_appends_per_s: {grouped:.0f}")


if __name__ == "__main__":
    main()

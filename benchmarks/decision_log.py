"""Decision receipts: what a durable, explained, provable decision costs over a bare prediction.

Figures, measured in one run on the same gradient-boosting model (scikit-learn, 100 trees,
breast-cancer data, 30 features) and the same rows:

* reference: the bare prediction, ``predict_proba`` on one row;
* ``record_decision`` per decision: prediction, TreeSHAP explanation, additivity check,
  durable audit append (SQLite WAL, synchronous=FULL, group commit) and salt commit:
  one caller at a time (latency), and ``--threads`` concurrent callers (per decision, as a
  served model answering many requests shares each fsync);
* verifying one decision receipt (signature, inclusion, anchor, explanation, input digest)
  in a log of 1,000,000 decisions (100,000 with ``--quick``) loaded through the audit
  log's bulk path ``AuditLog.extend``, and the receipt's proof size.

The last line is ``decision_overhead_ms: x``: added milliseconds per decision under
concurrency, over the bare prediction. Run ``python benchmarks/decision_log.py --quick``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import GradientBoostingClassifier

from ailedger.ai.decisions import decision_receipt, input_digest, record_decision, verify_decision
from ailedger.ai.explain import ShapExplainer
from ailedger.ai.salts import SaltStore
from ailedger.audit.log import AuditLog

PASSPORT, DEPLOYER = "0x" + "5a" * 32, "0x" + "d1" * 20


def _model() -> tuple[ShapExplainer, list[dict[str, float]]]:
    bunch = load_breast_cancer()
    names = [str(n).replace(" ", "_") for n in bunch.feature_names]
    model = GradientBoostingClassifier(n_estimators=100, random_state=0).fit(
        bunch.data, bunch.target
    )
    rows = [dict(zip(names, map(float, r), strict=True)) for r in bunch.data]
    return ShapExplainer.tree(model, names), rows


def bare_ms(explainer: ShapExplainer, rows: list[dict[str, float]], n: int) -> float:
    started = time.perf_counter()
    for i in range(n):
        explainer.model.predict_proba(explainer.row(rows[i % len(rows)]))
    return (time.perf_counter() - started) / n * 1000


def receipted_ms(
    directory: Path, explainer: ShapExplainer, rows: list[dict[str, float]], n: int, threads: int
) -> float:
    """Wall milliseconds per decision with ``threads`` callers recording ``n`` in all."""
    with AuditLog(directory / "audit", Ed25519PrivateKey.generate()) as log:
        salts = SaltStore(directory / "salts")

        def worker(t: int) -> None:
            for i in range(t, n, threads):
                record_decision(
                    log, salts, PASSPORT, explainer.model, rows[i % len(rows)],
                    deployer=DEPLOYER, explainer=explainer,
                )  # fmt: skip

        started = time.perf_counter()
        pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
        elapsed = time.perf_counter() - started
        salts.close()
        return elapsed / n * 1000


def verify_at_scale(
    directory: Path, explainer: ShapExplainer, rows: list[dict[str, float]], size: int
) -> tuple[float, float, int]:
    """Record ``size`` decisions (all but two in bulk), verify the middle one's receipt.

    Returns the bulk load seconds, the median verify milliseconds, and the proof bytes.
    """
    key = Ed25519PrivateKey.generate()
    with AuditLog(directory / "audit", key) as log:
        salts = SaltStore(directory / "salts")
        template = record_decision(
            log, salts, PASSPORT, explainer.model, rows[0], deployer=DEPLOYER, explainer=explainer
        ).entry
        started = time.perf_counter()
        _bulk(log, template, rows[0], 1, size // 2)
        # in the middle: a typical leaf's path (the last leaf's is shorter)
        decision = record_decision(
            log, salts, PASSPORT, explainer.model, rows[1], deployer=DEPLOYER, explainer=explainer
        )
        _bulk(log, template, rows[0], size // 2 + 1, size)
        load = time.perf_counter() - started
        checkpoint = log.checkpoint_now()
        anchors = [(checkpoint.size, checkpoint.root)]
        receipt = decision_receipt(log, salts, decision.index)
        times = []
        for _ in range(50):
            t0 = time.perf_counter()
            check = verify_decision(receipt, anchors, key.public_key(), rows[1])
            times.append(time.perf_counter() - t0)
            assert check.ok, check.problems
        salts.close()
        proof_bytes = 32 * len(receipt["inclusion_proof"])
        print(f"receipt: {len(json.dumps(receipt))} bytes as JSON, "
              f"{len(receipt['inclusion_proof'])} proof hashes ({proof_bytes} bytes)")  # fmt: skip
        return load, statistics.median(times) * 1000, proof_bytes


def _bulk(
    log: AuditLog, template: dict[str, Any], features: dict[str, float], start: int, stop: int
) -> None:
    """Decisions ``[start, stop)`` like ``template``, in slices (extend holds one in memory)."""
    for first in range(start, stop, 100_000):
        log.extend(
            dict(template, input=input_digest(i.to_bytes(32, "big"), features))
            for i in range(first, min(first + 100_000, stop))
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CI sizes, under a minute")
    parser.add_argument("--threads", type=int, default=16, help="concurrent callers")
    args = parser.parse_args()
    n, size = (500, 100_000) if args.quick else (5_000, 1_000_000)
    explainer, rows = _model()
    bare = statistics.median(bare_ms(explainer, rows, n) for _ in range(3))
    print(f"reference (bare predict_proba, one row): {bare:.3f} ms per decision")
    explain = _explain_ms(explainer, rows, n)
    print(f"TreeSHAP explanation + additivity check alone: {explain:.3f} ms per decision")
    with tempfile.TemporaryDirectory() as tmp:
        one = receipted_ms(Path(tmp) / "one", explainer, rows, max(n // 5, 50), 1)
        print(f"recorded decision, 1 caller: {one:.3f} ms (+{one - bare:.3f} ms)")
        many = receipted_ms(Path(tmp) / "many", explainer, rows, n, args.threads)
        print(f"recorded decision, {args.threads} callers: {many:.3f} ms per decision")
        load, verify, _ = verify_at_scale(Path(tmp) / "big", explainer, rows, size)
        print(f"bulk load {size:,} decisions: {load:.1f} s ({size / load:,.0f}/s)")
        print(f"verify one decision receipt in a log of {size:,}: median {verify:.3f} ms")
    print(f"cpus: {os.cpu_count()}")
    print(f"decision_overhead_ms: {many - bare:.3f}")


def _explain_ms(explainer: ShapExplainer, rows: list[dict[str, float]], n: int) -> float:
    prepared: list[Any] = [explainer.row(rows[i % len(rows)]) for i in range(n)]
    started = time.perf_counter()
    for row in prepared:
        explainer.explain(row)
    return (time.perf_counter() - started) / n * 1000


if __name__ == "__main__":
    main()

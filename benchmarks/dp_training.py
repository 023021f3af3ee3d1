"""DP logistic regression (our numpy DP-SGD) against non-private training, on scikit-learn's
breast-cancer data (569 rows, 30 features; ships inside scikit-learn).

For each seed, one stratified 80/20 split, and in the same run:

* ours: ``ailedger.privacy.training.train`` at epsilon 1, delta 1e-5 from a CSV (reading,
  noise calibration by the PLD accountant, DP-SGD);
* time reference: the same SGD loop with no clipping and no noise (``sgd_logistic``), the
  same schedule, on the same scaled features: what privacy adds to the loop;
* accuracy reference: scikit-learn's ``LogisticRegression`` (L-BFGS, standardized
  features), also timed.

Features are declared with the ranges published with the dataset (its DESCR table), which
a data owner would declare; nothing is scaled by statistics of the training split.
Goal: accuracy gap to scikit-learn <= 5 points; the DP loop <= 3x the plain loop.
The last line is ``dp_accuracy_gap_points: x`` (mean over seeds; scikit-learn minus ours).
Run ``python benchmarks/dp_training.py --quick`` in CI (3 seeds, seconds).
"""

from __future__ import annotations

import argparse
import csv
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ailedger.privacy.table import Column
from ailedger.privacy.training import (
    DEFAULTS,
    TrainSpec,
    predict_proba,
    scale_features,
    schedule,
    sgd_logistic,
    train,
)


def write_csv(path: Path, x: np.ndarray, y: np.ndarray, names: list[str]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["diagnosis", *names])
        for row, label in zip(x, y, strict=True):
            writer.writerow([("malignant", "benign")[label], *row])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 seeds instead of 10")
    parser.add_argument("--epsilon", type=float, default=1.0)
    args = parser.parse_args()
    seeds = range(3 if args.quick else 10)

    data = load_breast_cancer()
    lower, upper = data.data.min(axis=0), data.data.max(axis=0)
    names = [f"f{i}" for i in range(data.data.shape[1])]
    spec = TrainSpec(
        label=Column("diagnosis", "category", categories=("malignant", "benign")),
        features=tuple(
            Column(n, "float", lower=float(lo), upper=float(hi))
            for n, lo, hi in zip(names, lower, upper, strict=True)
        ),
        epochs=int(DEFAULTS["epochs"]),
        batch_size=int(DEFAULTS["batch_size"]),
        learning_rate=float(DEFAULTS["learning_rate"]),
        clip_norm=float(DEFAULTS["clip_norm"]),
        epsilon=args.epsilon,
        delta=1e-5,
    )
    ours, plain, sk = [], [], []
    t_ours, t_loop_dp, t_loop_plain, t_sk = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            x_tr, x_te, y_tr, y_te = train_test_split(
                data.data, data.target, test_size=0.2, random_state=seed, stratify=data.target
            )
            path = Path(tmp) / f"train-{seed}.csv"
            write_csv(path, x_tr, y_tr, names)
            rng = np.random.default_rng(seed)

            started = time.perf_counter()
            result = train(spec, path, rng=rng)
            t_ours.append(time.perf_counter() - started)
            ours.append(np.mean((predict_proba(result.model, x_te) > 0.5) == y_te))

            q, steps = schedule(spec, len(y_tr))
            xs = scale_features(x_tr, lower, upper)
            for noise, clip, times in (
                (result.charges[0].noise_multiplier, 1.0, t_loop_dp),
                (0.0, None, t_loop_plain),
            ):
                started = time.perf_counter()
                weights = sgd_logistic(
                    xs,
                    y_tr.astype(float),
                    q=q,
                    steps=steps,
                    learning_rate=spec.learning_rate,
                    rng=rng,
                    clip_norm=clip,
                    noise_multiplier=noise,
                )
                times.append(time.perf_counter() - started)
            model = {**result.model, "weights": weights[:-1].tolist(), "bias": weights[-1]}
            plain.append(np.mean((predict_proba(model, x_te) > 0.5) == y_te))

            started = time.perf_counter()
            reference = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
            reference.fit(x_tr, y_tr)
            t_sk.append(time.perf_counter() - started)
            sk.append(reference.score(x_te, y_te))

    charge = result.charges[0]
    print(
        f"breast cancer, {len(seeds)} seeds, epsilon {args.epsilon}, delta 1e-5: "
        f"{steps} steps, q {charge.sampling_rate:.3f}, noise multiplier "
        f"{charge.noise_multiplier:.2f}, clip {spec.clip_norm}"
    )
    print(
        f"accuracy: ours (DP) {statistics.mean(ours):.3f} (min {min(ours):.3f}), "
        f"plain SGD {statistics.mean(plain):.3f}, scikit-learn {statistics.mean(sk):.3f}"
    )
    loop_ratio = statistics.median(t_loop_dp) / statistics.median(t_loop_plain)
    print(
        f"time (median): DP-SGD loop {statistics.median(t_loop_dp) * 1e3:.1f} ms vs plain "
        f"loop {statistics.median(t_loop_plain) * 1e3:.1f} ms: ratio {loop_ratio:.2f}x"
    )
    print(
        f"time (median): train() with CSV and calibration {statistics.median(t_ours) * 1e3:.0f}"
        f" ms; scikit-learn fit {statistics.median(t_sk) * 1e3:.1f} ms; ratio to plain loop "
        f"{statistics.median(t_ours) / statistics.median(t_loop_plain):.0f}x"
    )
    gap = (statistics.mean(sk) - statistics.mean(ours)) * 100
    ok = gap <= 5 and loop_ratio <= 3
    print(f"targets (gap <= 5 points, DP loop <= 3x plain): {'met' if ok else 'NOT met'}")
    print(f"dp_accuracy_gap_points: {gap:.2f}")


if __name__ == "__main__":
    main()

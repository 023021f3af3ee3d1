"""Federated rounds: ailedger's federated job against the same Flower app without ailedger.

Both run in the same run, one after the other, on Flower's deployment engine (a SuperLink and
one SuperNode per institution, each its own process, on loopback), over scikit-learn's
breast-cancer data (569 rows, 30 features; ships inside scikit-learn): a stratified 20%
validation set, the rest shuffled and cut into one CSV per institution. The model is a
logistic regression over all 30 features scaled by their declared bounds (the data's
minimum and maximum); each round every institution runs 5 epochs of mini-batch gradient
descent (lr 0.5, batch 32) from the global model, and the updates are averaged by FedAvg.

* ailedger: an embedded chain, a requester and one home per institution; each publishes
  its CSV for model training and grants the requester access; the requester posts the job
  (task and validation set hashed on chain, reward in escrow), the institutions join, and
  ``ailedger.federated.runner.coordinate`` runs it: ailedger's Flower app, each round asking
  the coordinator whom to train, each ClientApp relaying to its institution's desk (chain
  checks, audit entry, training), the coordinator aggregating, scoring contributions on the
  validation set and anchoring the round on chain.
* plain Flower: ``benchmarks/fl_plain_app``, a ServerApp doing FedAvg and a ClientApp that
  trains on its SuperNode's CSV (path from its node config) with a copy of the same
  training code: the same messages, rows and hyperparameters, no ailedger in the loop.

Timing: a round ends when its new global model is ready (ailedger: the coordinator's
"round r/R" line, after anchoring; plain: the ServerApp notes it after FedAvg). The
per-round time is the median interval between consecutive round ends, rounds 2..R (over
every ``--repeats`` run, the side going first alternating); the first round is left out on
both sides, as it carries the one-off start-up (the ServerApp process, waiting for the
SuperNodes, ailedger's query of the nodes). Starting the chain, the homes, the SuperLink and
the SuperNodes is outside both. Also printed: submit to the last round's end, first round
included. All of ailedger's parties (chain, desks, coordinator) run in this one Python
process, as in ailedger's demo; Flower's processes are separate on both sides.

Accuracy on the validation set: ailedger's final model, the plain app's (the two must be
the same model to 1e-6, else the comparison is void), the same training on all rows in one
place (5 epochs x R rounds) and scikit-learn's ``LogisticRegression`` for reference. Goal:
ailedger at most 2 points below the centralised model (exit 1 otherwise), and a per-round
overhead ratio <= 1.2. The last line is ``fl_round_overhead_ratio: x`` (ailedger's
per-round seconds / plain Flower's).

Needs Flower's virtualenv (``bash scripts/flower-env.sh``, or ``AILEDGER_FLOWER_VENV``).
``--quick`` (CI): 3 institutions x 3 rounds.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from ailedger.chain.connection import open_embedded
from ailedger.chain.contracts.data_market import PURPOSES, Policy
from ailedger.chain.transactions import fund_from_dev_account
from ailedger.federated.flower import (
    start_superlink,
    start_supernodes,
    stop_all,
    submit_run,
    wait_run,
)
from ailedger.federated.jobs import join_job, post_job
from ailedger.federated.logistic import accuracy, train_centralised
from ailedger.federated.runner import coordinate, institution_running
from ailedger.federated.task import Task, read_table, read_task
from ailedger.keys.home import NodeHome
from ailedger.session import Session
from ailedger.settings import load_settings
from ailedger.sharing.owner import OwnerNode

PLAIN_APP = Path(__file__).resolve().parent / "fl_plain_app"
PASSPHRASE = "benchmark"
AIL = 10**18
GAS_WEI = 10**20
TRAINING = PURPOSES["model-training"]
LOCAL_EPOCHS, LEARNING_RATE, BATCH_SIZE = 5, 0.5, 32
ROUND_TIMEOUT_S = 120.0
ACCURACY_GAP_POINTS = 2.0
SAME_MODEL_TOLERANCE = 1e-6
ROUND_LINE = re.compile(r"round (\d+)/\d+:")


@dataclass(frozen=True)
class Split:
    tables: list[Path]
    validation: Path
    task_file: Path
    task: Task


@dataclass(frozen=True)
class Run:
    """One side's run: when each round's global model was ready, from when the run was
    submitted (time.time() throughout), and the final weights (bias last)."""

    submitted: float
    ready: list[float]
    weights: np.ndarray

    def intervals(self) -> list[float]:
        return [b - a for a, b in zip(self.ready, self.ready[1:], strict=False)]

    def submit_to_last(self) -> float:
        return self.ready[-1] - self.submitted


def split_data(root: Path, institutions: int, seed: int) -> Split:
    """One CSV per institution, the validation CSV and the task TOML, under ``root``."""
    data = load_breast_cancer()
    names = [str(n) for n in data.feature_names]
    x_tr, x_val, y_tr, y_val = train_test_split(
        data.data, data.target, test_size=0.2, random_state=seed, stratify=data.target
    )
    order = np.random.default_rng(seed).permutation(len(y_tr))
    tables = []
    for k, rows in enumerate(np.array_split(order, institutions)):
        tables.append(write_csv(root / f"institution-{k}.csv", x_tr[rows], y_tr[rows], names))
    validation = write_csv(root / "validation.csv", x_val, y_val, names)
    task_file = write_task(root / "task.toml", names, data.data.min(axis=0), data.data.max(axis=0))
    return Split(tables, validation, task_file, read_task(task_file))


def write_csv(path: Path, x: Any, y: Any, names: list[str]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*names, "diagnosis"])
        for row, label in zip(x, y, strict=True):
            # scikit-learn's target: 0 is malignant
            writer.writerow([*map(repr, row.tolist()), "malignant" if label == 0 else "benign"])
    return path


def write_task(path: Path, names: list[str], lower: Any, upper: Any) -> Path:
    bounds = "".join(
        f"{json.dumps(n)} = [{float(lo)!r}, {float(hi)!r}]\n"
        for n, lo, hi in zip(names, lower, upper, strict=True)
    )
    path.write_text(
        f"features = {json.dumps(names)}\n"
        'label = "diagnosis"\npositive = "malignant"\nrule = "fedavg"\n'
        f"local_epochs = {LOCAL_EPOCHS}\nlearning_rate = {LEARNING_RATE}\n"
        f"batch_size = {BATCH_SIZE}\n\n[bounds]\n{bounds}"
    )
    return path


# ---------------------------------------------------------------------- plain Flower


def plain_run(split: Split, rounds: int, work: Path) -> Run:
    """The plain app on a SuperLink and SuperNodes of its own, each node given its CSV."""
    record = work / "record.json"
    config: dict[str, str | int | float] = {
        "rounds": rounds,
        "round-timeout": ROUND_TIMEOUT_S,
        "min-nodes": len(split.tables),
        "task": json.dumps(split.task.as_json()),
        "record": str(record),
    }
    with start_superlink(work) as link:
        configs = [{"table": str(t)} for t in split.tables]
        # Each plain ClientApp reads its CSV itself: its confined SuperNode may read them.
        nodes = start_supernodes(
            link.address, configs, work, readable=sorted({t.parent for t in split.tables})
        )
        try:
            submitted = time.time()
            run_id = submit_run(link, config, PLAIN_APP)
            status = wait_run(link, run_id, timeout=ROUND_TIMEOUT_S * (rounds + 2) + 60)
        finally:
            stop_all(nodes)
    if not status.ok or not record.is_file():
        sys.exit(f"the plain Flower run ended {status.status}: {status.details}\n{status.logs}")
    done = json.loads(record.read_text())
    return Run(submitted, done["round_ready"], np.array(done["weights"]))


# ---------------------------------------------------------------------- ailedger


def party(name: str, root: Path, connection: Any, cache: Path) -> Session:
    home = NodeHome.init(root / name, PASSPHRASE, scrypt_n=2**12)
    settings = load_settings(home=home.path, cache_dir=cache)
    session = Session(settings, home, connection, home.unlock_account(PASSPHRASE), PASSPHRASE)
    fund_from_dev_account(connection.web3, session.address, GAS_WEI)
    return session


def ailedger_run(split: Split, rounds: int, work: Path) -> Run:
    """The job posted, joined by every institution, and run by ``coordinate``."""
    cache = work / "contract-cache"
    with open_embedded(work / "chain", cache) as connection:
        requester = party("requester", work, connection, cache)
        requester.token.faucet(100 * AIL)
        institutions: list[tuple[Session, bytes, int]] = []
        for k, table in enumerate(split.tables):
            owner = party(f"institution-{k}", work, connection, cache)
            owner.token.faucet(10 * AIL)
            policy = Policy(TRAINING, needs_approval=False, price=0, duration_s=86400, max_reads=0)
            with OwnerNode(owner) as node:
                dataset = node.publish(table, policy, {"title": table.stem}, None).dataset_id
            grant, _ = requester.data_market.request_access(dataset, TRAINING)
            institutions.append((owner, dataset, grant))
        posted = post_job(
            requester,
            split.task_file,
            split.validation,
            purpose=TRAINING,
            rounds=rounds,
            min_participants=len(institutions),
            max_participants=len(institutions),
            reward=10 * AIL,
            stake=1 * AIL,
            join_window_s=3600,
            run_window_s=3600,
        )
        for owner, dataset, grant in institutions:
            join_job(owner, posted.job_id, dataset, grant)
        return _coordinated(requester, posted.job_id, institutions, split, work)


def _coordinated(
    requester: Session,
    job_id: int,
    institutions: list[tuple[Session, bytes, int]],
    split: Split,
    work: Path,
) -> Run:
    ready: list[float] = []
    submitted: list[float] = []

    def say(line: str) -> None:
        if ROUND_LINE.match(line):
            ready.append(time.time())  # first: the printing is not the round's
        print("    " + line, flush=True)

    @contextmanager
    def desks(superlink: str) -> Iterator[None]:
        with ExitStack() as stack:
            for k, (owner, _, _) in enumerate(institutions):
                node_dir = work / f"node-{k}"
                stack.enter_context(institution_running(owner, job_id, superlink, node_dir))
            submitted.append(time.time())  # coordinate submits the run right after this
            yield

    done = coordinate(
        requester,
        job_id,
        split.task_file,
        split.validation,
        work / "run",
        say,
        round_timeout=ROUND_TIMEOUT_S,
        institutions=desks,
    )
    if not done.status.ok or len(done.rounds) != len(ready) or not ready:
        sys.exit(f"ailedger's run ended {done.status.status}: {done.status.details}")
    model = json.loads((done.model / "model.json").read_text())
    return Run(submitted[0], ready, np.array([*model["weights"], model["bias"]]))


# ---------------------------------------------------------------------- references


def centralised(split: Split, rounds: int, x_val: Any, y_val: Any) -> tuple[float, float]:
    """(the same training on all rows in one place, scikit-learn) validation accuracies."""
    parts = [read_table(split.task, table) for table in split.tables]
    x = np.vstack([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    weights = train_centralised(
        x, y, LOCAL_EPOCHS * rounds, LEARNING_RATE, BATCH_SIZE, np.random.default_rng(0)
    )
    sk = LogisticRegression(max_iter=10_000).fit(x, y)
    return float(accuracy(weights, x_val, y_val)), float(sk.score(x_val, y_val))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="3 institutions x 3 rounds (CI)")
    parser.add_argument("--institutions", type=int, default=5, help="SuperNodes (default 5)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds, at least 2 (default 5)")
    parser.add_argument(
        "--repeats", type=int, default=1, help="runs of each side, alternating (default 1)"
    )
    parser.add_argument("--seed", type=int, default=0, help="validation split and partition")
    parser.add_argument("--workdir", type=Path, help="keep chain, homes and Flower logs here")
    args = parser.parse_args()
    nodes, rounds = (3, 3) if args.quick else (args.institutions, args.rounds)
    if rounds < 2 or nodes < 1 or args.repeats < 1:
        parser.error("need at least 2 rounds (the first is not timed), 1 institution, 1 repeat")
    with ExitStack() as stack:
        if args.workdir is None:
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fl-rounds-")))
        else:
            root = args.workdir.resolve()
            root.mkdir(parents=True, exist_ok=False)
        sys.exit(report(root, nodes, rounds, args.repeats, args.seed))


def run_both(split: Split, rounds: int, repeats: int, root: Path) -> tuple[list[Run], list[Run]]:
    """(plain runs, ailedger runs); the side that goes first alternates, so a machine that
    slows down or warms up over time favours neither."""
    plain: list[Run] = []
    ours: list[Run] = []
    for i in range(repeats):
        sides = [
            ("plain Flower app", "plain", plain_run, plain),
            ("ailedger's federated job", "ailedger", ailedger_run, ours),
        ]
        for name, folder, side, runs in sides if i % 2 == 0 else sides[::-1]:
            print(f"  {name} (run {i + 1} of {repeats})...", flush=True)
            work = root / f"{folder}-{i}"
            work.mkdir()
            runs.append(side(split, rounds, work))
    return plain, ours


def per_round(runs: list[Run]) -> float:
    return statistics.median(s for run in runs for s in run.intervals())


def report(root: Path, nodes: int, rounds: int, repeats: int, seed: int) -> int:
    """Run and print everything; the exit status (1: a check failed)."""
    split = split_data(root, nodes, seed)
    x_val, y_val = read_table(split.task, split.validation)
    rows = sum(len(read_table(split.task, t)[1]) for t in split.tables)
    print(
        f"{nodes} SuperNodes x {rounds} rounds: logistic regression, "
        f"{len(split.task.features)} features, {LOCAL_EPOCHS} local epochs, lr {LEARNING_RATE}, "
        f"batch {BATCH_SIZE}, FedAvg; {rows} training rows in {nodes} parts, "
        f"{len(y_val)} validation rows",
        flush=True,
    )
    plain, ours = run_both(split, rounds, repeats, root)

    print(f"seconds per round (median interval between round ends, rounds 2..{rounds}):")
    for name, runs in (("plain Flower", plain), ("ailedger", ours)):
        each = "; ".join(", ".join(f"{s:.2f}" for s in run.intervals()) for run in runs)
        last = ", ".join(f"{run.submit_to_last():.2f}" for run in runs)
        print(f"  {name:<13} {per_round(runs):7.2f}  [{each}]; submit to last round {last}")
    ratio = per_round(ours) / per_round(plain)
    print(f"  ratio {ratio:.3f} (goal <= 1.2)")

    drift = max(float(np.max(np.abs(o.weights - p.weights))) for o in ours for p in plain)
    ours_acc = float(accuracy(ours[0].weights, x_val, y_val))
    plain_acc = float(accuracy(plain[0].weights, x_val, y_val))
    central_acc, sklearn_acc = centralised(split, rounds, x_val, y_val)
    gap = 100 * (central_acc - ours_acc)
    print("validation accuracy:")
    print(f"  ailedger      {ours_acc:.4f}")
    print(f"  plain Flower  {plain_acc:.4f}  (max |weight difference| to ailedger's {drift:.1e})")
    print(f"  centralised   {central_acc:.4f}  (the same training, all rows in one place)")
    print(f"  scikit-learn  {sklearn_acc:.4f}  (LogisticRegression, same scaled features)")
    print(f"  centralised - ailedger: {gap:+.2f} points (goal <= {ACCURACY_GAP_POINTS:g})")
    failures = []
    if gap > ACCURACY_GAP_POINTS:
        failures.append(
            f"ailedger's model is {gap:.2f} points below centralised training "
            f"(allowed {ACCURACY_GAP_POINTS:g})"
        )
    if drift > SAME_MODEL_TOLERANCE:
        failures.append(
            f"the two sides trained different models (weights differ by {drift:.2e}): "
            "the plain app no longer does ailedger's work, so the ratio compares nothing"
        )
    for failure in failures:
        print(f"FAILED: {failure}")
    print(f"fl_round_overhead_ratio: {ratio:.3f}")
    return 1 if failures else 0


if __name__ == "__main__":
    main()

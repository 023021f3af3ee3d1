"""The demo's federated-learning chapter: the hospital and two other institutions train
one model for the researcher without sending their records anywhere; one institution's
SuperNode dies mid-round and the round goes on; every round is anchored and the reward
pool is paid out by measured contribution."""

from __future__ import annotations

import csv
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from ailedger.session import Session

Say = Callable[[str], None]
AIL = 10**18
FEATURES = ["mean radius", "mean texture", "mean smoothness", "mean concave points"]
INSTITUTIONS = ("hospital", "clinic", "lab")
ROUNDS = 3
ROUND_TIMEOUT_S = 45.0  # ample for a round's training on a loaded 2-core machine


def federated_learning(
    researcher: Session,
    hospital: Session,
    new_party: Callable[[str], Session],
    root: Path,
    say: Say,
) -> None:
    from ailedger.chain.contracts.data_market import PURPOSES, Policy
    from ailedger.federated.jobs import join_job, post_job
    from ailedger.sharing.owner import OwnerNode
    from ailedger.units import format_amount

    say("\n[bold]15. Federated learning: three institutions train one model at home[/bold]")
    work = root / "federated"
    work.mkdir()
    parties = {"hospital": hospital, "clinic": new_party("clinic"), "lab": new_party("lab")}
    tables, validation, task = _data(work)
    training = PURPOSES["model-training"]
    grants: dict[str, tuple[bytes, int]] = {}
    for name, party in parties.items():
        policy = Policy(training, needs_approval=False, price=0, duration_s=86400, max_reads=10)
        with OwnerNode(party) as node:
            dataset = node.publish(tables[name], policy, {"title": f"{name} cases"}, None)
        grant, _ = researcher.data_market.request_access(dataset.dataset_id, training)
        grants[name] = (dataset.dataset_id, grant)
    say(
        "  each institution publishes its own breast-tumour cases for model training, and "
        "grants the researcher access; the rows never leave them"
    )
    posted = post_job(
        researcher,
        task,
        validation,
        purpose=training,
        rounds=ROUNDS,
        min_participants=2,
        max_participants=3,
        reward=30 * AIL,
        stake=1 * AIL,
        join_window_s=3600,
        run_window_s=3600,
    )
    for name, party in parties.items():
        if party.token.balance_of(party.address) < AIL:
            party.token.faucet(1 * AIL)
        join_job(party, posted.job_id, *grants[name])
    say(
        f"  the researcher posts federated job {posted.job_id} ({ROUNDS} rounds, 30 AIL reward "
        "pool in escrow, task and validation set committed by hash); the three join with "
        "their dataset and grant, staking 1 AIL each"
    )
    done = _run(researcher, parties, posted.job_id, task, validation, work, say)
    baseline = _centralised_accuracy(tables, validation, task)
    say(
        f"  final model: validation accuracy {done.accuracy:.3f} (the same model trained on all "
        f"rows in one place: {baseline:.3f}), written to {done.model}"
    )
    members = {m.institution.lower(): m for m in researcher.federated_jobs.members(posted.job_id)}
    for name, party in parties.items():
        reward, stake = done.payouts.get(party.address, (0, 0))
        score = members[party.address.lower()].score
        say(
            f"  {name:<8} contribution {score / 1e6:+.4f} accuracy, paid "
            f"{format_amount(reward)} (+ its stake {format_amount(stake)} back)"
        )
    _passport(researcher, hospital, posted.job_id, done.model, say)
    _secure_job(researcher, parties, grants, task, validation, work, say)


def _secure_job(
    researcher: Session,
    parties: dict[str, Session],
    grants: dict[str, tuple[bytes, int]],
    task: Path,
    validation: Path,
    work: Path,
    say: Say,
) -> None:
    """The same institutions, one round under secure aggregation: each one's own node
    masks its update (SecAgg+), and the researcher learns the sum alone."""
    from ailedger.chain.contracts.data_market import PURPOSES
    from ailedger.federated.jobs import join_job, post_job
    from ailedger.federated.runner import coordinate, institution_running

    secure = work / "task-secure.toml"
    secure.write_text(
        task.read_text().replace('rule = "fedavg"', 'rule = "fedavg"\nsecure_aggregation = true')
    )
    posted = post_job(
        researcher,
        secure,
        validation,
        purpose=PURPOSES["model-training"],
        rounds=1,
        min_participants=3,
        max_participants=3,
        reward=3 * AIL,
        stake=0,
        join_window_s=3600,
        run_window_s=3600,
    )
    for name, party in parties.items():
        join_job(party, posted.job_id, *grants[name])

    @contextmanager
    def institutions(superlink: str) -> Iterator[None]:
        with ExitStack() as stack:
            for name, party in parties.items():
                where = work / f"{name}-secure"
                stack.enter_context(institution_running(party, posted.job_id, superlink, where))
            yield

    done = coordinate(
        researcher,
        posted.job_id,
        secure,
        validation,
        work / "run-secure",
        lambda _: None,
        round_timeout=ROUND_TIMEOUT_S,
        institutions=institutions,
    )
    (round_one,) = done.rounds
    say(
        f"  job {posted.job_id} under secure aggregation (Flower's SecAgg+, masked at each "
        f"institution's own node): the researcher received the weighted average of "
        f"{len(round_one.aggregated)} updates and no update of anyone's; validation accuracy "
        f"{done.accuracy:.3f}, the round's gain shared by row counts"
    )


def _passport(researcher: Session, auditor: Session, job_id: int, model: Path, say: Say) -> None:
    """`fl result --register`: the model gets a passport naming each contributing dataset
    and its grant, and anyone checks it against the chain (here the hospital)."""
    from ailedger.ai.models import register_model, verify_model

    done = register_model(researcher, model, [], name="tumour-fl", federated_job=job_id)
    public_pem = done.public_key.read_bytes()
    check = verify_model(auditor, model, done.passport.path, public_pem)
    say(
        f"  the model is registered with a passport naming the {len(done.lineage.datasets)} "
        f"datasets whose updates were aggregated, each with its grant; verified by the "
        f"hospital: {sum(h.ok for h in check.hops)} of {len(check.hops)} checks hold"
        + ("" if check.ok else " [bold red](NOT verified)[/bold red]")
    )


def _run(
    researcher: Session,
    parties: dict[str, Session],
    job_id: int,
    task: Path,
    validation: Path,
    work: Path,
    say: Say,
) -> Any:
    from ailedger.federated.runner import coordinate, institution_running

    @contextmanager
    def institutions(superlink: str) -> Iterator[None]:
        with ExitStack() as stack:
            nodes = {
                name: stack.enter_context(
                    institution_running(party, job_id, superlink, work / name)
                )
                for name, party in parties.items()
            }
            killer = threading.Thread(
                target=_kill_in_round_two, args=(researcher, job_id, nodes["lab"]), daemon=True
            )
            killer.start()
            yield

    return coordinate(
        researcher,
        job_id,
        task,
        validation,
        work / "run",
        lambda line: say("  " + line),
        round_timeout=ROUND_TIMEOUT_S,
        institutions=institutions,
    )


def _kill_in_round_two(researcher: Session, job_id: int, node: Any) -> None:
    """The lab's machine dies once round 1 is anchored: it was selected for round 2 and
    never answers."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        job = researcher.federated_jobs.job(job_id)
        if job is not None and job.rounds_done >= 1:
            node.kill()
            return
        time.sleep(0.2)


def _data(work: Path) -> tuple[dict[str, Path], Path, Path]:
    import numpy as np
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    names = list(data.feature_names)
    order = np.random.default_rng(11).permutation(len(data.target))
    parts = dict(zip(INSTITUTIONS, np.array_split(order[:450], 3), strict=True))
    tables = {}
    for name, rows in parts.items():
        tables[name] = work / f"{name}.csv"
        _write(tables[name], data.data[rows], data.target[rows], names)
    validation = work / "validation.csv"
    _write(validation, data.data[order[450:]], data.target[order[450:]], names)
    columns = [names.index(f) for f in FEATURES]
    lows, highs = data.data[:, columns].min(axis=0), data.data[:, columns].max(axis=0)
    bounds = "\n".join(
        f'"{f}" = [{lo * 0.9:.6g}, {hi * 1.1:.6g}]'
        for f, lo, hi in zip(FEATURES, lows, highs, strict=True)
    )
    task = work / "task.toml"
    task.write_text(
        "features = [" + ", ".join(f'"{f}"' for f in FEATURES) + "]\n"
        'label = "diagnosis"\npositive = "malignant"\nrule = "fedavg"\n'
        "local_epochs = 10\nlearning_rate = 0.5\nbatch_size = 32\n\n[bounds]\n" + bounds + "\n"
    )
    return tables, validation, task


def _write(path: Path, x: Any, y: Any, names: list[str]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*FEATURES, "diagnosis"])
        for row, label in zip(x, y, strict=True):
            picked = [f"{row[names.index(f)]:.6g}" for f in FEATURES]
            writer.writerow([*picked, "malignant" if label == 0 else "benign"])


def _centralised_accuracy(tables: dict[str, Path], validation: Path, task: Path) -> float:
    import numpy as np

    from ailedger.federated.logistic import accuracy, train_centralised
    from ailedger.federated.task import read_table, read_task

    spec = read_task(task)
    parts = [read_table(spec, t) for t in tables.values()]
    x = np.vstack([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    weights = train_centralised(x, y, spec.local_epochs * ROUNDS, spec.learning_rate, 32)
    return float(accuracy(weights, *read_table(spec, validation)))

"""A federated job's on-chain life without Flower: three hospitals on an embedded chain
join with their own data under the researcher's grants, the coordinator runs two rounds
from updates handed to it directly, and each overreach is refused.

The rounds' transport (Flower) is tested in ``test_flower_runtime.py``; here the updates
are computed in the test, so every case (a free-rider, a revoked grant, a stranger's
node, a stray update, a malformed one) is exact and fast.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ailedger.chain.contracts.data_market import PURPOSES, Policy
from ailedger.chain.contracts.federated_jobs import JobState
from ailedger.errors import ForbiddenError, MalformedRequestError
from ailedger.federated.coordinator import SCORE_SCALE, Coordinator
from ailedger.federated.institution import InstitutionDesk, TrainOrder
from ailedger.federated.jobs import job_report, join_job, post_job
from ailedger.federated.logistic import train_centralised
from ailedger.federated.task import read_table, read_task
from ailedger.session import Session
from ailedger.sharing.owner import OwnerNode
from tests.web.homes import embedded_chain

pytestmark = pytest.mark.integration

AIL = 10**18
TRAINING = PURPOSES["model-training"]
FEATURES = ["mean radius", "mean texture", "mean smoothness", "worst concavity"]


@dataclass
class World:
    researcher: Session
    hospitals: dict[str, Session]
    datasets: dict[str, bytes]
    grants: dict[str, int]
    root: Path
    task: Path
    validation: Path


def _write_csv(path: Path, x: Any, y: Any, names: list[str]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*FEATURES, "diagnosis"])
        for row, label in zip(x, y, strict=True):
            picked = [row[names.index(f)] for f in FEATURES]
            writer.writerow([*picked, "malignant" if label == 0 else "benign"])


def _task(root: Path, x: Any, names: list[str]) -> Path:
    bounds = "\n".join(
        f'"{f}" = [{float(x[:, names.index(f)].min()) * 0.9}, '
        f"{float(x[:, names.index(f)].max()) * 1.1}]"
        for f in FEATURES
    )
    path = root / "task.toml"
    path.write_text(
        f"features = {FEATURES!r}\n".replace("'", '"')
        + 'label = "diagnosis"\npositive = "malignant"\nrule = "fedavg"\n'
        "local_epochs = 20\nlearning_rate = 0.5\nbatch_size = 32\n\n[bounds]\n" + bounds + "\n"
    )
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, contract_cache: Path) -> Iterator[World]:
    from sklearn.datasets import load_breast_cancer

    root = tmp_path_factory.mktemp("federated")
    data = load_breast_cancer()
    x, y, names = data.data, data.target, list(data.feature_names)
    order = np.random.default_rng(7).permutation(len(y))
    parts = np.array_split(order[:450], 3)
    with embedded_chain(root, contract_cache) as chain:
        researcher = chain.party("researcher")
        researcher.token.faucet(100 * AIL)
        researcher.token.approve(researcher.deployment.address("DataMarket"), 100 * AIL)
        hospitals, datasets, grants = {}, {}, {}
        for name, part in zip(("a", "b", "c"), parts, strict=True):
            hospital = chain.party(f"hospital-{name}")
            hospital.token.faucet(10 * AIL)
            table = root / f"{name}.csv"
            _write_csv(table, x[part], y[part], names)
            policy = Policy(TRAINING, needs_approval=False, price=0, duration_s=86400, max_reads=0)
            with OwnerNode(hospital) as node:
                datasets[name] = node.publish(table, policy, {"title": name}, None).dataset_id
            grants[name], _ = researcher.data_market.request_access(datasets[name], TRAINING)
            hospitals[name] = hospital
        validation = root / "validation.csv"
        _write_csv(validation, x[order[450:]], y[order[450:]], names)
        yield World(
            researcher, hospitals, datasets, grants, root, _task(root, x, names), validation
        )


def post_test_job(
    requester: Session,
    task: Path,
    validation: Path,
    *,
    rounds: int = 2,
    reward: int = 9 * AIL,
    stake: int = AIL,
) -> int:
    """A model-training job for one to three institutions, an hour to join and to run."""
    return post_job(
        requester,
        task,
        validation,
        purpose=TRAINING,
        rounds=rounds,
        min_participants=1,
        max_participants=3,
        reward=reward,
        stake=stake,
        join_window_s=3600,
        run_window_s=3600,
    ).job_id


def _post_and_join(world: World, names: str = "abc") -> int:
    job_id = post_test_job(world.researcher, world.task, world.validation)
    for name in names:
        join_job(world.hospitals[name], job_id, world.datasets[name], world.grants[name])
    world.researcher.federated_jobs.start(job_id)
    return job_id


def _local(world: World, name: str) -> list[float]:
    task = read_task(world.task)
    x, y = read_table(task, world.root / f"{name}.csv")
    return [float(w) for w in train_centralised(x, y, 20, 0.5, 32)]


def test_rounds_are_scored_anchored_and_paid_and_a_revoked_grant_stops_counting(
    world: World,
) -> None:
    job = _post_and_join(world)
    said: list[str] = []
    coordinator = Coordinator(
        world.researcher, job, read_task(world.task), world.validation, said.append
    )
    a, b, c = (world.hospitals[n].address.lower() for n in "abc")
    stranger = "0x" + "11" * 20
    nodes = [
        {"node_id": 1, "institution": a},
        {"node_id": 2, "institution": b},
        {"node_id": 3, "institution": c},
        {"node_id": 4, "institution": stranger},
    ]
    started = coordinator.start_round({"round": 1, "nodes": nodes})
    assert started["continue"] and started["selected"] == [1, 2, 3]
    zeros = started["weights"]
    result = coordinator.finish_round(
        {
            "round": 1,
            "updates": [
                {"node_id": 1, "weights": _local(world, "a"), "num_examples": 150},
                {"node_id": 2, "weights": _local(world, "b"), "num_examples": 150},
                {"node_id": 3, "weights": zeros, "num_examples": 150},  # a free-rider
                {"node_id": 4, "weights": _local(world, "a"), "num_examples": 999},  # stranger
            ],
            "failed": [],
        }
    )
    assert result["continue"] and coordinator.accuracy() > 0.85
    first = coordinator.outcomes[0]
    assert first.aggregated == sorted([a, b, c])
    assert first.dropped == {stranger: "not a member of the job"}
    assert first.scores[c] < 0.01 * SCORE_SCALE < min(first.scores[a], first.scores[b])

    # Hospital b withdraws consent: round 2 leaves it out, and its own node refuses too.
    world.hospitals["b"].data_market.revoke(world.grants["b"])
    with OwnerNode(world.hospitals["b"]) as node:
        desk = InstitutionDesk(node, job)
        try:
            refused = desk.train(TrainOrder(2, zeros, read_task(world.task)))
        finally:
            desk.close()
    assert not refused["ok"] and "revoked or expired" in refused["reason"]
    second = coordinator.start_round({"round": 2, "nodes": nodes})
    assert second["selected"] == [1, 3]
    with pytest.raises(MalformedRequestError, match="5 finite numbers"):
        coordinator.finish_round(
            {"round": 2, "updates": [{"node_id": 1, "weights": [1.0], "num_examples": 1}]}
        )
    # The malformed result left the round open; a round with no update is not anchored.
    empty = coordinator.finish_round({"round": 2, "updates": [], "failed": []})
    assert empty == {"continue": False, "reason": "no update arrived: round not anchored"}
    with pytest.raises(ForbiddenError, match="was not started"):
        coordinator.finish_round({"round": 2, "updates": [], "failed": []})
    coordinator.start_round({"round": 2, "nodes": nodes})
    coordinator.finish_round(
        {
            "round": 2,
            "updates": [
                {"node_id": 1, "weights": _local(world, "a"), "num_examples": 150},
                {"node_id": 2, "weights": _local(world, "b"), "num_examples": 150},  # stray
            ],
            "failed": [{"node_id": 3, "institution": c, "reason": "killed"}],
        }
    )
    anchored = world.researcher.federated_jobs.rounds(job)
    assert [r.round for r in anchored] == [1, 2]
    assert [x.lower() for x in anchored[1].aggregated] == [a]
    assert {x.lower() for x in anchored[1].dropped} == {b, c}

    before = {n: h.token.balance_of(h.address) for n, h in world.hospitals.items()}
    world.researcher.federated_jobs.finish(job)
    report = job_report(world.researcher, job)
    assert report.job.status == JobState.FINISHED
    gained = {n: h.token.balance_of(h.address) - before[n] for n, h in world.hospitals.items()}
    assert all(g >= AIL for g in gained.values())  # every stake back
    assert gained["a"] > gained["b"] > gained["c"]
    assert gained["c"] - AIL < 0.02 * 9 * AIL  # the free-rider earns about nothing


def test_the_coordinator_refuses_out_of_order_rounds_and_another_requesters_job(
    world: World,
) -> None:
    job = _post_and_join(world, "ac")  # b's grant may be revoked by the test above
    coordinator = Coordinator(
        world.researcher, job, read_task(world.task), world.validation, lambda _: None
    )
    with pytest.raises(ForbiddenError, match="round 1 is next"):
        coordinator.start_round({"round": 2, "nodes": []})
    with pytest.raises(MalformedRequestError):
        coordinator.start_round({"round": 1, "nodes": [{"node_id": 1, "institution": "0x12"}]})
    from ailedger.errors import ConfigError

    with pytest.raises(ConfigError, match="only its requester coordinates it"):
        Coordinator(world.hospitals["a"], job, read_task(world.task), world.validation, print)
    tampered = world.root / "validation-edited.csv"
    tampered.write_text(world.validation.read_text() + "1,1,1,1,benign\n")
    with pytest.raises(ConfigError, match="not the one committed"):
        Coordinator(world.researcher, job, read_task(world.task), tampered, print)


def test_a_node_that_let_a_round_time_out_is_not_asked_again(world: World) -> None:
    job = _post_and_join(world, "ac")
    coordinator = Coordinator(
        world.researcher, job, read_task(world.task), world.validation, lambda _: None
    )
    a, c = (world.hospitals[n].address.lower() for n in "ac")
    nodes = [{"node_id": 1, "institution": a}, {"node_id": 3, "institution": c}]
    coordinator.start_round({"round": 1, "nodes": nodes})
    silent = {"institution": c, "reason": "no answer within the round timeout (20 s)"}
    coordinator.finish_round(
        {
            "round": 1,
            "updates": [{"node_id": 1, "weights": _local(world, "a"), "num_examples": 150}],
            "failed": [silent],
        }
    )
    second = coordinator.start_round({"round": 2, "nodes": nodes})
    assert second["selected"] == [1]
    coordinator.finish_round(
        {
            "round": 2,
            "updates": [{"node_id": 1, "weights": _local(world, "a"), "num_examples": 150}],
            "failed": [],
        }
    )
    assert "left round 1 unanswered" in coordinator.outcomes[1].dropped[c]
    assert coordinator.outcomes[0].dropped[c] == silent["reason"]

"""An institution's desk: it trains the posted task and nothing else, its data never leaves,
and under a job's privacy terms each round is noised and charged to the dataset's budget.

A requester's ClientApp relays orders to this desk; here the orders are handed to it
directly (and once over its loopback HTTP), so each refusal is exact.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from pathlib import Path

import numpy as np
import pytest

from ailedger.ai.models import register_model, verify_model
from ailedger.chain.contracts.data_market import Policy
from ailedger.errors import ConfigError, MalformedRequestError
from ailedger.federated.coordinator import Coordinator
from ailedger.federated.http import institution_app
from ailedger.federated.institution import (
    BUDGET_REFUSAL,
    InstitutionDesk,
    SecAggOrder,
    TrainOrder,
    round_charge,
    train_round,
    work_refusal,
)
from ailedger.federated.jobs import join_job, post_job
from ailedger.federated.model_file import write_model
from ailedger.federated.task import PrivacyTerms, Task, read_table, read_task
from ailedger.privacy.charges import decode_charges
from ailedger.privacy.owner import set_privacy_cap
from ailedger.sharing.owner import OwnerNode
from tests.federated.test_coordinator import (
    AIL,
    TRAINING,
    World,
    _local,
    _post_and_join,
    post_test_job,
    world,
)
from tests.web.homes import TestClient

pytestmark = pytest.mark.integration
__all__ = ["world"]  # the chain and its three hospitals, shared with the coordinator's tests


def _zeros(world: World) -> list[float]:
    return [0.0] * (len(read_task(world.task).features) + 1)


def test_the_desk_trains_the_posted_task_only_and_hands_out_no_data(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = _post_and_join(world, "a")
    task = read_task(world.task)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the desk decrypts
    first_row = (world.root / "a.csv").read_text().splitlines()[1]
    with OwnerNode(world.hospitals["a"]) as node:
        desk = InstitutionDesk(node, job)
        try:
            # The table is in the desk's memory only: nothing the ClientApp could open.
            assert list(tmp_path.iterdir()) == []
            logged = node.audit.size
            answer = desk.train(TrainOrder(1, _zeros(world), task))
            assert answer["ok"] and answer["num_examples"] == 150
            assert len(answer["weights"]) == len(task.features) + 1
            assert first_row.split(",")[0] not in json.dumps(answer)  # the update alone
            read = node.audit.entries(logged, logged + 1)[0]
            assert (read["kind"], read["job"], read["round"]) == ("compute-read", f"fl-{job}", 1)

            steeper = dataclasses.replace(task, learning_rate=5.0)
            refused = desk.train(TrainOrder(1, _zeros(world), steeper))
            assert not refused["ok"] and "not the task the job posted" in refused["reason"]
            # One look per anchored round: a retry gets the same update, read once; other
            # weights for a served round, or a round the chain has not reached, get nothing.
            assert desk.train(TrainOrder(1, _zeros(world), task)) == answer
            other = [0.5] * len(_zeros(world))
            again = desk.train(TrainOrder(1, other, task))
            assert not again["ok"] and "was served already" in again["reason"]
            ahead = desk.train(TrainOrder(2, other, task))
            assert not ahead["ok"] and "not the job's next: 0 anchored" in ahead["reason"]
            beyond = desk.train(TrainOrder(3, other, task))
            assert not beyond["ok"] and "has 2 rounds" in beyond["reason"]
            assert node.audit.size == logged + 1  # refusals and the retry read nothing
            # Restarted (`fl serve` again), the desk still knows what it served.
            desk.close()
            desk = InstitutionDesk(node, job)
            assert desk.train(TrainOrder(1, _zeros(world), task)) == answer
            again = desk.train(TrainOrder(1, other, task))
            assert not again["ok"] and "was served already" in again["reason"]
            assert node.audit.size == logged + 1

            client = TestClient(institution_app(desk, "secret"))
            order = {"round": 1, "weights": _zeros(world), "task": task.as_json()}
            assert client.post("/fl/train", json=order).status_code == 401
            auth = {"Authorization": "Bearer secret"}
            short = {**order, "weights": [0.0]}
            assert client.post("/fl/train", json=short, headers=auth).status_code == 400
            assert client.post("/fl/train", json=order, headers=auth).json() == answer
        finally:
            desk.close()


def test_a_round_too_costly_to_serve_is_refused_before_any_read() -> None:
    """DP-SGD visits every row on each of its epochs/q steps: batch 1 on 2,000 rows is
    400 million visits, a round that would outlast any timeout."""
    task = Task(("age",), "outcome", "yes", (0.0,), (120.0,), local_epochs=100, batch_size=1)
    task = dataclasses.replace(task, privacy=PrivacyTerms(1.0, 1.0))
    assert "400,000,000 rows" in (work_refusal(task, 2000) or "")
    assert work_refusal(dataclasses.replace(task, batch_size=64), 2000) is None


def test_a_round_under_privacy_terms_is_dp_sgd_with_one_sampled_gaussian_charge(
    world: World,
) -> None:
    task = dataclasses.replace(read_task(world.task), privacy=PrivacyTerms(1.0, 2.0))
    charge = round_charge(task, 150)
    assert (charge.mechanism, charge.noise_multiplier) == ("sampled_gaussian", 2.0)
    assert charge.sampling_rate == pytest.approx(32 / 150) and charge.count == 94
    x, y = read_table(task, world.root / "a.csv")
    order = TrainOrder(1, _zeros(world), task)
    runs = [np.asarray(train_round(order, x, y)) for _ in range(2)]
    assert not np.allclose(runs[0], runs[1])  # fresh sampling and noise each time
    plain = np.asarray(train_round(dataclasses.replace(order, task=read_task(world.task)), x, y))
    assert np.allclose(
        plain, train_round(TrainOrder(1, _zeros(world), read_task(world.task)), x, y)
    )


def _private_dataset(world: World, root: Path) -> tuple[bytes, int]:
    """Hospital a's second table, published with a privacy cap of epsilon 6."""
    hospital = world.hospitals["a"]
    policy = Policy(TRAINING, needs_approval=False, price=0, duration_s=86400, max_reads=0)
    with OwnerNode(hospital) as node:
        dataset = node.publish(root / "a.csv", policy, {"title": "a, private"}, None).dataset_id
    set_privacy_cap(hospital, dataset, 6.0, 1e-5)
    grant, _ = world.researcher.data_market.request_access(dataset, TRAINING)
    return dataset, grant


def _private_job(world: World, task: Path, dataset: bytes, grant: int) -> int:
    job_id = post_test_job(world.researcher, task, world.validation, rounds=3, reward=3 * AIL)
    join_job(world.hospitals["a"], job_id, dataset, grant)
    join_job(world.hospitals["c"], job_id, world.datasets["c"], world.grants["c"])
    world.researcher.federated_jobs.start(job_id)
    return job_id


def test_a_private_dataset_trains_only_noised_and_each_round_is_charged(world: World) -> None:
    dataset, grant = _private_dataset(world, world.root)
    ledger = world.researcher.privacy_ledger
    plain = _private_job(world, world.task, dataset, grant)
    with OwnerNode(world.hospitals["a"]) as node:
        desk = InstitutionDesk(node, plain)
        try:
            refused = desk.train(TrainOrder(1, _zeros(world), read_task(world.task)))
        finally:
            desk.close()
    assert not refused["ok"] and "has a privacy budget" in refused["reason"]
    assert ledger.budget(dataset).charges == 0

    noisy = world.root / "task-private.toml"
    noisy.write_text(
        world.task.read_text()
        + '\n[privacy]\nclip_norm = 1.0\nnoise_multiplier = 2.0\non_budget = "drop"\n'
    )
    task = read_task(noisy)
    job = _private_job(world, noisy, dataset, grant)
    a, c = (world.hospitals[n].address.lower() for n in "ac")
    nodes = [{"node_id": 1, "institution": a}, {"node_id": 3, "institution": c}]
    coordinator = Coordinator(world.researcher, job, task, world.validation, lambda _: None)
    assert coordinator.start_round({"round": 1, "nodes": nodes})["selected"] == [1, 3]
    # The cap: one round (epsilon 5.22 at delta 1e-5) fits under 6, two (7.67) do not.
    with OwnerNode(world.hospitals["a"]) as node:
        desk = InstitutionDesk(node, job)
        try:
            first = desk.train(TrainOrder(1, _zeros(world), task))
            assert first["ok"], first
            budget = ledger.budget(dataset)
            assert budget.charges == 1 and 4.0 < budget.spent <= 6.0
            assert first["epsilon_spent"] == pytest.approx(budget.spent, abs=1e-5)
            charged = decode_charges(ledger.charges(dataset)[0].charges)
            assert charged == [round_charge(task, 150)]  # DP-SGD's 94 steps, as one charge
            coordinator.finish_round(
                {
                    "round": 1,
                    "updates": [{"node_id": 1, "weights": first["weights"], "num_examples": 150}],
                    "failed": [],
                }
            )
            # Round 2 would pass epsilon 6: the coordinator leaves a out (drop) ...
            second = coordinator.start_round({"round": 2, "nodes": nodes})
            assert second["selected"] == [3]
            # ... and a's own desk refuses it too, spending and reading nothing.
            logged = node.audit.size
            again = desk.train(TrainOrder(2, second["weights"], task))
            assert not again["ok"] and again["reason"].startswith(BUDGET_REFUSAL)
            assert ledger.budget(dataset).charges == 1 and node.audit.size == logged
        finally:
            desk.close()
    coordinator.finish_round(
        {
            "round": 2,
            "updates": [{"node_id": 3, "weights": _zeros(world), "num_examples": 150}],
            "failed": [],
        }
    )
    assert coordinator.outcomes[1].dropped[a].startswith(BUDGET_REFUSAL)
    # The model's passport names a's round-1 charge, and the verifier finds it on chain.
    world.researcher.federated_jobs.finish(job)
    weights = [float(w) for w in coordinator.weights]
    model = write_model(world.root / "private-model", task, weights, 0.0, 2)
    done = register_model(world.researcher, model, [], name="private", federated_job=job)
    (spent,) = done.lineage.privacy
    assert spent.dataset == "0x" + dataset.hex() and spent.epsilon == pytest.approx(
        ledger.budget(dataset).spent, abs=1e-3
    )
    public_pem = done.public_key.read_bytes()
    check = verify_model(world.hospitals["c"], model, done.passport.path, public_pem)
    assert check.ok, [h for h in check.hops if not h.ok]

    stopping = world.root / "task-private-stop.toml"
    stopping.write_text(noisy.read_text().replace('"drop"', '"stop"'))
    stop_job = _private_job(world, stopping, dataset, grant)
    stopper = Coordinator(
        world.researcher, stop_job, read_task(stopping), world.validation, lambda _: None
    )
    # Nothing tells the coordinator a's row count before a's first round: a's desk refuses
    # (its budget is already 5.22 of 6 spent), and under "stop" the round is not anchored.
    assert stopper.start_round({"round": 1, "nodes": nodes})["selected"] == [1, 3]
    with OwnerNode(world.hospitals["a"]) as node:
        desk = InstitutionDesk(node, stop_job)
        try:
            refusal = desk.train(TrainOrder(1, _zeros(world), read_task(stopping)))
        finally:
            desk.close()
    assert not refusal["ok"] and refusal["reason"].startswith(BUDGET_REFUSAL)
    halted = stopper.finish_round(
        {
            "round": 1,
            "updates": [{"node_id": 3, "weights": _zeros(world), "num_examples": 150}],
            "failed": [{"institution": a, "reason": refusal["reason"]}],
        }
    )
    assert halted["continue"] is False and 'on_budget = "stop"' in halted["reason"]
    assert stopper.outcomes == [] and ledger.budget(dataset).charges == 1


def test_only_a_dataset_with_a_budget_can_stop_a_job_on_it(world: World) -> None:
    """An institution whose dataset has no budget saying its budget ran out is a failed
    node like any other: the round is anchored without it, the job goes on."""
    stopping = world.root / "task-stop-plain.toml"
    stopping.write_text(
        world.task.read_text()
        + '\n[privacy]\nclip_norm = 1.0\nnoise_multiplier = 2.0\non_budget = "stop"\n'
    )
    job = _private_job(world, stopping, world.datasets["a"], world.grants["a"])
    coordinator = Coordinator(
        world.researcher, job, read_task(stopping), world.validation, lambda _: None
    )
    a, c = (world.hospitals[n].address.lower() for n in "ac")
    nodes = [{"node_id": 1, "institution": a}, {"node_id": 3, "institution": c}]
    assert coordinator.start_round({"round": 1, "nodes": nodes})["selected"] == [1, 3]
    result = coordinator.finish_round(
        {
            "round": 1,
            "updates": [{"node_id": 1, "weights": _zeros(world), "num_examples": 150}],
            "failed": [{"institution": c, "reason": "consent refused: privacy budget: spent"}],
        }
    )
    assert result["continue"] is True and len(coordinator.outcomes) == 1


def test_under_secure_aggregation_no_update_leaves_in_the_clear(world: World) -> None:
    """The requester's code asking the desk for a plain update of a SecAgg+ job gets
    nothing; the coordinator anchors the sum and the survivors, scoring by rows."""
    secure = world.root / "task-secure.toml"
    secure.write_text(
        world.task.read_text().replace(
            'rule = "fedavg"', 'rule = "fedavg"\nsecure_aggregation = true'
        )
    )
    task = read_task(secure)
    with pytest.raises(ConfigError, match="needs --min 3"):
        post_job(
            world.researcher, secure, world.validation, purpose=TRAINING, rounds=2,
            min_participants=2, max_participants=3, reward=AIL, stake=0,
            join_window_s=3600, run_window_s=3600,
        )  # fmt: skip
    job = post_job(
        world.researcher, secure, world.validation, purpose=TRAINING, rounds=2,
        min_participants=3, max_participants=3, reward=3 * AIL, stake=AIL,
        join_window_s=3600, run_window_s=3600,
    ).job_id  # fmt: skip
    for name in "abc":
        join_job(world.hospitals[name], job, world.datasets[name], world.grants[name])
    world.researcher.federated_jobs.start(job)
    with OwnerNode(world.hospitals["a"]) as node:
        desk = InstitutionDesk(node, job)
        logged = node.audit.size
        plain = desk.train(TrainOrder(1, _zeros(world), task))
        assert not plain["ok"] and "aggregates securely" in plain["reason"]
        order = TrainOrder(1, _zeros(world), task)
        garbage = desk.secagg(SecAggOrder(1, "bm90IGEgcmVjb3Jk", order, {}))
        assert not garbage["ok"] and "ConfigRecord" in garbage["reason"]  # the worker read it
        assert node.audit.size == logged  # nothing was read for either

        class Protocol:
            """Flower's client steps, as the desk sees them: mask this round's update."""

            def step(self, *_: object, **__: object) -> dict[str, object]:
                return {"configs": "masked"} if _[4:] else {"needs_update": True}

        desk._party = Protocol()  # type: ignore[assignment]
        masked = desk.secagg(SecAggOrder(1, "c2V0dXA=", order, {}))
        assert masked == {"ok": True, "configs": "masked", "num_examples": 150}
        # The round set up anew among other nodes: subtracting one sum from the other
        # would give an update, so the desk masks each round's update once.
        again = desk.secagg(SecAggOrder(1, "c2V0dXA=", order, {}))
        assert not again["ok"] and "masked and sent already" in again["reason"]

    coordinator = Coordinator(world.researcher, job, task, world.validation, lambda _: None)
    a, b, c = (world.hospitals[n].address.lower() for n in "abc")
    nodes = [{"node_id": i, "institution": w} for i, w in enumerate((a, b, c), start=1)]
    assert coordinator.start_round({"round": 1, "nodes": nodes})["selected"] == [1, 2, 3]
    with pytest.raises(MalformedRequestError):
        coordinator.finish_round({"round": 1, "updates": [], "failed": []})
    mean = [(x + y) / 2 for x, y in zip(_local(world, "a"), _local(world, "b"), strict=True)]
    survivors = [{"node_id": 1, "num_examples": 150}, {"node_id": 2, "num_examples": 150}]
    failed = [{"institution": c, "reason": "no answer within secure aggregation"}]
    body = {"round": 1, "aggregate": mean, "survivors": survivors, "failed": failed}
    assert coordinator.finish_round(body)["continue"] is True
    (outcome,) = coordinator.outcomes
    assert outcome.aggregated == sorted([a, b]) and c in outcome.dropped
    assert outcome.scores[a] == outcome.scores[b] > 0  # the round's gain, shared by rows
    (anchored,) = world.researcher.federated_jobs.rounds(job)
    assert [x.lower() for x in anchored.aggregated] == sorted([a, b])
    assert [x.lower() for x in anchored.dropped] == [c]

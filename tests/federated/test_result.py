"""What a federated job made: `fl result` and the model passport that names every
participant's dataset and grant, checked hop by hop against the chain.

The rounds are run by the coordinator from updates handed to it (``test_coordinator.py``
does the same); what is tested here is what the chain lets anyone conclude afterwards.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from ailedger.ai.lineage import DatasetUse, FederatedTraining, Lineage
from ailedger.ai.models import read_evaluation, register_model, verify_model
from ailedger.ai.passport import SignatureInvalidError, passport_key, sign_passport
from ailedger.errors import ConfigError
from ailedger.federated.coordinator import Coordinator
from ailedger.federated.jobs import job_result
from ailedger.federated.model_file import write_model
from ailedger.federated.task import read_task
from ailedger.session import Session
from tests.federated.test_coordinator import World, _local, _post_and_join, post_test_job, world

pytestmark = pytest.mark.integration
__all__ = ["world"]


def _run_two_rounds(world: World, job: int) -> Coordinator:
    """a and b train both rounds; c joined but its node never answers."""
    task = read_task(world.task)
    coordinator = Coordinator(world.researcher, job, task, world.validation, lambda _: None)
    a, b, c = (world.hospitals[n].address.lower() for n in "abc")
    nodes = [{"node_id": i, "institution": w} for i, w in enumerate((a, b, c), start=1)]
    for number in (1, 2):
        assert coordinator.start_round({"round": number, "nodes": nodes})["continue"]
        coordinator.finish_round(
            {
                "round": number,
                "updates": [
                    {"node_id": 1, "weights": _local(world, "a"), "num_examples": 150},
                    {"node_id": 2, "weights": _local(world, "b"), "num_examples": 150},
                ],
                "failed": [{"institution": c, "reason": "no answer within 30 s"}],
            }
        )
    return coordinator


def _model(world: World, coordinator: Coordinator, name: str) -> Path:
    weights = [float(w) for w in coordinator.weights]
    accuracy, rounds = coordinator.accuracy(), len(coordinator.outcomes)
    return write_model(world.root / name, read_task(world.task), weights, accuracy, rounds)


def test_the_result_names_the_anchored_model_and_its_passport_every_aggregated_dataset(
    world: World,
) -> None:
    job = _post_and_join(world)
    coordinator = _run_two_rounds(world, job)
    model = _model(world, coordinator, "fl-model")
    with pytest.raises(ConfigError, match="running, not finished"):
        register_model(world.researcher, model, [], name="early", federated_job=job)
    world.researcher.federated_jobs.finish(job)

    result = job_result(world.researcher, job, model)
    assert result.model_matches is True
    assert result.final_model == coordinator.outcomes[-1].model_hash
    shares = {c.institution.lower(): c for c in result.contributions}
    a, b, c = (world.hospitals[n].address.lower() for n in "abc")
    assert shares[c].score == 0 and shares[c].reward == 0  # it never sent an update
    assert shares[a].share + shares[b].share == pytest.approx(1.0)
    assert shares[a].reward and shares[b].reward and shares[a].reward + shares[b].reward <= 9e18

    stranger = world.hospitals["a"]
    with pytest.raises(ConfigError, match="not a job this home posted"):
        register_model(stranger, model, [], name="not mine", federated_job=job)
    done = register_model(world.researcher, model, [], name="tumours", federated_job=job)
    assert done.lineage.federated_jobs == (FederatedTraining(job, result.final_model),)
    assert {(d.dataset, d.grant) for d in done.lineage.datasets} == {
        ("0x" + world.datasets[n].hex(), world.grants[n]) for n in "ab"
    }
    assert done.lineage.privacy == ()  # the task had no privacy terms
    check = verify_model(stranger, model, done.passport.path, done.public_key.read_bytes())
    assert check.ok, [h for h in check.hops if not h.ok]
    assert any("federated job" in h.what for h in check.hops)

    # The weights changed after the job: not the anchored model, and not the signed one.
    tampered = json.loads((model / "model.json").read_text())
    tampered["bias"] += 0.5
    (model / "model.json").write_text(json.dumps(tampered))
    assert job_result(world.researcher, job, model).model_matches is False
    with pytest.raises(ConfigError, match="not the model federated job"):
        register_model(world.researcher, model, [], name="tampered", federated_job=job)
    with pytest.raises(SignatureInvalidError):
        verify_model(stranger, model, done.passport.path, done.public_key.read_bytes())


def _signed_claim(world: World, model: Path, job: int, final: str, names: str) -> list[str]:
    """The failed hops of a passport its owner signs naming ``names``' datasets."""
    claimed = tuple(DatasetUse("0x" + world.datasets[n].hex(), world.grants[n]) for n in names)
    report, metrics = read_evaluation(None)
    fl = (FederatedTraining(job, final),)
    lineage = Lineage(f"claims-{names}", "1", (), claimed, (), report, 0, federated_jobs=fl)
    key, public_pem = passport_key(world.researcher.home.path)
    passport = sign_passport(model, lineage, "# claims\n", key, world.root / f"{names}.sig")
    world.researcher.model_registry.register_version(
        hashlib.sha256(names.encode()).digest(),
        bytes.fromhex(passport.sha256[2:]),
        hashlib.sha256(b"# claims\n").digest(),
        bytes.fromhex(report.sha256[2:]),
        metrics,
        [],
    )
    check = verify_model(world.hospitals["b"], model, passport.path, public_pem)
    return [f"{h.what}: {h.reason}" for h in check.hops if not h.ok]


def test_a_passport_must_name_exactly_what_went_into_the_job(world: World) -> None:
    """The owner signs its own lineage, so the signature holds whatever it claims: naming
    c, which joined but never contributed, or leaving out b, which did, is caught against
    the chain; so is a model file whose features were changed after the job."""
    job = _post_and_join(world)
    coordinator = _run_two_rounds(world, job)
    model = _model(world, coordinator, "fl-claims")
    world.researcher.federated_jobs.finish(job)
    final = coordinator.outcomes[-1].model_hash

    (extra,) = _signed_claim(world, model, job, final, "abc")
    assert world.datasets["c"].hex()[:16] in extra and "aggregated" in extra
    (short,) = _signed_claim(world, model, job, final, "a")
    assert "leaves out dataset(s) 0x" + world.datasets["b"].hex() in short
    assert _signed_claim(world, model, job, final, "ab") == []

    document = json.loads((model / "model.json").read_text())
    document["features"] = list(reversed(document["features"]))  # same weights, read otherwise
    (model / "model.json").write_text(json.dumps(document))
    with pytest.raises(ConfigError, match="features or bounds are not the task's"):
        register_model(world.researcher, model, [], name="swapped", federated_job=job)


def test_a_lineage_round_trips_with_a_federated_job_and_without_one_hashes_as_before() -> None:
    report, _ = read_evaluation(None)
    plain = Lineage("m", "1", (), (), (), report, 5)
    assert b"federated_jobs" not in plain.to_json()
    assert Lineage.from_json(plain.to_json()) == plain
    federated = Lineage("m", "1", (), (), (), report, 5, (FederatedTraining(3, "0x" + "ab" * 32),))
    assert Lineage.from_json(federated.to_json()) == federated


def test_fl_result_through_the_cli_checks_the_model_and_registers_it(
    world: World,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The command's own parsing, checks and output, over the world's chain (the CLI's
    session is the researcher's, as `ailedger` would open it from the home)."""
    from contextlib import contextmanager

    import ailedger.cli.fl as fl_cli
    from tests.cli.test_cli import run

    @contextmanager
    def researcher(*_: object, **__: object) -> Iterator[Session]:
        yield world.researcher

    monkeypatch.setattr(fl_cli, "session", researcher)
    job = _post_and_join(world)
    model = _model(world, _run_two_rounds(world, job), "fl-cli")
    world.researcher.federated_jobs.finish(job)

    code, _, err = run(["fl", "result", str(job), "--register", "x"], capsys, monkeypatch)
    assert code != 0 and "--register needs --model" in err
    code, out, err = run(["fl", "result", str(job), "--model", str(model)], capsys, monkeypatch)
    assert code == 0, err
    assert "model.json is the anchored model" in out and "share" in out
    code, out, err = run(
        ["fl", "result", str(job), "--model", str(model), "--register", "cli", "--json"],
        capsys,
        monkeypatch,
    )
    assert code == 0, err
    shown = json.loads(out)
    assert shown["model_matches"] is True and shown["registered"]["version"] == 1
    assert len(shown["registered"]["datasets"]) == 2  # a and b; c never contributed

    moved = json.loads((model / "model.json").read_text())
    moved["weights"][0] += 1.0
    (model / "model.json").write_text(json.dumps(moved))
    code, _, err = run(["fl", "result", str(job), "--model", str(model)], capsys, monkeypatch)
    assert code != 0 and "is not the model job" in err


def test_fl_join_checks_the_task_file_against_the_posted_hash(
    world: World,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from contextlib import contextmanager

    import ailedger.cli.fl as fl_cli
    from tests.cli.test_cli import run

    @contextmanager
    def hospital(*_: object, **__: object) -> Iterator[Session]:
        yield world.hospitals["c"]

    monkeypatch.setattr(fl_cli, "session", hospital)
    job = post_test_job(world.researcher, world.task, world.validation)
    other = world.root / "task-other.toml"
    other.write_text(world.task.read_text().replace("local_epochs = 20", "local_epochs = 21"))
    joining = ["fl", "join", str(job), "--dataset", "0x" + world.datasets["c"].hex()]
    joining += ["--grant", str(world.grants["c"])]
    code, _, err = run([*joining, "--task", str(other)], capsys, monkeypatch)
    assert code != 0 and "is not the task job" in err
    assert world.researcher.federated_jobs.members(job) == []  # refused before joining
    code, out, err = run([*joining, "--task", str(world.task)], capsys, monkeypatch)
    assert code == 0, err
    assert "features mean radius" in out and "no privacy terms: updates leave un-noised" in out
    assert len(world.researcher.federated_jobs.members(job)) == 1

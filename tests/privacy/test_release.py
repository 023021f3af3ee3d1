"""Private releases end to end: an owner's node with a private dataset, buyers on the same
embedded chain asking over HTTP, and every probe that tries to get more out than the
budget allows.

One world per module (publishing and serving cost seconds); each test names the state it
needs and leaves the budget accounted for on chain, so the tests read in any order.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from ailedger.chain.contracts.data_market import PURPOSES, Policy
from ailedger.errors import AiledgerError, ConfigError
from ailedger.peer import wire
from ailedger.peer.signing import sign_request
from ailedger.privacy.buyer import ReleaseRefusedError, ask, buy_access, precheck
from ailedger.privacy.charges import decode_charges
from ailedger.privacy.desk import (
    BudgetExhaustedError,
    NotPrivateError,
    PrivacyDesk,
    new_nonce,
)
from ailedger.privacy.owner import set_privacy_cap
from ailedger.privacy.queries import parse_query, plan_charges
from ailedger.privacy.report import budget_report
from ailedger.session import Session
from tests.web.homes import Chain, embedded_chain

pytestmark = pytest.mark.integration

AIL = 10**18
CAP = 2.0
TRAINING = PURPOSES["model-training"]
ROWS = 300


def _table() -> str:
    lines = ["age,stage,outcome"]
    for i in range(ROWS):
        age = 20 + (i * 7) % 60
        lines.append(f"{age},{'early' if i % 3 else 'late'},{'yes' if age > 50 else 'no'}")
    return "\n".join(lines) + "\n"


QUERY: dict[str, Any] = {
    "columns": {
        "age": {"type": "int", "lower": 0, "upper": 120},
        "stage": {"type": "category", "categories": ["early", "late"]},
    },
    "statistics": [{"kind": "count"}, {"kind": "mean", "column": "age"}],
    "epsilon": 0.2,
}


@dataclass
class World:
    chain: Chain
    owner: Session
    buyer: Session
    other: Session
    dataset: bytes
    open_dataset: bytes
    grant: int
    url: str
    desk: PrivacyDesk


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, contract_cache: Path) -> Iterator[World]:
    from ailedger.node.app import create_app
    from ailedger.node.service import BackgroundServer, announce, privacy_desk
    from ailedger.sharing.owner import OwnerNode

    root = tmp_path_factory.mktemp("privacy")
    with embedded_chain(root, contract_cache) as chain:
        owner, buyer, other = (chain.party(n) for n in ("owner", "buyer", "other"))
        for s in (owner, buyer, other):
            s.key_registry.register(s.home.encryption_public_key)
        buyer.token.faucet(100 * AIL)
        other.token.faucet(100 * AIL)
        source = root / "table.csv"
        source.write_text(_table())
        policy = Policy(TRAINING, needs_approval=False, price=AIL, duration_s=86400, max_reads=0)
        with OwnerNode(owner) as node:
            dataset = node.publish(source, policy, {"title": "private"}, None).dataset_id
            open_dataset = node.publish(source, policy, {"title": "open"}, None).dataset_id
            set_privacy_cap(owner, dataset, CAP, 1e-6)
            desk = privacy_desk(node)
            assert desk is not None
            with BackgroundServer(create_app(node.gateway(), privacy=desk)) as url:
                announce(owner, url)
                grant = buy_access(buyer, dataset, TRAINING).grant_id
                yield World(chain, owner, buyer, other, dataset, open_dataset, grant, url, desk)


def _post(world: World, signer: Session, body: dict[str, Any]) -> httpx.Response:
    raw = json.dumps(body).encode()
    header = sign_request(
        signer.require_account(), world.owner.address, "POST", wire.PRIVATE_RELEASE, raw
    )
    return httpx.post(
        world.url + wire.PRIVATE_RELEASE,
        content=raw,
        headers={wire.SIGNATURE_HEADER: header},
        timeout=60,
    )


def _body(world: World, spec: Any, **changes: Any) -> dict[str, Any]:
    body = {
        "dataset": "0x" + world.dataset.hex(),
        "grant": world.grant,
        "kind": "query",
        "spec": spec,
        "nonce": new_nonce(),
    }
    body.update(changes)
    return body


def test_a_query_is_answered_charged_on_chain_and_logged(world: World) -> None:
    before = world.owner.privacy_ledger.budget(world.dataset)
    answer = ask(world.buyer, world.dataset, world.grant, "query", QUERY)

    assert set(answer["values"]) == {"count", "mean_age"}
    assert abs(answer["values"]["count"] - ROWS) < 200  # noisy, but a count
    after = world.owner.privacy_ledger.budget(world.dataset)
    assert after.charges == before.charges + 1
    assert after.spent == pytest.approx(answer["epsilon_spent_after"], abs=1e-5)
    assert after.spent > before.spent
    # What was charged is what the spec's mechanisms cost, planned without the data.
    record = world.owner.privacy_ledger.charges(world.dataset)[-1]
    assert decode_charges(record.charges) == plan_charges(parse_query(QUERY))
    assert record.buyer.lower() == world.buyer.address.lower()
    report = budget_report(world.buyer, world.dataset)
    assert report.consistent and report.remaining < CAP

    from ailedger.audit.log import AuditLog  # noqa: F401 - the running node holds the log

    entry = answer["audit_index"]
    assert isinstance(entry, int) and entry >= 0


def test_the_rows_of_a_private_dataset_are_not_served_even_with_a_grant(
    world: World, tmp_path: Path
) -> None:
    from ailedger.sharing.requester import fetch

    with pytest.raises(AiledgerError, match="this dataset is private"):
        fetch(world.buyer, world.dataset, world.grant, tmp_path / "copy.csv")
    assert not (tmp_path / "copy.csv").exists()


def test_a_replayed_request_is_refused_and_not_charged_twice(world: World) -> None:
    body = _body(world, QUERY)
    raw = json.dumps(body).encode()
    header = sign_request(
        world.buyer.require_account(), world.owner.address, "POST", wire.PRIVATE_RELEASE, raw
    )
    url = world.url + wire.PRIVATE_RELEASE
    first = httpx.post(url, content=raw, headers={wire.SIGNATURE_HEADER: header}, timeout=60)
    charges = world.owner.privacy_ledger.budget(world.dataset).charges
    second = httpx.post(url, content=raw, headers={wire.SIGNATURE_HEADER: header}, timeout=60)
    assert first.status_code == 200, first.text
    assert second.status_code == 403 and "replayed" in second.json()["error"]
    assert world.owner.privacy_ledger.budget(world.dataset).charges == charges


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ({**QUERY, "epsilon": -1}, "epsilon"),
        ({**QUERY, "epsilon": "NaN"}, "epsilon"),
        ({**QUERY, "epsilon": 0}, "epsilon"),
        ({**QUERY, "statistics": [{"kind": "mean", "column": "MRN-12345_Smith"}]}, "MRN"),
        ({**QUERY, "statistics": [{"kind": "raw", "column": "age"}]}, "kind"),
        ({**QUERY, "columns": {"age": {"type": "int", "lower": 0}}}, "upper"),
    ],
)
def test_a_bad_spec_is_refused_before_anything_is_read_or_charged(
    world: World, spec: dict[str, Any], says: str
) -> None:
    charges = world.owner.privacy_ledger.budget(world.dataset).charges
    response = _post(world, world.buyer, _body(world, spec))
    assert response.status_code == 422, response.text
    assert says in response.json()["error"]
    assert world.owner.privacy_ledger.budget(world.dataset).charges == charges


def test_a_request_that_states_its_own_epsilon_is_refused(world: World) -> None:
    response = _post(world, world.buyer, _body(world, QUERY, epsilon_charged=0.0001))
    assert response.status_code == 400 and "epsilon_charged" in response.json()["error"]


@pytest.mark.parametrize("who", ["stranger", "wrong-grant", "unsigned"])
def test_only_the_grant_holder_may_ask(world: World, who: str) -> None:
    if who == "unsigned":
        response = httpx.post(
            world.url + wire.PRIVATE_RELEASE, json=_body(world, QUERY), timeout=30
        )
        assert response.status_code == 401
        return
    signer = world.other
    body = _body(world, QUERY)
    if who == "wrong-grant":
        body["grant"] = world.grant + 1000
    response = _post(world, signer, body)
    assert response.status_code == 403, response.text
    assert "not a grant of" in response.json()["error"]


def test_a_dataset_without_a_budget_releases_nothing_labelled_private(world: World) -> None:
    with pytest.raises(NotPrivateError, match="no privacy budget"):
        precheck(world.buyer, world.open_dataset, "query", QUERY)
    grant = buy_access(world.buyer, world.open_dataset, TRAINING).grant_id
    body = _body(world, QUERY, dataset="0x" + world.open_dataset.hex(), grant=grant)
    response = _post(world, world.buyer, body)
    assert response.status_code == 403 and "no privacy budget" in response.json()["error"]


def test_a_compute_job_over_a_private_dataset_is_refused_before_payment(
    world: World, tmp_path: Path
) -> None:
    from ailedger.compute.requester.job import submit
    from ailedger.demo.compute import STATS_SCRIPT, write_bundle

    bundle = write_bundle(tmp_path / "job", STATS_SCRIPT, inputs=("0x" + world.dataset.hex(),))
    balance = world.buyer.token.balance_of(world.buyer.address)
    with pytest.raises(ConfigError, match="is private: no job's code runs over its rows"):
        submit(world.buyer, bundle, purpose=TRAINING)
    assert world.buyer.token.balance_of(world.buyer.address) == balance


def test_two_buyers_share_one_budget_and_the_last_is_refused_before_paying(
    world: World,
) -> None:
    """The attack a per-buyer budget invites: a second account to spend it all again."""
    other_grant = buy_access(world.other, world.dataset, TRAINING).grant_id
    ask(world.other, world.dataset, other_grant, "query", QUERY)
    report = budget_report(world.owner, world.dataset)
    assert len(report.by_buyer) >= 2
    assert report.spent_recomputed <= report.spent_charged + 1e-4
    assert report.spent_charged < CAP

    # Spend the rest in one greedy ask, from whichever buyer: refused by both nodes.
    greedy = {**QUERY, "epsilon": CAP}
    balance = world.other.token.balance_of(world.other.address)
    with pytest.raises(BudgetExhaustedError, match="remains"):
        precheck(world.other, world.dataset, "query", greedy)
    assert world.other.token.balance_of(world.other.address) == balance
    response = _post(world, world.other, _body(world, greedy, grant=other_grant))
    assert response.status_code == 403 and "over its cap" in response.json()["error"]


def test_repeating_a_statistic_runs_the_budget_out(world: World) -> None:
    """Averaging the noise away needs many answers; the cap stops them all at once."""
    small = {**QUERY, "statistics": [{"kind": "count"}], "epsilon": 0.15}
    answers = 0
    with pytest.raises((BudgetExhaustedError, ReleaseRefusedError)):
        for _ in range(200):
            ask(world.buyer, world.dataset, world.grant, "query", small)
            answers += 1
    budget = world.owner.privacy_ledger.budget(world.dataset)
    assert budget.spent <= CAP
    report = budget_report(world.owner, world.dataset)
    assert report.consistent and not math.isnan(report.spent_recomputed)
    assert answers < 200


def test_only_the_owner_raises_the_cap_and_the_act_is_logged(world: World) -> None:
    with pytest.raises(ConfigError, match="not yours"):
        set_privacy_cap(world.buyer, world.dataset, 50, 1e-6)
    change = set_privacy_cap(world.owner, world.dataset, CAP + 1, 1e-6)
    assert change.previous_cap == CAP and change.epsilon_cap == CAP + 1
    answer = ask(world.buyer, world.dataset, world.grant, "query", QUERY)
    assert answer["epsilon_spent_after"] <= CAP + 1


def test_a_dp_model_is_trained_at_the_owner_and_charged_as_a_training(world: World) -> None:
    spec = {
        "columns": {
            "age": {"type": "int", "lower": 0, "upper": 120},
            "outcome": {"type": "category", "categories": ["no", "yes"]},
        },
        "label": "outcome",
        "features": ["age"],
        "epsilon": 0.3,
        "delta": 1e-6,
        "epochs": 2,
        "batch_size": 64,
    }
    budget = world.owner.privacy_ledger.budget(world.dataset)
    if budget.remaining < 0.5:  # the tests before may have spent it: raise the cap
        set_privacy_cap(world.owner, world.dataset, budget.spent + 1, 1e-6)
    answer = ask(world.buyer, world.dataset, world.grant, "training", spec)
    model = answer["values"]["model"]
    assert answer["values"]["rows"] == ROWS
    assert model["features"] == ["age"] and len(model["weights"]) == 1
    record = world.owner.privacy_ledger.charges(world.dataset)[-1]
    (charge,) = decode_charges(record.charges)
    assert record.kind.name == "TRAINING" and charge.mechanism == "sampled_gaussian"
    assert charge.sampling_rate == pytest.approx(64 / ROWS)


def test_nothing_leaves_when_the_charge_is_not_mined(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The answer is computed before it is charged; a chain that refuses the charge (a
    release racing this one took the index) must not see it released anyway."""
    from ailedger.errors import TransactionRevertedError

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise TransactionRevertedError("privacy: stale charge index")

    budget = world.owner.privacy_ledger.budget(world.dataset)
    if budget.remaining < 0.5:
        set_privacy_cap(world.owner, world.dataset, budget.spent + 1, 1e-6)
    monkeypatch.setattr(world.desk.ledger, "charge", refused)
    response = _post(world, world.buyer, _body(world, QUERY))
    assert response.status_code == 503 and "nothing was released" in response.json()["error"]
    assert "values" not in response.json() and "count" not in response.text
    assert response.headers["Retry-After"] == "5"

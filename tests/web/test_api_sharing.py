"""The sharing and account API on a real chain: an owner and a researcher, each served by
its own home's routers, the owner's gateway running in this process.

The whole flow (publish, request, grant, fetch, revoke, fetch refused), a denial, and
the attacks: an auditor writing, another home's request or grant ids, malformed ids and
forms, an upload past the limit. Each attack checks that nothing changed."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ailedger.audit.merkle import leaf_hash, verify_inclusion
from ailedger.node.app import create_app
from ailedger.node.service import BackgroundServer, announce
from ailedger.session import Session
from ailedger.sharing.owner import OwnerNode
from ailedger.web.api import account, sharing
from ailedger.web.deps import WebContext
from tests.web.homes import TestClient, auditor, embedded_chain, operator_of, router_client

LIMIT = 64 * 1024
AIL = 10**18
RESEARCH = "rare-disease-research"


@dataclass
class World:
    owner: Session
    researcher: Session
    node: OwnerNode
    owner_api: TestClient
    researcher_api: TestClient
    auditor_api: TestClient  # reads the owner's home, changes nothing
    stranger_api: TestClient  # a third home, with its own datasets
    researcher_auditor_api: TestClient
    source: bytes


def _routers() -> list[Any]:
    return [sharing.router(max_upload_bytes=LIMIT), account.router()]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, contract_cache: Path) -> Iterator[World]:
    root = tmp_path_factory.mktemp("web-sharing")
    with embedded_chain(root, contract_cache) as chain:
        owner, researcher, stranger = (chain.party(n) for n in ("owner", "researcher", "other"))
        with OwnerNode(owner) as node, BackgroundServer(create_app(node.gateway())) as url:
            announce(owner, url)
            owner_ctx = WebContext(owner, node=node)
            researcher_ctx = WebContext(researcher)
            yield World(
                owner,
                researcher,
                node,
                router_client(owner_ctx, _routers(), operator_of(owner)),
                router_client(researcher_ctx, _routers(), operator_of(researcher)),
                router_client(owner_ctx, _routers(), auditor("0x" + "ab" * 20)),
                router_client(WebContext(stranger), _routers(), operator_of(stranger)),
                router_client(researcher_ctx, _routers(), auditor("0x" + "cd" * 20)),
                os.urandom(20_000) + b"rare disease cohort\n",
            )


def publish(api: TestClient, data: bytes, **fields: Any) -> Any:
    form: dict[str, Any] = {
        "title": "Rare disease cohort",
        "tags": "genomics, rare",
        "description": "de-identified",
        "purposes": [RESEARCH],
        "price": "5",
        "duration": "1d",
        "max_reads": "3",
        "approval": "true",
    }
    form.update(fields)
    return api.post("/api/v1/datasets", data=form, files={"file": ("cohort.csv", data)})


def status_of(world: World, request_id: int) -> str:
    grant = world.owner.data_market.grant_info(request_id)
    assert grant is not None
    return grant.status.name.lower()


def ok(response: Any, code: int = 200) -> Any:
    assert response.status_code == code, response.text
    return response.json()


@pytest.fixture(scope="module")
def funded(world: World) -> World:
    ok(world.researcher_api.post("/api/v1/account/faucet", json={"amount": "100"}))
    ok(world.researcher_api.post("/api/v1/account/register-key"))
    return world


@pytest.fixture(scope="module")
def dataset(funded: World) -> str:
    return str(ok(publish(funded.owner_api, funded.source), 201)["dataset"])


def ask(world: World, dataset: str, purpose: str = RESEARCH) -> int:
    made = ok(
        world.researcher_api.post(
            "/api/v1/research/requests", json={"dataset": dataset, "purpose": purpose}
        ),
        201,
    )
    return int(made["request"])


def test_publish_request_grant_fetch_revoke(funded: World, dataset: str) -> None:
    world = funded
    found = ok(world.researcher_api.get("/api/v1/datasets", params={"text": "rare"}))
    assert [d["dataset"] for d in found["datasets"]] == [dataset]
    shown = ok(world.researcher_api.get(f"/api/v1/datasets/{dataset}"))
    assert shown["title"] == "Rare disease cohort" and shown["tags"] == ["genomics", "rare"]
    assert shown["purposes"] == [RESEARCH] and shown["max_reads"] == 3

    request_id = ask(world, dataset)
    early = world.researcher_api.post(f"/api/v1/research/grants/{request_id}/fetch")
    assert early.status_code == 403 and "pending" in early.json()["error"]
    pending = ok(world.owner_api.get("/api/v1/owner/requests", params={"status": "pending"}))
    assert request_id in [r["request"] for r in pending["requests"]]

    ok(world.owner_api.post(f"/api/v1/owner/requests/{request_id}/grant"))
    fetched = world.researcher_api.post(f"/api/v1/research/grants/{request_id}/fetch")
    assert fetched.status_code == 200 and fetched.content == world.source
    mine = ok(world.researcher_api.get("/api/v1/research/requests", params={"status": "granted"}))
    assert [r["request"] for r in mine["requests"]] == [request_id]

    world.node.log_chain_decisions()
    world.node.audit.checkpoint_now()
    owned = ok(world.owner_api.get("/api/v1/owner/datasets"))["datasets"]
    assert [(d["dataset"], d["reads"], d["grants"]) for d in owned] == [(dataset, 1, 1)]
    assert owned[0]["earned_base_units"] == str(5 * AIL)
    earned = ok(world.owner_api.get("/api/v1/owner/earnings"))
    assert earned["total_base_units"] == str(5 * AIL)
    assert earned["over_time"][-1]["total_base_units"] == str(5 * AIL)

    history = ok(world.owner_api.get("/api/v1/owner/history", params={"dataset": dataset}))
    reads = [e for e in history["entries"] if e["entry"]["kind"] == "read"]
    assert [e["entry"]["outcome"] for e in reads] == ["served"]
    read = reads[0]
    assert read["entry"]["requester"] == world.researcher.address and read["proved"] is True
    # the proof checks on its own, against the checkpoint's root, not only our word for it
    assert verify_inclusion(
        leaf_hash(world.node.audit.entry_bytes(read["index"])),
        read["index"],
        history["checkpoint_size"],
        [bytes.fromhex(h) for h in read["proof"]],
        bytes.fromhex(history["checkpoint_root"]),
    )

    ok(world.owner_api.post(f"/api/v1/owner/requests/{request_id}/revoke"))
    refused = world.researcher_api.post(f"/api/v1/research/grants/{request_id}/fetch")
    assert refused.status_code == 403 and "revoked" in refused.json()["error"]
    again = world.owner_api.post(f"/api/v1/owner/requests/{request_id}/revoke")
    assert again.status_code == 422 and "only a granted request" in again.json()["error"]


def test_a_denied_request_is_refunded_and_cannot_be_fetched(funded: World, dataset: str) -> None:
    world = funded
    before = world.researcher.token.balance_of(world.researcher.address)
    request_id = ask(world, dataset)
    assert world.researcher.token.balance_of(world.researcher.address) == before - 5 * AIL
    ok(world.owner_api.post(f"/api/v1/owner/requests/{request_id}/deny"))
    assert status_of(world, request_id) == "denied"
    assert world.researcher.token.balance_of(world.researcher.address) == before
    refused = world.researcher_api.post(f"/api/v1/research/grants/{request_id}/fetch")
    assert refused.status_code == 403 and "denied" in refused.json()["error"]


def test_reads_past_the_grants_limit_are_refused(funded: World) -> None:
    world = funded
    dataset = ok(publish(world.owner_api, b"one read", max_reads="1", approval="false"), 201)
    grant = ask(world, dataset["dataset"])
    assert status_of(world, grant) == "granted"  # granted on payment
    assert world.researcher_api.post(f"/api/v1/research/grants/{grant}/fetch").content == (
        b"one read"
    )
    second = world.researcher_api.post(f"/api/v1/research/grants/{grant}/fetch")
    assert second.status_code == 403 and "read limit" in second.json()["error"]


def test_an_auditor_changes_nothing(funded: World, dataset: str) -> None:
    world = funded
    request_id = ask(world, dataset)
    datasets = ok(world.owner_api.get("/api/v1/owner/datasets"))["total"]
    balance = world.researcher.token.balance_of(world.researcher.address)
    writes = [
        lambda: publish(world.auditor_api, b"x"),
        lambda: world.auditor_api.post(f"/api/v1/owner/requests/{request_id}/grant"),
        lambda: world.auditor_api.post(f"/api/v1/owner/requests/{request_id}/deny"),
        lambda: world.auditor_api.post(f"/api/v1/owner/requests/{request_id}/revoke"),
        lambda: world.auditor_api.post("/api/v1/account/faucet", json={"amount": "1"}),
        lambda: world.auditor_api.post("/api/v1/account/fund", json={"amount": "1"}),
        lambda: world.auditor_api.post("/api/v1/account/register-key"),
        lambda: world.researcher_auditor_api.post(
            "/api/v1/account/transfer", json={"to": world.owner.address, "amount": "1"}
        ),
        lambda: world.researcher_auditor_api.post(
            "/api/v1/research/requests", json={"dataset": dataset, "purpose": RESEARCH}
        ),
        lambda: world.researcher_auditor_api.post(f"/api/v1/research/grants/{request_id}/fetch"),
    ]
    for write in writes:
        response = write()
        assert response.status_code == 403, response.text
        assert "read-only" in response.json()["error"]
    assert status_of(world, request_id) == "pending"
    assert ok(world.owner_api.get("/api/v1/owner/datasets"))["total"] == datasets
    assert world.researcher.token.balance_of(world.researcher.address) == balance
    # reading is what an auditor may do
    assert ok(world.auditor_api.get("/api/v1/owner/requests"))["total"] >= 1
    assert ok(world.auditor_api.get("/api/v1/account"))["address"] == world.owner.address


def test_another_homes_request_and_grant_ids_are_refused(funded: World, dataset: str) -> None:
    world = funded
    request_id = ask(world, dataset)
    for action in ("grant", "deny", "revoke"):
        response = world.stranger_api.post(f"/api/v1/owner/requests/{request_id}/{action}")
        assert response.status_code == 404 and "no request" in response.json()["error"]
    assert status_of(world, request_id) == "pending"
    ok(world.owner_api.post(f"/api/v1/owner/requests/{request_id}/grant"))
    taken = world.stranger_api.post(f"/api/v1/research/grants/{request_id}/fetch")
    assert taken.status_code == 404 and "no grant" in taken.json()["error"]
    # the owner cannot fetch through its researcher's grant either
    assert world.owner_api.post(f"/api/v1/research/grants/{request_id}/fetch").status_code == 404
    unknown = world.owner_api.post("/api/v1/owner/requests/999999/grant")
    assert unknown.status_code == 404
    assert status_of(world, request_id) == "granted"


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "says"),
    [
        ("get", "/api/v1/datasets/0x1234", None, 400, "not a dataset id"),
        ("get", "/api/v1/datasets/" + "0x" + "zz" * 32, None, 400, "not a dataset id"),
        ("get", "/api/v1/datasets/" + "0x" + "00" * 32, None, 404, "no dataset"),
        ("post", "/api/v1/owner/requests/-1/grant", None, 422, "greater than or equal"),
        ("post", "/api/v1/owner/requests/abc/deny", None, 422, "valid integer"),
        ("post", f"/api/v1/owner/requests/{2**256}/revoke", None, 422, "less than or equal"),
        ("post", "/api/v1/research/grants/1.5/fetch", None, 422, "valid integer"),
        ("post", "/api/v1/research/requests", {"dataset": "0x12", "purpose": RESEARCH}, 422, ""),
        (
            "post",
            "/api/v1/research/requests",
            {"dataset": "0x" + "00" * 32, "purpose": "spying"},
            422,
            "",
        ),
        ("post", "/api/v1/research/requests", {"dataset": 7, "purpose": RESEARCH}, 422, ""),
        ("post", "/api/v1/account/transfer", {"to": "0x12", "amount": "1"}, 422, ""),
        (
            "post",
            "/api/v1/account/transfer",
            {"to": "0x" + "aB" * 20, "amount": "1"},
            422,
            "checksum",
        ),
        ("post", "/api/v1/account/faucet", {"amount": "NaN"}, 422, "not an amount"),
        ("post", "/api/v1/account/faucet", {"amount": "1e400"}, 422, "more than any account"),
        ("post", "/api/v1/account/faucet", {"amount": "20000"}, 422, "at most 10000"),
        ("get", "/api/v1/datasets?purpose=spying", None, 422, ""),
        ("get", "/api/v1/datasets?limit=100000", None, 422, ""),
        ("get", "/api/v1/owner/history?dataset=0x12", None, 422, ""),
    ],
)
def test_malformed_input_is_refused_clearly(
    funded: World, method: str, path: str, body: Any, status: int, says: str
) -> None:
    response = getattr(funded.owner_api, method)(path, **({"json": body} if body else {}))
    assert response.status_code == status, response.text
    assert says in response.text


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"max_reads": "many"}, "max_reads"),
        ({"max_reads": "-1"}, "max_reads"),
        ({"approval": "perhaps"}, "approval"),
        ({"purposes": ["spying"]}, "purposes"),
        ({"purposes": []}, "purposes"),
        ({"title": ""}, "title"),
        ({"price": "-1"}, "positive number"),
        ({"price": "1e400"}, "more than any account"),
        ({"duration": "forever"}, "not a duration"),
        ({"duration": "99999999d"}, "longest grant"),
        ({"surprise": "x"}, "surprise"),
    ],
)
def test_a_bad_publish_form_is_a_422_and_publishes_nothing(
    funded: World, fields: dict[str, Any], says: str
) -> None:
    world = funded
    before = ok(world.owner_api.get("/api/v1/owner/datasets"))["total"]
    response = publish(world.owner_api, b"data", **fields)
    assert response.status_code == 422, response.text
    assert says in response.json()["error"]
    assert ok(world.owner_api.get("/api/v1/owner/datasets"))["total"] == before


def test_uploads_past_the_limit_are_413_and_publish_nothing(funded: World) -> None:
    world = funded
    before = ok(world.owner_api.get("/api/v1/owner/datasets"))["total"]
    # past the limit but within what the declared length allows: refused while streaming
    streamed = publish(world.owner_api, b"x" * (LIMIT + 1))
    assert streamed.status_code == 413 and "larger than" in streamed.json()["error"]
    # declared far past it: refused before the body is read
    declared = publish(world.owner_api, b"x" * (LIMIT + 2 * 1024 * 1024))
    assert declared.status_code == 413
    # no Content-Length at all (chunked): still counted as it arrives
    boundary = "b0undary"

    def chunks() -> Iterator[bytes]:
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="title"\r\n\r\nbig\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="f"\r\n\r\n'
        ).encode()
        for _ in range(LIMIT // 4096 + 2):
            yield b"y" * 4096
        yield f"\r\n--{boundary}--\r\n".encode()

    chunked = world.owner_api.post(
        "/api/v1/datasets",
        content=chunks(),
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    assert chunked.status_code == 413
    assert ok(world.owner_api.get("/api/v1/owner/datasets"))["total"] == before


def test_an_upload_that_is_not_a_form_is_refused(funded: World) -> None:
    world = funded
    plain = world.owner_api.post("/api/v1/datasets", json={"title": "x"})
    assert plain.status_code == 415 and "multipart/form-data" in plain.json()["error"]
    no_file = world.owner_api.post(
        "/api/v1/datasets", data={"title": "x"}, files={"other": ("f", b"1")}
    )
    assert no_file.status_code == 400 and "file" in no_file.json()["error"]


def test_requests_the_chain_would_refuse_are_refused_before_sending(
    funded: World, dataset: str
) -> None:
    world = funded
    wrong = world.researcher_api.post(
        "/api/v1/research/requests", json={"dataset": dataset, "purpose": "model-training"}
    )
    assert wrong.status_code == 422 and "allows only" in wrong.json()["error"]
    missing = world.researcher_api.post(
        "/api/v1/research/requests", json={"dataset": "0x" + "00" * 32, "purpose": RESEARCH}
    )
    assert missing.status_code == 404
    broke = world.stranger_api.post(
        "/api/v1/research/requests", json={"dataset": dataset, "purpose": RESEARCH}
    )
    assert broke.status_code == 422 and "get tokens first" in broke.json()["error"]


def test_account_shows_balances_and_moves_tokens(funded: World) -> None:
    world = funded
    shown = ok(world.researcher_api.get("/api/v1/account"))
    assert shown["address"] == world.researcher.address
    assert shown["encryption_key_registered"] is True
    sent = ok(
        world.researcher_api.post(
            "/api/v1/account/transfer", json={"to": world.owner.address.lower(), "amount": "1.5"}
        )
    )
    assert int(sent["balance"]) == int(shown["token_base_units"]) - 15 * AIL // 10
    other = ok(world.researcher_api.get(f"/api/v1/account/balances/{world.owner.address}"))
    assert int(other["base_units"]) >= 15 * AIL // 10
    too_much = world.researcher_api.post(
        "/api/v1/account/transfer", json={"to": world.owner.address, "amount": "1000000"}
    )
    assert too_much.status_code == 422 and "less than" in too_much.json()["error"]


def test_nobody_signed_in_gets_401(funded: World) -> None:
    anonymous = router_client(WebContext(funded.owner, node=funded.node), _routers(), None)
    assert anonymous.get("/api/v1/datasets").status_code == 401
    assert anonymous.post("/api/v1/account/faucet", json={"amount": "1"}).status_code == 401


def test_no_generated_input_gets_a_5xx(funded: World) -> None:
    """schemathesis over every sharing and account operation, the owner signed in: each
    answer is one the operation documents or a refusal, never a server error."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    schema = schemathesis.openapi.from_asgi("/openapi.json", funded.owner_api.app)
    checked = 0
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(
            max_examples=8,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def never_fails(case: schemathesis.Case) -> None:
            response = case.call()
            assert response.status_code < 500, (case.method, case.path, response.text[:300])

        never_fails()
        checked += 1
    assert checked >= 17

"""The audit API over a real chain and a real audit log: history a page at a time, an
entry's proof, anchors over time, held receipts, and receipts checked step by step (a
tampered one is refused naming the check that failed)."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ailedger.audit.receipt import verify_receipt
from ailedger.sharing.owner import audit_signing_key
from ailedger.web.api.audit import router
from ailedger.web.deps import WebContext
from tests.web.audit_home import EXTRA, AuditedHomes, audited_homes
from tests.web.homes import auditor, operator_of, router_client

if TYPE_CHECKING:
    from fastapi.testclient import TestClient


@pytest.fixture(scope="module")
def homes(tmp_path_factory: pytest.TempPathFactory, contract_cache: Path) -> Iterator[AuditedHomes]:
    with audited_homes(tmp_path_factory.mktemp("audit-api"), contract_cache) as made:
        yield made


@pytest.fixture(scope="module")
def api(homes: AuditedHomes) -> TestClient:
    context = WebContext(homes.owner, node=homes.node)
    return router_client(context, [router()], operator_of(homes.owner))


def _verify(api: TestClient, receipt: Any, node: str | None = None) -> dict[str, Any]:
    response = api.post("/api/v1/audit/receipts/verify", json={"receipt": receipt, "node": node})
    assert response.status_code == 200, response.text
    verdict: dict[str, Any] = response.json()
    return verdict


def test_history_comes_a_page_at_a_time_newest_first(api: TestClient) -> None:
    first = api.get("/api/v1/audit/entries", params={"limit": 7}).json()
    total = first["total"]
    assert total >= EXTRA + 3 and first["checkpoint_size"] == total == first["size"]
    assert len(first["entries"]) == 7 and all(e["proof_ok"] for e in first["entries"])
    indices = [e["index"] for e in first["entries"]]
    assert indices == sorted(indices, reverse=True) and indices[0] == total - 1
    second = api.get("/api/v1/audit/entries", params={"limit": 7, "offset": 7}).json()
    assert [e["index"] for e in second["entries"]] == list(range(total - 8, total - 15, -1))
    past = api.get("/api/v1/audit/entries", params={"offset": total}).json()
    assert past["entries"] == [] and past["total"] == total


def test_history_filters_by_dataset_and_kind(api: TestClient, homes: AuditedHomes) -> None:
    about = api.get("/api/v1/audit/entries", params={"dataset": "0x" + homes.dataset[2:].upper()})
    rows = about.json()["entries"]
    assert rows and all(e["entry"]["dataset"].lower() == homes.dataset for e in rows)
    outcomes = {(e["entry"]["kind"], e["entry"]["outcome"]) for e in rows}
    assert ("read", "served") in outcomes and ("read", "refused") in outcomes
    queries = api.get("/api/v1/audit/entries", params={"kind": "mme-query", "limit": 500}).json()
    assert queries["total"] == EXTRA and {e["entry"]["kind"] for e in queries["entries"]} == {
        "mme-query"
    }


@pytest.mark.parametrize(
    "params",
    [{"offset": -1}, {"limit": 0}, {"limit": 501}, {"dataset": "0x12"}, {"offset": "two"}],
)
def test_bad_history_parameters_are_refused(api: TestClient, params: dict[str, Any]) -> None:
    assert api.get("/api/v1/audit/entries", params=params).status_code == 422


def test_an_entry_comes_with_a_receipt_under_its_anchor(
    api: TestClient, homes: AuditedHomes
) -> None:
    got = api.get(f"/api/v1/audit/entries/{homes.served_index}").json()
    assert got["entry"]["outcome"] == "served" and got["proof_ok"] and got["anchored"]
    key = audit_signing_key(homes.owner).public_key()
    assert verify_receipt(got["receipt"], key)
    anchors = api.get("/api/v1/audit/anchors").json()["anchors"]
    assert any(
        a["size"] == got["checkpoint"]["size"] and a["root"] == got["checkpoint"]["root"]
        for a in anchors
    )
    verdict = _verify(api, got["receipt"])
    assert verdict["ok"] and verdict["failed"] == []
    assert [c["name"] for c in verdict["checks"]] == [
        "format", "entry", "signature", "inclusion", "anchor"
    ]  # fmt: skip
    assert all(c["ok"] for c in verdict["checks"])
    assert verdict["computed_root"] == verdict["checkpoint_root"] == got["checkpoint"]["root"]
    assert len(verdict["sides"]) == len(got["receipt"]["inclusion_proof"])


def test_unknown_entries_are_404_and_bad_ids_422(api: TestClient) -> None:
    assert api.get("/api/v1/audit/entries/999999").status_code == 404
    assert "no entry 999999" in api.get("/api/v1/audit/entries/999999").json()["error"]
    assert api.get("/api/v1/audit/entries/-1").status_code == 422
    assert api.get(f"/api/v1/audit/entries/{2**70}").status_code == 422


def _tamper_entry(receipt: dict[str, Any]) -> None:
    receipt["entry"] = receipt["entry"].replace('"served"', '"servee"')


def _tamper_root(receipt: dict[str, Any]) -> None:
    lines = receipt["checkpoint"].split("\n")
    lines[2] = base64.b64encode(b"\x07" * 32).decode()
    receipt["checkpoint"] = "\n".join(lines)


def _tamper_signature(receipt: dict[str, Any]) -> None:
    body, _, signature = receipt["checkpoint"].partition("\n\n")
    dash, name, sig = signature.rstrip("\n").split(" ")
    raw = bytearray(base64.b64decode(sig))
    raw[-1] ^= 1
    receipt["checkpoint"] = f"{body}\n\n{dash} {name} {base64.b64encode(bytes(raw)).decode()}\n"


def _tamper_path(receipt: dict[str, Any]) -> None:
    receipt["inclusion_proof"][0] = base64.b64encode(b"\x01" * 32).decode()


@pytest.mark.parametrize(
    ("tamper", "failed"),
    [
        (_tamper_entry, ["inclusion"]),
        (_tamper_root, ["signature", "inclusion"]),
        (_tamper_signature, ["signature"]),
        (_tamper_path, ["inclusion"]),
    ],
)
def test_a_tampered_receipt_does_not_verify_and_names_the_failed_check(
    api: TestClient, homes: AuditedHomes, tamper: Any, failed: list[str]
) -> None:
    receipt = api.get(f"/api/v1/audit/entries/{homes.served_index}").json()["receipt"]
    altered = copy.deepcopy(receipt)
    tamper(altered)
    verdict = _verify(api, altered)
    assert verdict["ok"] is False and verdict["failed"] == failed


def test_a_receipt_of_another_node_is_checked_against_that_nodes_key(
    api: TestClient, homes: AuditedHomes
) -> None:
    receipt = api.get(f"/api/v1/audit/entries/{homes.served_index}").json()["receipt"]
    verdict = _verify(api, receipt, homes.researcher.address)  # bound no key: refused
    assert verdict["failed"] == ["signature"]
    assert "no checkpoint key" in verdict["checks"][2]["detail"]


@pytest.mark.parametrize(
    "body",
    [
        b'{"receipt": 1}',
        b'{"receipt": {"index": 0}}',
        b'{"receipt": {"index": -1, "entry": "{}", "checkpoint": "", "inclusion_proof": []}}',
        b'{"receipt": {"index": 0, "entry": "{}", "checkpoint": "", "inclusion_proof": ["!"]}}',
        b'{"receipt": {}, "node": "0x12"}',
        b"[]",
        b'{"receipt": {"index": 0, "entry": "\\ud800", "checkpoint": "", "inclusion_proof": []}}',
    ],
)
def test_what_is_not_a_receipt_is_refused_with_422(api: TestClient, body: bytes) -> None:
    response = api.post(
        "/api/v1/audit/receipts/verify", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, response.text


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{not json", 400),
        (b'{"receipt": ' + b"[" * 200_000 + b"]" * 200_000 + b"}", 413),
        (b'{"receipt": ' + b"[" * 50_000 + b"]" * 50_000 + b"}", 400),
    ],
)
def test_unreadable_or_hostile_bodies_are_refused_not_parsed(
    api: TestClient, body: bytes, status: int
) -> None:
    """A deeply nested body would recurse in C (the node runs with py_ecc's recursion limit
    of 100,000) and crash the process: it is refused before it is parsed."""
    import py_ecc  # noqa: F401 - the node imports it: the limit is what a node has

    response = api.post(
        "/api/v1/audit/receipts/verify", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == status, response.text


def test_anchors_and_checkpoints_over_time_and_the_timeline(api: TestClient) -> None:
    anchors = api.get("/api/v1/audit/anchors").json()
    assert anchors["anchors"] and all(a["time"] > 0 and a["block"] > 0 for a in anchors["anchors"])
    assert anchors["checkpoints"][-1]["size"] == anchors["anchors"][-1]["size"]
    hours = api.get("/api/v1/audit/timeline").json()
    extra = [p for p in hours["points"] if p["time"] < 1_710_000_000]
    assert len(extra) == EXTRA and all(p["entries"] == 1 for p in extra)
    days = api.get("/api/v1/audit/timeline", params={"bucket": "day"}).json()
    assert sum(p["entries"] for p in days["points"]) == sum(p["entries"] for p in hours["points"])
    assert api.get("/api/v1/audit/timeline", params={"bucket": "week"}).status_code == 422


def test_verify_reports_the_logs_coverage(api: TestClient, homes: AuditedHomes) -> None:
    report = api.get("/api/v1/audit/verify").json()
    assert report["ok"] is True and report["checkpoint_key_on_chain"] == "bound"
    assert report["anchored"] >= 1 and report["signed_size"] == report["size"]
    other = api.get("/api/v1/audit/verify", params={"node": homes.owner.address}).json()
    assert other["ok"] is True and other["url"] == homes.url
    assert api.get("/api/v1/audit/verify", params={"node": "0xnothex"}).status_code == 422


def test_the_requester_lists_and_checks_the_receipts_it_holds(homes: AuditedHomes) -> None:
    context = WebContext(homes.researcher)
    api = router_client(context, [router()], operator_of(homes.researcher))
    held = api.get("/api/v1/audit/receipts").json()["receipts"]
    assert [(h["dataset"], h["index"]) for h in held] == [(homes.dataset, homes.served_index)]
    got = api.get(f"/api/v1/audit/receipts/{homes.dataset}/{homes.served_index}").json()
    assert got["owner"] == homes.owner.address
    assert json.loads(got["receipt"]["entry"]) == held[0]["entry"]
    verdict = _verify(api, got["receipt"], homes.owner.address)
    assert verdict["ok"] and verdict["checks"][-1]["ok"] is not False
    missing = api.get(f"/api/v1/audit/receipts/{homes.dataset}/{homes.served_index + 1}")
    assert missing.status_code == 404


def test_an_auditor_reads_and_verifies_and_nobody_else_gets_in(homes: AuditedHomes) -> None:
    context = WebContext(homes.owner, node=homes.node)
    read_only = router_client(context, [router()], auditor("0x" + "ab" * 20))
    assert read_only.get("/api/v1/audit/entries").status_code == 200
    receipt = read_only.get(f"/api/v1/audit/entries/{homes.served_index}").json()["receipt"]
    assert _verify(read_only, receipt)["ok"]
    nobody = router_client(context, [router()], None)
    assert nobody.get("/api/v1/audit/entries").status_code == 401
    refused = nobody.post("/api/v1/audit/receipts/verify", json={"receipt": receipt})
    assert refused.status_code == 401

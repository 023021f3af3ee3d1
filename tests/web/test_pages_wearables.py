"""The wearables page and API over a real node: the person sees the batches imported at
their node and the feedback on them, and records the flags as receipts that check
against the chain; an auditor of the home and anyone not signed in see nothing of it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from ailedger.health.wearables.feedback import verify_feedback
from ailedger.node.wearables import vault_of
from ailedger.sharing.owner import OwnerNode
from tests.health.wearables.exports import apple_xml, record, write_zip
from tests.web.homes import Chain, TestClient, client, link_client, signed_in_client, web_node

pytestmark = pytest.mark.slow


@dataclass
class Person:
    http: TestClient
    auditor: TestClient
    nobody: TestClient


@pytest.fixture(scope="module")
def person(web_chain: Chain, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Person]:
    home = web_chain.party("wearer")
    records = [
        record("RestingHeartRate", 55 if day < 14 else 64, "count/min",
               start=f"2024-02-{day + 1:02d} 06:00:00 +0000")
        for day in range(21)
    ]  # fmt: skip
    export = write_zip(tmp_path_factory.mktemp("wearer") / "export.zip", apple_xml(*records))
    with OwnerNode(home) as node:
        vault_of(home, node).import_file(export, node.audit)
    with web_node(home) as node:
        yield Person(signed_in_client(node), link_client(node, read_only=True), client(node))


def test_the_person_sees_their_batches_and_feedback(person: Person) -> None:
    batches = person.http.get("/api/v1/wearables/batches").json()["batches"]
    assert [b["readings"] for b in batches] == [21]
    findings = person.http.get("/api/v1/wearables/feedback").json()
    rise = next(f for f in findings["findings"] if f["rule"] == "resting-heart-rate-rise")
    assert rise["status"] == "flag" and "(+9.0)" in rise["explanation"]
    assert findings["receipts"] == []  # reading records nothing
    page = person.http.get("/wearables").text
    assert batches[0]["batch_id"] in page and "resting-heart-rate-rise" in page
    assert 'hx-post="/wearables/feedback"' in page and 'name="csrf_token"' in page


def test_recording_gives_receipts_that_check_against_the_chain(person: Person) -> None:
    done = person.http.post("/api/v1/wearables/feedback").json()
    (receipt,) = done["receipts"]
    assert receipt["finding"]["rule"] == "resting-heart-rate-rise"
    assert verify_feedback(receipt, lambda _: []) == []
    shown = person.http.post("/wearables/feedback", headers={"HX-Request": "true"}).text
    assert "1 flag(s) recorded" in shown and "resting-heart-rate-rise" in shown
    assert json.loads(receipt["audit"]["entry"])["kind"] == "health-feedback"


def test_an_auditor_and_a_stranger_see_none_of_it(person: Person) -> None:
    for path in ("/api/v1/wearables/batches", "/api/v1/wearables/feedback"):
        assert person.auditor.get(path).status_code == 403
        assert person.nobody.get(path).status_code == 401
    assert person.auditor.post("/api/v1/wearables/feedback").status_code == 403
    assert person.auditor.get("/wearables").status_code == 403

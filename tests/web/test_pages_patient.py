"""The patient page and API over a real node: a patient accepts a hospital's link, sets
consent with the form, sees a sale's share and claims it; a withdrawal through the page
stops the next sale; an auditor reads but changes nothing; a wallet other than the one
named cannot accept the link."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from ailedger.chain.contracts.data_market import PURPOSES, Policy
from ailedger.errors import AiledgerError
from ailedger.session import Session
from ailedger.sharing.owner import OwnerNode
from ailedger.sharing.requester import request_access
from tests.web.homes import Chain, TestClient, client, link_client, signed_in_client, web_node

pytestmark = pytest.mark.slow
AIL = 10**18
RESEARCH = PURPOSES["rare-disease-research"]


@dataclass
class Site:
    hospital: Session
    researcher: Session
    patient: Session
    dataset: bytes
    http: TestClient
    auditor: TestClient
    nobody: TestClient


@pytest.fixture(scope="module")
def site(web_chain: Chain, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    hospital, researcher = web_chain.party("pt-hospital"), web_chain.party("pt-researcher")
    patient = web_chain.party("pt-patient")
    researcher.token.faucet(100 * AIL)
    table = tmp_path_factory.mktemp("patient") / "cohort.csv"
    table.write_text("id,x\nDEID-1,1\n")
    with OwnerNode(hospital) as node:
        policy = Policy(
            RESEARCH, needs_approval=False, price=10 * AIL, duration_s=3600, max_reads=0
        )
        dataset = node.publish(table, policy, {"title": "cohort"}, None).dataset_id
    with web_node(patient) as node:
        yield Site(
            hospital, researcher, patient, dataset,
            signed_in_client(node), link_client(node, read_only=True), client(node),
        )  # fmt: skip


def test_accept_consent_earn_claim_and_withdraw_through_the_page(site: Site) -> None:
    link = b"\x61" * 32
    site.hospital.patients.propose_link(link, site.patient.address)
    shown = site.http.post("/patient/accept", data={"link": "0x" + link.hex()}).text
    assert "link accepted" in shown
    status = site.http.get("/api/v1/patient/status").json()
    assert status["links"] == [
        {"link": "0x" + link.hex(), "hospital": site.hospital.address, "status": "active"}
    ]
    said = site.http.post("/patient/consent", data={"allow": ["rare-disease-research"]}).text
    assert "you now consent to: rare-disease-research" in said
    site.hospital.patients.add_to_cohort(site.dataset, {link: 1})
    site.hospital.patients.set_share(site.dataset, 2_000)
    request_access(site.researcher, site.dataset, RESEARCH)  # granted at once: paid out
    page = site.http.get("/patient").text
    assert "2 AIL waiting" in page and 'value="rare-disease-research" checked' in page
    assert "claimed 2 AIL" in site.http.post("/patient/claim").text
    assert "nothing to claim yet" in site.http.post("/patient/claim").text

    assert "consent to: nothing" in site.http.post("/patient/consent", data={}).text
    with pytest.raises(AiledgerError, match="a patient withdrew consent"):
        request_access(site.researcher, site.dataset, RESEARCH)


def test_refusals_are_shown_and_an_auditor_changes_nothing(site: Site) -> None:
    other = b"\x62" * 32
    site.hospital.patients.propose_link(other, site.researcher.address)  # someone else
    refused = site.http.post("/patient/accept", data={"link": "0x" + other.hex()}).text
    assert "names the wallet" in refused and "propose a link to this wallet" in refused
    assert (
        "a link id is 64 hex digits" in site.http.post("/patient/accept", data={"link": "x"}).text
    )
    bad = site.http.post("/api/v1/patient/consent", json={"allow": ["everything"]})
    assert bad.status_code == 422 and "unknown purpose" in bad.text
    assert site.auditor.get("/patient").status_code == 200
    assert "consent-form" not in site.auditor.get("/patient").text
    assert site.auditor.post("/api/v1/patient/consent", json={"allow": []}).status_code == 403
    assert site.auditor.post("/api/v1/patient/claim").status_code == 403
    assert site.nobody.get("/api/v1/patient/status").status_code == 401

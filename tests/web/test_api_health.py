"""The clinician's API over real homes on one chain: a hospital with imported patients
(its matchmaker serving MME), a clinic asking it through the federation; search with
explanations, diagnoses, saved queries and their notifications, and bad terms refused."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ailedger.demo.records import RARE_CASE, write_bundles
from ailedger.health import clinic
from ailedger.health.mme import NodeContact
from ailedger.health.node import HealthNode
from ailedger.session import Session
from ailedger.sharing.owner import OwnerNode
from ailedger.web.api.health import router
from ailedger.web.deps import WebContext
from tests.web.homes import auditor, embedded_chain, operator_of, router_client

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

CONTACT = "mailto:genetics@hospital-a.example.org"


@dataclass
class Clinics:
    hospital: Session
    clinic: Session
    api: TestClient  # the hospital's, its operator signed in
    clinic_api: TestClient
    read_only: TestClient


def _query(terms: list[str]) -> dict[str, Any]:
    return clinic.query_document(terms, [], [], "local")


@pytest.fixture(scope="module")
def homes(tmp_path_factory: pytest.TempPathFactory, contract_cache: Path) -> Iterator[Clinics]:
    from ailedger.health.federation import known_party
    from ailedger.health.mme import MatchmakerService
    from ailedger.health.mme_auth import authenticator
    from ailedger.node.app import create_app
    from ailedger.node.service import BackgroundServer, announce

    root = tmp_path_factory.mktemp("clinic-api")
    bundles = write_bundles(root / "fhir", 12)
    with embedded_chain(root, contract_cache) as chain:
        hospital, other = chain.party("hospital"), chain.party("clinic")
        other.key_registry.register(other.home.encryption_public_key)  # known on chain
        with HealthNode(other.home.path) as desk:  # whom the clinic's queries name
            desk.set_contact(NodeContact("Clinic desk", "mailto:desk@clinic.example.org"))
        with HealthNode(hospital.home.path) as health, OwnerNode(hospital) as node:
            health.import_files(bundles[:-1])
            clinic.save_query(health, "kabuki-like", _query(RARE_CASE))
            health.import_files([bundles[-1]])  # the rare case arrives: a notification
            service = MatchmakerService(
                health.cohort,
                authenticator(health.tokens, hospital.address, known_party(hospital)),
                node.audit,
            )
            with BackgroundServer(create_app(node.gateway(), matchmaker=service)) as url:
                announce(hospital, url)
                here = WebContext(hospital, node=node, matchmaker=service)
                there = WebContext(other)
                yield Clinics(
                    hospital,
                    other,
                    router_client(here, [router()], operator_of(hospital)),
                    router_client(there, [router()], operator_of(other)),
                    router_client(here, [router()], auditor("0x" + "cd" * 20)),
                )


def test_similar_cases_here_come_with_their_explanation(homes: Clinics) -> None:
    found = homes.api.get("/api/v1/health/matches", params={"hpo": RARE_CASE[:6], "limit": 3})
    assert found.status_code == 200, found.text
    results = found.json()["results"]
    top = results[0]
    assert top["score"]["patient"] >= 0.9 and top["patient"]["contact"]["href"] == CONTACT
    # An MME result patient: surrogate id, contact, and the features and genes matchmaking
    # consent shares (issue 16); never the record (no name, dates or source records).
    assert set(top["patient"]) <= {"id", "contact", "features", "genomicFeatures"}
    assert top["patient"]["features"] and len(top["patient"]["id"]) == 24
    terms = top["explanation"]["matched_terms"]
    assert terms and {t[0] for t in terms} <= set(RARE_CASE[:6]) and terms[0][3] > 0
    assert len(results) <= 3
    read_only = homes.read_only.get("/api/v1/health/matches", params={"hpo": RARE_CASE[:2]})
    assert read_only.status_code == 200  # searching reads: an auditor may


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"hpo": "garbage"}, "is not an HPO id; expected the form HP:0001250"),
        ({"hpo": "HP:9999999"}, "HP:9999999"),  # unknown: nothing left to search with
        ({"hpo": RARE_CASE[0], "exclude": RARE_CASE[0]}, "both observed and excluded"),
        ({"hpo": "HP:" + "9" * 500}, ""),
        ({"hpo": [RARE_CASE[0]] * 101}, ""),
        ({"gene": "KMT2D"}, ""),
        ({"hpo": RARE_CASE[0], "limit": 0}, ""),
    ],
)
def test_bad_terms_are_refused_with_422_saying_what_to_fix(
    homes: Clinics, params: dict[str, Any], says: str
) -> None:
    for path in ("/api/v1/health/matches", "/api/v1/health/diagnoses"):
        refused = homes.api.get(path, params=params)
        assert refused.status_code == 422, (path, refused.text)
        assert says in refused.text


def test_diagnoses_are_ranked_with_their_evidence(homes: Clinics) -> None:
    got = homes.api.get("/api/v1/health/diagnoses", params={"hpo": RARE_CASE, "limit": 5})
    ranked = got.json()
    diseases = ranked["diseases"]
    assert len(diseases) == 5 and diseases[0]["score"] >= diseases[-1]["score"]
    assert diseases[0]["disease"].startswith(("OMIM:", "ORPHA:")) and diseases[0]["parts"]
    assert sum(d["probability"] for d in diseases) <= 1.0 + 1e-9
    assert ranked["candidates"] > 10_000 and ranked["notes"] == []
    for d in diseases:  # the parts add up to the score, as the explanation promises
        total = d["pretest_log10_odds"] + sum(p["log10_lr"] for p in d["parts"])
        assert abs(total - d["score"]) < 1e-9
        observed = {p["term"] for p in d["parts"] if p["kind"] == "observed"}
        assert observed == set(RARE_CASE)
    skipped = homes.api.get("/api/v1/health/diagnoses", params={"hpo": [*RARE_CASE, "HP:9999999"]})
    assert skipped.status_code == 200 and "HP:9999999 skipped" in skipped.json()["notes"][0]


def test_a_saved_query_round_trip(homes: Clinics) -> None:
    api = homes.api
    body = {"hpo": RARE_CASE[:3], "exclude": ["HP:0001250"], "genes": ["KMT2D"]}
    assert api.put("/api/v1/health/queries/face and ears", json=body).status_code == 204
    listed = {q["name"]: q for q in api.get("/api/v1/health/queries").json()["queries"]}
    assert listed["face and ears"] == {
        "name": "face and ears",
        "observed": sorted(RARE_CASE[:3]),
        "excluded": ["HP:0001250"],
        "genes": ["KMT2D"],
    }
    assert "kabuki-like" in listed
    assert api.delete("/api/v1/health/queries/face and ears").status_code == 204
    names = [q["name"] for q in api.get("/api/v1/health/queries").json()["queries"]]
    assert names == ["kabuki-like"]
    again = api.delete("/api/v1/health/queries/face and ears")
    assert again.status_code == 404 and "no saved query" in again.json()["error"]


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("<script>", {"hpo": RARE_CASE[:2]}),
        ("ok", {"hpo": ["HP:12x"]}),
        ("ok", {"hpo": "HP:0000175"}),
        ("ok", {"genes": ["KMT2D"]}),
        ("x" * 101, {"hpo": RARE_CASE[:2]}),
    ],
)
def test_bad_saved_queries_are_refused_and_nothing_is_saved(
    homes: Clinics, name: str, body: dict[str, Any]
) -> None:
    refused = homes.api.put(f"/api/v1/health/queries/{name}", json=body)
    assert refused.status_code == 422, refused.text
    names = [q["name"] for q in homes.api.get("/api/v1/health/queries").json()["queries"]]
    assert names == ["kabuki-like"]


def test_an_auditor_cannot_save_delete_or_ask_other_nodes(homes: Clinics) -> None:
    body = {"hpo": RARE_CASE[:2]}
    assert homes.read_only.put("/api/v1/health/queries/mine", json=body).status_code == 403
    assert homes.read_only.delete("/api/v1/health/queries/kabuki-like").status_code == 403
    assert homes.read_only.post("/api/v1/health/matches/federated", json=body).status_code == 403
    names = [q["name"] for q in homes.api.get("/api/v1/health/queries").json()["queries"]]
    assert names == ["kabuki-like"]


def test_notifications_name_the_saved_query_a_newcomer_matched(homes: Clinics) -> None:
    notes = homes.api.get("/api/v1/health/notifications").json()["notifications"]
    assert [n["query"] for n in notes] == ["kabuki-like"]
    assert notes[0]["contact"]["href"] == CONTACT and notes[0]["time"] > 0


def test_the_federation_answers_and_the_query_is_logged(homes: Clinics) -> None:
    from ailedger.audit.home import HomeAudit
    from ailedger.sharing.owner import audit_signing_key

    answer = homes.clinic_api.post(
        "/api/v1/health/matches/federated", json={"hpo": RARE_CASE[:6], "limit": 3}
    )
    assert answer.status_code == 200, answer.text
    got = answer.json()
    found = len(got["results"])
    assert got["asked"] == {homes.hospital.address: f"ok: {found} results"} and found >= 1
    assert got["results"][0]["node"] == homes.hospital.address
    assert got["results"][0]["source"] == "chain"  # an ailedger node found on chain
    assert got["results"][0]["patient"]["contact"]["href"] == CONTACT
    key = audit_signing_key(homes.clinic).public_key()
    logged = HomeAudit(homes.clinic, key).history(kind="mme-query").entries
    assert [(h.entry["direction"], h.entry["results"]) for h in logged] == [("outgoing", found)]
    bad = homes.clinic_api.post("/api/v1/health/matches/federated", json={"hpo": ["nope"]})
    assert bad.status_code == 422 and "is not an HPO id" in bad.json()["error"]


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/api/v1/health/queries/deep", b'{"hpo": ' + b"[" * 30_000 + b"]" * 30_000 + b"}", 400),
        ("/api/v1/health/queries/big", b'{"hpo": ["' + b"H" * 70_000 + b'"]}', 413),
        ("/api/v1/health/queries/text", b"HP:0000175", 400),
        (
            "/api/v1/health/matches/federated",
            b'{"hpo": ' + b"[" * 30_000 + b"]" * 30_000 + b"}",
            400,
        ),
    ],
)
def test_hostile_bodies_are_refused_before_they_are_parsed(
    homes: Clinics, path: str, body: bytes, status: int
) -> None:
    import py_ecc  # noqa: F401 - the node runs with its recursion limit of 100,000

    method = homes.api.put if "/queries/" in path else homes.api.post
    refused = method(path, content=body, headers={"content-type": "application/json"})
    assert refused.status_code == status, refused.text
    names = [q["name"] for q in homes.api.get("/api/v1/health/queries").json()["queries"]]
    assert names == ["kabuki-like"]

"""The node's MME ``/match`` handler: authentication, validation, consent, disclosure, audit."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ailedger.errors import ConfigError, RequestRefusedError
from ailedger.health.mme import MatchableCohort, MatchmakerService, NodeContact, read_query
from ailedger.health.mme_auth import IssuedTokens, authenticator
from ailedger.health.mme_schema import (
    MME_CONTENT_TYPE,
    disorder_id,
    response_errors,
    valid_href,
)
from ailedger.health.patients import ClinicianContact, Patient
from tests.fakes import ListAudit

BENCHMARK = (
    Path(__file__).resolve().parents[3] / "shared" / "data" / "mme" / "benchmark_patients.json"
)
HEADERS = {"content-type": MME_CONTENT_TYPE}
FEATURE = {"id": "HP:0001250", "observed": "yes"}
CONTACT = {"name": "Dr Q", "href": "mailto:q@clinic.example.org"}


def _patient(raw: dict[str, Any], consented: bool) -> Patient:
    features = raw.get("features", [])
    return Patient(
        local_id=f"MRN-{raw['id']}",
        observed=tuple(f["id"] for f in features if f.get("observed", "yes") == "yes"),
        excluded=tuple(f["id"] for f in features if f.get("observed") == "no"),
        genes=tuple(g["gene"]["id"] for g in raw.get("genomicFeatures", [])),
        contact=ClinicianContact(
            raw["contact"]["name"], raw["contact"].get("institution", ""), "clinician@example.org"
        ),
        matchmaking=consented,
    )


@pytest.fixture(scope="module")
def published() -> list[dict[str, Any]]:
    if not BENCHMARK.exists():
        pytest.skip(f"MME benchmark patients not found at {BENCHMARK}")
    return list(json.loads(BENCHMARK.read_text()))


@pytest.fixture(scope="module")
def service_parts(
    published: list[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> tuple[MatchmakerService, str, ListAudit]:
    # The first patient withholds consent; everyone else may be matched.
    patients = [_patient(raw, consented=i != 0) for i, raw in enumerate(published)]
    cohort = MatchableCohort.build(patients, secret=b"k" * 32)
    tokens = IssuedTokens(tmp_path_factory.mktemp("mme") / "tokens.json")
    token = tokens.issue("test peer")
    audit = ListAudit()
    service = MatchmakerService(
        cohort, authenticator(tokens, "0x" + "11" * 20, lambda a: False), audit, threshold=0.0
    )
    return service, token, audit


@dataclass(frozen=True)
class Reply:
    status: int
    body: dict[str, Any]


def handle(service: MatchmakerService, headers: Mapping[str, str], body: bytes) -> Reply:
    """What the MME route answers: the document, or the refusal's status and body."""
    try:
        return Reply(
            200, service.match(headers.get("x-auth-token"), headers.get("content-type"), body)
        )
    except RequestRefusedError as exc:
        return Reply(exc.http_status, {"message": exc.reason, **exc.details})


def _request(raw: dict[str, Any]) -> bytes:
    return json.dumps({"patient": raw}).encode()


def test_unauthenticated_and_unknown_tokens_get_401(
    service_parts: Any, published: list[dict[str, Any]]
) -> None:
    service, _, _ = service_parts
    assert handle(service, HEADERS, _request(published[1])).status == 401
    bad = {**HEADERS, "x-auth-token": "guess"}
    assert handle(service, bad, _request(published[1])).status == 401


def test_bad_requests_get_400_415_422(service_parts: Any) -> None:
    service, token, _ = service_parts
    auth = {**HEADERS, "x-auth-token": token}
    assert handle(service, auth, b"{not json").status == 400
    # Nesting that would overflow the C stack in json.loads is refused before parsing.
    assert handle(service, auth, b"[" * 60_000 + b"]" * 60_000).status == 400
    assert handle(service, {**auth, "content-type": "text/plain"}, b"{}").status == 415
    invalid = handle(service, auth, b'{"patient": {"id": "x"}}')
    assert invalid.status == 422 and invalid.body["errors"]
    # A contact that is not a URL or mailto: cannot be answered (the schema's format: uri).
    for href in ("b", "", "javascript:alert(1)", "mailto:", "ftp://x.org/"):
        nowhere = {"id": "q", "contact": {"name": "a", "href": href}, "features": [FEATURE]}
        refused = handle(service, auth, _request(nowhere))
        assert refused.status == 422 and "href" in refused.body["errors"][0], href


@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        ("application/vnd.ga4gh.matchmaker.v1.1+json", 200),
        ("application/vnd.ga4gh.matchmaker.v1.0+json", 200),  # what most peers send
        ("application/vnd.ga4gh.matchmaker.v1.0+json; charset=utf-8", 200),
        ("Application/VND.ga4gh.matchmaker.v1.0+JSON", 200),
        ("application/json", 200),
        ("application/vnd.ga4gh.matchmaker.v1.2+json", 406),  # a newer minor: not spoken
        ("application/vnd.ga4gh.matchmaker.v2.0+json", 406),
        ("application/vnd.ga4gh.matchmaker+json", 415),
        ("text/plain", 415),
    ],
    ids=["v1.1", "v1.0", "v1.0-charset", "v1.0-case", "json", "v1.2", "v2.0", "no-version", "text"],
)
def test_minor_versions_are_answered_and_others_refused_as_the_api_says(
    service_parts: Any, published: list[dict[str, Any]], content_type: str, status: int
) -> None:
    """MME API versioning: minor versions are cross-compatible, so a v1.0 request is
    answered in v1.1; a version this node does not speak gets 406 naming the one it does."""
    service, token, _ = service_parts
    headers = {"x-auth-token": token, "content-type": content_type}
    reply = handle(service, headers, _request(published[1]))
    assert reply.status == status
    if status == 406:
        assert "application/vnd.ga4gh.matchmaker.v1.1+json" in reply.body["message"]


def test_results_disclose_contact_not_record_and_respect_consent(
    service_parts: Any, published: list[dict[str, Any]]
) -> None:
    service, token, audit = service_parts
    auth = {**HEADERS, "x-auth-token": token}
    before = len(audit.entries)
    withheld = published[0]  # identical query to the patient who did not consent
    reply = handle(service, auth, _request(withheld))
    assert reply.status == 200
    cohort = service.cohort
    assert cohort.surrogate("MRN-" + withheld["id"]) not in [
        r["patient"]["id"] for r in reply.body["results"]
    ]
    consenting = published[5]
    answer = handle(service, auth, _request(consenting)).body
    assert answer["results"] and response_errors(answer) == []
    for result in answer["results"]:
        assert set(result) == {"score", "patient"}
        # What matchmaking consent shares: contact, features and genes; not the record.
        assert set(result["patient"]) == {"id", "contact", "features", "genomicFeatures"}
        assert not result["patient"]["id"].startswith("MRN-")
    top = answer["results"][0]
    assert top["patient"]["id"] == cohort.surrogate("MRN-" + consenting["id"])
    assert top["patient"]["contact"]["href"] == "mailto:clinician@example.org"
    shared = {f["id"] for f in top["patient"]["features"]}
    assert shared == {f["id"] for f in consenting["features"]}
    assert {g["gene"]["id"] for g in top["patient"]["genomicFeatures"]} == {
        g["gene"]["id"] for g in consenting["genomicFeatures"]
    }
    logged = audit.entries[before:]
    assert [(e["direction"], e["peer"], e["outcome"]) for e in logged] == [
        ("incoming", "test peer", "200")
    ] * 2
    assert all("features" not in json.dumps(e) for e in logged)


@settings(max_examples=60, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=12),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(
                st.sampled_from(
                    [
                        "patient",
                        "id",
                        "contact",
                        "features",
                        "genomicFeatures",
                        "observed",
                        "gene",
                        "name",
                        "href",
                    ]
                ),
                children,
                max_size=5,
            )
        ),
        max_leaves=20,
    )
)
def test_no_input_makes_the_service_fail(service_parts: Any, document: Any) -> None:
    service, token, _ = service_parts
    reply = handle(service, {**HEADERS, "x-auth-token": token}, json.dumps(document).encode())
    assert reply.status in (200, 400, 422)


def _query(**patient: Any) -> bytes:
    return json.dumps({"patient": {"id": "q", "contact": CONTACT, **patient}}).encode()


def test_valid_requests_once_refused_are_answered_by_the_official_schema(
    service_parts: Any, published: list[dict[str, Any]]
) -> None:
    """An Orphanet disorder, a gene-only query, an obsolete or unknown HPO id: all valid
    MME requests, answered (a term the release does not know is skipped with a note)."""
    service, token, _ = service_parts
    auth = {**HEADERS, "x-auth-token": token}
    carrier = published[5]
    features = carrier["features"]

    orphanet = handle(service, auth, _query(features=features, disorders=[{"id": "Orphanet:558"}]))
    assert orphanet.status == 200 and orphanet.body["results"]

    gene = carrier["genomicFeatures"][0]["gene"]["id"]
    by_gene = handle(service, auth, _query(genomicFeatures=[{"gene": {"id": gene}}]))
    assert by_gene.status == 200 and response_errors(by_gene.body) == []
    carriers = {f"MRN-{p['id']}" for p in published[1:] if gene in _genes(p)}
    found = [r["patient"]["id"] for r in by_gene.body["results"]]
    assert found and set(found) <= {service.cohort.surrogate(c) for c in carriers}
    assert all(r["score"]["patient"] == 1.0 for r in by_gene.body["results"])

    # HP:0000057 is obsolete, replaced by HP:0008665 in the release: read as that term.
    obsolete = handle(service, auth, _query(features=[{"id": "HP:0000057"}, *features]))
    current = handle(service, auth, _query(features=[{"id": "HP:0008665"}, *features]))
    assert obsolete.status == 200 and "notes" not in obsolete.body
    assert obsolete.body == current.body and obsolete.body["results"]

    # HP:0004715 is an alternate id of HP:0000003 (hp.obo's alt_id): read as that term.
    alternate = handle(service, auth, _query(features=[{"id": "HP:0004715"}, *features]))
    primary = handle(service, auth, _query(features=[{"id": "HP:0000003"}, *features]))
    assert alternate.status == 200 and "notes" not in alternate.body
    assert alternate.body == primary.body

    unknown = handle(service, auth, _query(features=[{"id": "HP:9999999"}, *features]))
    assert unknown.status == 200 and unknown.body["results"]
    assert unknown.body["notes"] == ["HP:9999999 is not a term of HPO release 2025-11-24; skipped"]
    nothing = handle(service, auth, _query(features=[{"id": "HP:9999999"}]))
    assert nothing.status == 200 and nothing.body["results"] == []
    assert len(nothing.body["notes"]) == 2


def _genes(raw: dict[str, Any]) -> set[str]:
    return {g["gene"]["id"] for g in raw.get("genomicFeatures", [])}


def test_a_patient_without_a_clinician_email_is_answered_with_the_node_contact(
    published: list[dict[str, Any]], tmp_path: Path
) -> None:
    bare = [
        Patient(
            local_id=f"MRN-{raw['id']}",
            observed=tuple(f["id"] for f in raw["features"] if f.get("observed") != "no"),
            contact=ClinicianContact("Dr Z", "Hospital Z"),  # no e-mail
            matchmaking=True,
        )
        for raw in published[:10]
    ]
    tokens = IssuedTokens(tmp_path / "tokens.json")
    token = tokens.issue("peer")
    auth = {**HEADERS, "x-auth-token": token}
    query = _request(published[3])

    def answer(contact: NodeContact | None) -> tuple[Reply, ListAudit]:
        audit = ListAudit()
        cohort = MatchableCohort.build(bare, secret=b"k" * 32, contact=contact)
        service = MatchmakerService(
            cohort, authenticator(tokens, "0x" + "11" * 20, lambda a: False), audit, threshold=0
        )
        return handle(service, auth, query), audit

    desk = NodeContact("Genetics desk", "https://hospital-z.example.org/mme", "Hospital Z")
    reply, _ = answer(desk)
    assert reply.status == 200 and reply.body["results"] and response_errors(reply.body) == []
    assert {r["patient"]["contact"]["href"] for r in reply.body["results"]} == {desk.href}
    # No node contact either: nothing a peer could use, so the matches are withheld, counted.
    reply, audit = answer(None)
    assert reply.status == 200 and reply.body["results"] == []
    assert audit.entries[-1]["withheld_no_contact"] >= 1


@pytest.mark.parametrize(
    "href", ["", "local", "ailedger node 0x12", "javascript:x", "http://u:p@h/"]
)
def test_a_node_contact_peers_cannot_reach_is_refused(href: str) -> None:
    with pytest.raises(ConfigError, match="not an http"):
        NodeContact("Genetics desk", href)


def test_a_query_is_read_in_current_terms_with_disorders_as_this_node_writes_them() -> None:
    from ailedger.health.phenotype import load_ontology

    patient = {
        "id": "q",
        "contact": CONTACT,
        "features": [
            {"id": "HP:0000057"},  # obsolete: HP:0008665 replaces it
            {"id": "HP:0001250", "observed": "no"},
            {"id": "HP:9999999"},
        ],
        "genomicFeatures": [{"gene": {"id": "FBN1"}}],
        "disorders": [{"id": "Orphanet:558"}, {"id": "MIM:154700"}, {"id": "ORPHA:558"}],
    }
    query = read_query(patient, load_ontology())
    assert query.profile.observed == {"HP:0008665"} and query.profile.excluded == {"HP:0001250"}
    assert query.profile.genes == {"FBN1"}
    assert query.disorders == ("OMIM:154700", "ORPHA:558")
    assert query.notes == ("HP:9999999 is not a term of HPO release 2025-11-24; skipped",)
    assert (disorder_id("Orphanet:558"), disorder_id("OMIM:1"), disorder_id("DOID:1")) == (
        "ORPHA:558",
        "OMIM:000001",
        None,
    )


@pytest.mark.parametrize(
    ("href", "valid"),
    [
        ("mailto:genetics@hospital.example.org", True),
        ("https://hospital.example.org/mme", True),
        ("http://127.0.0.1:8000/contact", True),
        ("mailto:desk@localhost", True),
        ("", False),
        ("genetics@hospital.example.org", False),  # an address is not a URL: mailto: it
        ("mailto:", False),
        ("mailto:a@b.org?subject=x", False),
        ("javascript:alert(1)", False),
        ("https://", False),
        ("https://user:pw@hospital.example.org/", False),
        ("ftp://hospital.example.org", False),
        ("https://hospital.example.org/a b", False),
        ("https://[::1", False),
    ],
)
def test_a_contact_href_is_an_http_url_or_one_mailto_address(href: str, valid: bool) -> None:
    assert valid_href(href) is valid

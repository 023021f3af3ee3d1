"""The clinic and audit pages over a real home (a gateway that served a researcher, an
anchored log, imported patients): what they show, their htmx fragments, that nothing
inline runs (strict CSP), that logged free text stays text, and who may do what."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ailedger.demo.records import RARE_CASE, write_bundles
from ailedger.health.node import HealthNode
from ailedger.web.api import audit as audit_api
from ailedger.web.api import health as health_api
from ailedger.web.deps import WebContext
from ailedger.web.pages import audit as audit_pages
from ailedger.web.pages import clinic as clinic_pages
from tests.web.audit_home import AuditedHomes, audited_homes
from tests.web.homes import auditor, operator_of, router_client

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

HOSTILE = '<img src=x onerror="alert(1)">'


@dataclass
class Site:
    homes: AuditedHomes
    operator: TestClient
    read_only: TestClient


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, contract_cache: Path) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("pages")
    with audited_homes(root, contract_cache) as homes:
        with HealthNode(homes.owner.home.path) as health:
            health.import_files(write_bundles(root / "fhir", 12))
        homes.node.audit.append({"kind": "read", "outcome": "refused", "reason": HOSTILE})
        homes.node.audit.checkpoint_now()
        routers = [
            audit_api.router(),
            audit_pages.pages(),
            health_api.router(),
            clinic_pages.pages(),
        ]
        context = WebContext(homes.owner, node=homes.node)
        yield Site(
            homes,
            router_client(context, routers, operator_of(homes.owner)),
            router_client(context, routers, auditor("0x" + "ef" * 20)),
        )


def assert_nothing_inline(html: str) -> None:
    """The CSP allows only script-src 'self' and no inline style: every script has a src,
    no element carries an event handler or a style attribute."""
    tags = re.findall(r"<[a-zA-Z][^<>]*>", html)
    assert tags and not [t for t in tags if t.startswith("<script") and " src=" not in t]
    assert not [t for t in tags if re.search(r"\s(on[a-z]+|style)\s*=", t)]


def test_the_audit_page_loads_verify_js_and_shows_the_log(site: Site) -> None:
    html = site.operator.get("/audit").text
    assert_nothing_inline(html)
    assert '<script src="/static/verify.js" defer></script>' in html
    assert 'id="receipt-form"' in html and 'data-anchors-url="/api/v1/audit/anchors"' in html
    assert 'aria-label="Audit entries per hour"' in html
    assert 'aria-label="Entries anchored on chain over time"' in html
    assert 'id="anchors"' in html and "nothing yet" not in html.split('id="anchors-chart"')[1][:400]
    assert html.count('data-receipt-url="/api/v1/audit/entries/') == audit_pages.PAGE
    assert 'rel="next"' in html and 'rel="prev"' not in html
    assert 'hx-get="/audit/coverage"' in html


def test_logged_free_text_is_shown_as_text(site: Site) -> None:
    html = site.operator.get("/audit").text
    assert HOSTILE not in html and "&lt;img src=x onerror=" in html


def test_entries_come_a_page_at_a_time_and_filter(site: Site) -> None:
    second = site.operator.get("/audit/entries", params={"offset": audit_pages.PAGE}).text
    assert 'rel="prev"' in second and second.startswith('<div id="entries">')
    assert "<html" not in second
    dataset = site.homes.dataset
    about = site.operator.get("/audit/entries", params={"dataset": dataset, "kind": "read"})
    rows = re.findall(r"<tr>\s*<td>(\d+)</td>", about.text)
    assert len(rows) == 2 and "served" in about.text and "refused" in about.text
    blank = site.operator.get("/audit/entries", params={"dataset": "", "kind": ""})
    assert blank.status_code == 200
    assert site.operator.get("/audit/entries", params={"dataset": "0x1"}).status_code == 422
    assert site.operator.get("/audit/entries", params={"offset": -3}).status_code == 422


def test_coverage_says_the_log_is_intact(site: Site) -> None:
    html = site.read_only.get("/audit/coverage").text
    assert 'class="ok" id="coverage-verdict">audit log verified' in html
    assert "bound" in html


def test_an_auditor_uses_all_of_the_audit_page(site: Site) -> None:
    assert site.read_only.get("/audit").status_code == 200
    assert site.read_only.get("/audit", params={"bucket": "day"}).status_code == 200
    assert site.read_only.get("/audit", params={"bucket": "year"}).status_code == 422


def test_the_clinic_page_has_its_forms_and_saved_queries(site: Site) -> None:
    html = site.operator.get("/clinic").text
    assert_nothing_inline(html)
    assert "among the 12 consented patients" in html
    for element in ("search-here", "search-federation", "rank-diagnoses", "save-query"):
        assert f'id="{element}"' in html
    read_only = site.read_only.get("/clinic").text
    assert 'id="search-here"' in read_only and 'id="save-query"' not in read_only
    assert 'id="search-federation"' not in read_only


def test_the_clinic_search_shows_cases_and_why(site: Site) -> None:
    found = site.read_only.get(
        "/clinic/matches", params={"hpo": ", ".join(RARE_CASE[:6]), "limit": "3"}
    )
    assert found.status_code == 200 and 'id="match-results"' in found.text
    assert "mailto:genetics@hospital-a.example.org" in found.text
    assert f'<span class="mono">{RARE_CASE[0]}</span> ~' in found.text
    refused = site.operator.get("/clinic/matches", params={"hpo": "HP:12ab"})
    assert refused.status_code == 422 and "is not an HPO id" in refused.text
    ranked = site.operator.get("/clinic/diagnoses", params={"hpo": " ".join(RARE_CASE)})
    assert ranked.status_code == 200 and 'id="diagnosis-results"' in ranked.text
    assert "OMIM:" in ranked.text or "ORPHA:" in ranked.text


def test_saving_and_deleting_a_query_from_the_page(site: Site) -> None:
    form = {"name": "face", "hpo": " ".join(RARE_CASE[:3]), "exclude": "", "genes": "KMT2D"}
    assert site.read_only.post("/clinic/queries", data=form).status_code == 403
    saved = site.operator.post("/clinic/queries", data=form)
    assert saved.status_code == 200 and saved.text.startswith('<div id="saved">')
    assert "<td>face</td>" in saved.text and "KMT2D" in saved.text
    assert site.read_only.delete("/clinic/queries/face").status_code == 403
    gone = site.operator.delete("/clinic/queries/face")
    assert gone.status_code == 200 and "No saved query" in gone.text
    bad = site.operator.post("/clinic/queries", data={**form, "name": "<b>x</b>"})
    assert bad.status_code == 422

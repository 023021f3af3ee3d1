"""The compute market's pages over a real chain: /research/jobs (submit, the list, a
job's page, its log fragment, cancel) and /provider (machine, offer, stake), for the
operator and for an auditor, with hostile text shown as text."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ailedger.node.app import create_app
from ailedger.node.service import BackgroundServer, announce, job_inbox
from ailedger.session import Session
from ailedger.sharing.owner import OwnerNode
from ailedger.web.deps import WebContext
from ailedger.web.pages.jobs import pages as job_pages
from ailedger.web.pages.provider import pages as provider_pages
from tests.web.homes import TestClient, auditor, embedded_chain, operator_of, router_client

pytestmark = pytest.mark.slow
AIL = 10**18
HOSTILE = '<script>alert("x")</script>'
# No provider runs here: a job asking for 64 cores stays open until it is cancelled.
OPEN_JOB = (
    '[job]\nentry = "main.py"\nruntime = "python"\n'
    "[resources]\ncpu_cores = 64\nram_mb = 256\nmax_hours = 1\n"
    '[market]\nmax_price_per_hour = "1"\ndeadline_hours = 1\nredundancy = 1\n'
)


def bundle(name: str = "main.py") -> list[tuple[str, Any]]:
    return [
        ("files", ("job.toml", OPEN_JOB.encode(), "application/toml")),
        ("files", (name, b"print('hi')\n", "text/x-python")),
    ]


@dataclass
class Site:
    researcher: Session
    owner: Session
    jobs: TestClient
    jobs_read_only: TestClient
    provider: TestClient
    provider_read_only: TestClient


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, contract_cache: Path) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("web-compute-pages")
    with embedded_chain(tmp, contract_cache) as chain:
        researcher, owner = chain.party("researcher"), chain.party("owner")
        for s in (researcher, owner):
            s.token.faucet(1_000 * AIL)
        with OwnerNode(researcher) as node:
            app = create_app(node.gateway(), jobs=job_inbox(researcher))
            with BackgroundServer(app) as url:
                announce(researcher, url)
                ctx, owner_ctx = WebContext(researcher), WebContext(owner)
                stranger = auditor(owner.address)
                yield Site(
                    researcher,
                    owner,
                    router_client(ctx, [job_pages()], operator_of(researcher)),
                    router_client(ctx, [job_pages()], stranger),
                    router_client(owner_ctx, [provider_pages()], operator_of(owner)),
                    router_client(owner_ctx, [provider_pages()], auditor(researcher.address)),
                )


def test_the_jobs_page_offers_a_form_to_the_operator_only(site: Site) -> None:
    page = site.jobs.get("/research/jobs")
    assert page.status_code == 200
    assert 'hx-post="/research/jobs"' in page.text and 'type="file"' in page.text
    assert "<svg" in page.text and "jobs by state" in page.text
    read_only = site.jobs_read_only.get("/research/jobs")
    assert read_only.status_code == 200 and "<svg" in read_only.text
    assert "hx-post" not in read_only.text and 'type="file"' not in read_only.text


def test_a_job_submitted_in_the_page_is_listed_followed_and_cancelled(site: Site) -> None:
    answer = site.jobs.post("/research/jobs", files=bundle(), data={"wait_s": "0"})
    found = re.search(r"job (\d+) posted", answer.text)
    assert answer.status_code == 200 and found, answer.text
    job_id = int(found.group(1))
    # The answer also swaps in the list with the new job.
    assert 'hx-swap-oob="true"' in answer.text and f'href="/research/jobs/{job_id}"' in answer.text
    listing = site.jobs.get("/research/jobs").text
    assert f"job {job_id}</a>" in listing and "state-open" in listing

    page = site.jobs.get(f"/research/jobs/{job_id}").text
    assert f"/research/jobs/{job_id}/cancel" in page
    assert f'hx-get="/research/jobs/{job_id}/logs?after=0"' in page and "every 2s" in page
    watched = site.jobs_read_only.get(f"/research/jobs/{job_id}").text
    assert "/cancel" not in watched and "every 2s" in watched  # reads, cannot act

    logs = site.jobs.get(f"/research/jobs/{job_id}/logs", params={"after": 0})
    assert "every 2s" in logs.text and "HX-Refresh" not in logs.headers

    assert site.jobs_read_only.post(f"/research/jobs/{job_id}/cancel").status_code == 403
    cancelled = site.jobs.post(f"/research/jobs/{job_id}/cancel")
    assert cancelled.headers["HX-Refresh"] == "true" and "cancelled" in cancelled.text

    logs = site.jobs.get(f"/research/jobs/{job_id}/logs", params={"after": 0})
    assert "every 2s" not in logs.text and logs.headers["HX-Refresh"] == "true"  # polling ends
    page = site.jobs.get(f"/research/jobs/{job_id}").text
    assert "state-cancelled" in page and "/cancel" not in page and "every 2s" not in page
    again = site.jobs.post(f"/research/jobs/{job_id}/cancel")
    assert 'class="error"' in again.text and "only open or running jobs" in again.text


def test_refusals_show_in_the_page_as_text(site: Site) -> None:
    before = site.jobs.get("/research/jobs").text
    traversal = site.jobs.post("/research/jobs", files=bundle(f"../{HOSTILE}"), data={})
    assert 'class="error"' in traversal.text and "not a relative path" in traversal.text
    assert "<script>" not in traversal.text and "&lt;script&gt;" in traversal.text
    assert site.jobs.get("/research/jobs").text == before  # no job posted
    assert site.jobs_read_only.post("/research/jobs", files=bundle()).status_code == 403
    assert site.jobs.get("/research/jobs/not-a-job").status_code == 400
    assert site.jobs.get(f"/research/jobs/{2**256}").status_code == 400
    assert site.jobs.get("/research/jobs/1/logs", params={"after": "x"}).status_code == 422


def test_the_provider_page_stakes_offers_and_escapes_what_the_chain_holds(site: Site) -> None:
    read_only = site.provider_read_only.get("/provider")
    assert read_only.status_code == 200 and "not a provider yet" in read_only.text
    assert "hx-post" not in read_only.text
    assert (
        site.provider_read_only.post("/provider/stake", data={"amount": "100"}).status_code == 403
    )

    page = site.provider.get("/provider").text
    assert 'hx-post="/provider/stake"' in page and "Register and stake" in page
    bad = site.provider.post("/provider/stake", data={"amount": "lots"})
    assert 'class="error"' in bad.text and "lots" in bad.text and "HX-Refresh" not in bad.headers
    staked = site.provider.post("/provider/stake", data={"amount": "100"})
    assert staked.headers["HX-Refresh"] == "true" and "registered" in staked.text
    too_big = site.provider.post(
        "/provider/offer", data={"price_per_hour": "1", "cpu_cores": "4096"}
    )
    assert 'class="error"' in too_big.text and "this machine" in too_big.text
    wrong = site.provider.post("/provider/offer", data={"price_per_hour": "1", "cpu_cores": "x"})
    assert 'class="error"' in wrong.text and "cpu_cores" in wrong.text
    offered = site.provider.post("/provider/offer", data={"price_per_hour": "2", "cpu_cores": "1"})
    assert offered.headers["HX-Refresh"] == "true", offered.text
    assert site.owner.compute_providers.offer(site.owner.address)["cpu_cores"] == 1

    # What the chain says of this account is shown as text: an offer posted by other
    # means (any program with the key) can carry markup in its GPU model.
    site.owner.compute_providers.post_offer(1, 256, HOSTILE, 1024, 2 * AIL, False)
    for client in (site.provider, site.provider_read_only):
        page = client.get("/provider").text
        assert "&lt;script&gt;alert(" in page and HOSTILE not in page
        assert "earnings over time" in page and "<svg" in page
        assert "Never slashed." in page and "No job run yet." in page

"""The federated-learning page and API over a real chain and a real node: a requester's
posted jobs listed and shown with their members, anchored rounds and payouts; a hospital
joining through the page's form and through the API; each refusal (a bad grant, a grant
for another purpose, a job no longer open, a stake it cannot pay, an auditor, nobody
signed in, no CSRF token) shown or answered with its reason, and nothing joined."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ailedger.chain.contracts.data_market import PURPOSES, Policy
from ailedger.federated.jobs import job_report, join_job
from ailedger.session import Session
from ailedger.sharing.owner import OwnerNode
from ailedger.units import format_amount
from ailedger.web.deps import WebContext
from ailedger.web.pages.federated import pages
from tests.federated.test_coordinator import post_test_job
from tests.web.homes import (
    Chain,
    TestClient,
    client,
    link_client,
    operator_of,
    router_client,
    signed_in_client,
    web_node,
)

pytestmark = pytest.mark.slow
AIL = 10**18
TRAINING, RESEARCH = PURPOSES["model-training"], PURPOSES["rare-disease-research"]
TASK = (
    'features = ["x1", "x2"]\nlabel = "y"\npositive = "yes"\nrule = "fedavg"\n'
    "[bounds]\nx1 = [0.0, 10.0]\nx2 = [0.0, 10.0]\n"
)
TABLE = "x1,x2,y\n1,2,yes\n3,4,no\n5,6,yes\n7,8,no\n"


@dataclass
class Site:
    researcher: Session
    hospital: Session  # the node served here: joins through the page
    other: Session  # joins with the CLI's function
    datasets: dict[str, str]
    grants: dict[str, int]  # (home, purpose) -> the researcher's grant
    http: TestClient  # the hospital's operator, signed in with SIWE
    read_only: TestClient
    nobody: TestClient
    poor: TestClient  # a home without tokens for the stake
    root: Path


def _publish(chain: Chain, root: Path, name: str, researcher: Session) -> tuple[Session, str]:
    home = chain.party(name)
    table = root / f"{name}.csv"
    table.write_text(TABLE)
    policy = Policy(
        TRAINING | RESEARCH, needs_approval=False, price=0, duration_s=86400, max_reads=0
    )
    with OwnerNode(home) as node:
        dataset = node.publish(table, policy, {"title": name}, None).dataset_id
    return home, "0x" + dataset.hex()


@pytest.fixture(scope="module")
def site(web_chain: Chain, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("federated-pages")
    (root / "task.toml").write_text(TASK)
    (root / "validation.csv").write_text(TABLE)
    researcher = web_chain.party("fl-researcher")
    researcher.token.faucet(1_000 * AIL)
    homes, datasets, grants = {}, {}, {}
    for name in ("hospital", "other", "poor"):
        homes[name], datasets[name] = _publish(web_chain, root, name, researcher)
        for purpose in (TRAINING, RESEARCH):
            number = bytes.fromhex(datasets[name][2:])
            grants[f"{name}/{purpose}"], _ = researcher.data_market.request_access(number, purpose)
    for name in ("hospital", "other"):
        homes[name].token.faucet(10 * AIL)
    poor = WebContext(homes["poor"])
    with web_node(homes["hospital"]) as node:
        yield Site(
            researcher,
            homes["hospital"],
            homes["other"],
            datasets,
            grants,
            signed_in_client(node),
            link_client(node, read_only=True),
            client(node),
            router_client(poor, [pages()], operator_of(homes["poor"])),
            root,
        )


def _post(site: Site, stake: int = AIL) -> int:
    root = site.root
    return post_test_job(site.researcher, root / "task.toml", root / "validation.csv", stake=stake)


def _join_form(site: Site, job: int, grant: object, http: TestClient | None = None) -> str:
    form = {"dataset": site.datasets["hospital"], "grant": str(grant)}
    return (http or site.http).post(f"/federated/{job}/join", data=form).text


def _members(site: Site, job: int) -> list[str]:
    return [m.institution for m in site.researcher.federated_jobs.members(job)]


def test_a_posted_job_is_listed_and_shown_with_its_members(site: Site) -> None:
    job = _post(site)
    join_job(
        site.other, job, bytes.fromhex(site.datasets["other"][2:]), site.grants[f"other/{TRAINING}"]
    )
    listing = site.http.get("/federated")
    assert listing.status_code == 200
    row = listing.text.split(f'href="/federated/{job}"')[1].split("</tr>")[0]
    assert "model-training" in row and "state-open" in row and "0 / 2" in row
    assert "<td>1</td>" in row and format_amount(9 * AIL) in row and "joined" not in row

    page = site.http.get(f"/federated/{job}").text
    assert site.other.address in page and site.datasets["other"][:18] in page
    assert f"<td>{site.grants[f'other/{TRAINING}']}</td>" in page
    assert "0x" + job_report(site.researcher, job).job.task.task_hash.hex() in page
    # The operator may join, with one of the home's own datasets; an auditor only reads.
    assert f'hx-post="/federated/{job}/join"' in page and 'name="csrf_token"' in page
    assert f'<option value="{site.datasets["hospital"]}"' in page
    assert site.datasets["other"] not in page.split('id="join-form"')[1].split("</form>")[0]
    watched = site.read_only.get(f"/federated/{job}").text
    assert site.other.address in watched and "join-form" not in watched
    refused = site.read_only.post(f"/federated/{job}/join", data={"grant": "1"})
    assert refused.status_code == 403 and _members(site, job) == [site.other.address]


def test_joining_through_the_form_shows_the_member_then_rounds_and_payouts(site: Site) -> None:
    job = _post(site)
    answer = site.http.post(
        f"/federated/{job}/join",
        data={"dataset": site.datasets["hospital"], "grant": site.grants[f"hospital/{TRAINING}"]},
    )
    assert f"joined federated job {job}" in answer.text and answer.headers["HX-Refresh"] == "true"
    assert _members(site, job) == [site.hospital.address]
    page = site.http.get(f"/federated/{job}").text
    assert site.hospital.address in page and "join-form" not in page
    row = site.http.get("/federated").text.split(f'href="/federated/{job}"')[1].split("</tr>")[0]
    assert "joined" in row

    join_job(
        site.other, job, bytes.fromhex(site.datasets["other"][2:]), site.grants[f"other/{TRAINING}"]
    )
    jobs = site.researcher.federated_jobs
    jobs.start(job)
    model = bytes(range(1, 33))
    jobs.anchor_round(
        job, 1, model, b"\x07" * 32, [site.hospital.address], [3], [site.other.address]
    )
    jobs.finish(job)

    page = site.http.get(f"/federated/{job}").text
    assert "state-finished" in page and "1 of 2 anchored" in page
    rounds = page.split('id="federated-rounds"')[1].split("</table>")[0]
    assert "0x" + model.hex()[:16] in rounds
    aggregated, dropped = rounds.split("<td>1</td>")[1].split("</td>")[1:3]
    assert site.hospital.address in aggregated and "(3)" in aggregated
    assert site.other.address in dropped
    payouts = page.split('id="federated-payouts"')[1]
    assert format_amount(9 * AIL) in payouts.split(site.hospital.address)[1].split("</tr>")[0]

    api = site.http.get(f"/api/v1/federated/jobs/{job}")
    assert api.status_code == 200 and api.json() == job_report(site.researcher, job).as_json()
    listed = site.http.get("/api/v1/federated/jobs").json()
    newest = listed["jobs"][0]
    assert newest["job_id"] == listed["total"] and newest["job_id"] >= job
    mine = next(j for j in listed["jobs"] if j["job_id"] == job)
    assert mine["joined"] and mine["status"] == "finished" and mine["participants"] == 2
    assert mine["rounds_done"] == 1 and mine["reward"] == str(9 * AIL)


def test_refusals_show_in_the_page_and_join_nothing(site: Site) -> None:
    job = _post(site)
    bad = _join_form(site, job, 999_999)
    assert 'class="error"' in bad and "grant 999999 does not let" in bad
    wrong_purpose = _join_form(site, job, site.grants[f"hospital/{RESEARCH}"])
    assert 'class="error"' in wrong_purpose and "for the job&#39;s purpose" in wrong_purpose
    not_a_number = _join_form(site, job, "seven")
    assert 'class="error"' in not_a_number and "grant" in not_a_number
    poor = site.poor.post(
        f"/federated/{job}/join",
        data={"dataset": site.datasets["poor"], "grant": site.grants[f"poor/{TRAINING}"]},
    )
    assert poor.status_code == 200 and 'class="error"' in poor.text
    assert "the job&#39;s stake is" in poor.text and "get tokens first" in poor.text
    assert _members(site, job) == []

    join_job(
        site.other, job, bytes.fromhex(site.datasets["other"][2:]), site.grants[f"other/{TRAINING}"]
    )
    site.researcher.federated_jobs.start(job)
    late = _join_form(site, job, site.grants[f"hospital/{TRAINING}"])
    assert 'class="error"' in late and f"federated job {job} is running" in late
    assert _members(site, job) == [site.other.address]
    assert "join-form" not in site.http.get(f"/federated/{job}").text


def test_an_unknown_job_is_a_404_that_says_so(site: Site) -> None:
    missing = site.http.get("/federated/999999")
    assert missing.status_code == 404 and "there is no federated job 999999" in missing.text
    api = site.http.get("/api/v1/federated/jobs/999999")
    assert api.status_code == 404 and "no federated job 999999" in api.json()["error"]
    assert site.http.get("/federated/not-a-job").status_code == 422


def test_the_api_joins_for_the_operator_only_with_a_csrf_token(site: Site) -> None:
    job = _post(site)
    body = {"dataset": site.datasets["hospital"], "grant": site.grants[f"hospital/{TRAINING}"]}
    url = f"/api/v1/federated/jobs/{job}/join"
    assert site.nobody.post(url, json=body).status_code == 401
    assert site.read_only.post(url, json=body).status_code == 403
    no_token = TestClient(
        site.http.app, base_url=str(site.http.base_url), cookies=site.http.cookies
    )
    assert no_token.post(url, json=body).status_code == 403
    assert no_token.post(f"/federated/{job}/join", data={**body, "grant": "1"}).status_code == 403
    assert _members(site, job) == []

    refused = site.http.post(url, json={**body, "grant": 999_999})
    assert refused.status_code == 422 and "grant 999999" in refused.json()["error"]
    theirs = site.http.post(url, json={**body, "dataset": site.datasets["other"]})
    assert theirs.status_code == 422 and "is not this home's" in theirs.json()["error"]
    joined = site.http.post(url, json=body)
    assert joined.status_code == 200 and joined.json()["job"] == job
    assert _members(site, job) == [site.hospital.address]

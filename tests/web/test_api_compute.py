"""The compute market's REST API over a real chain: a researcher's job submitted as an
upload, followed, its logs read and its result downloaded (one job run end to end by a
provider agent in this process), cancel, a GPU owner's stake and offer, and the attacks:
an auditor's writes, another requester's job ids, malformed ids and amounts, an
oversized upload, a bundle whose file names leave it."""

from __future__ import annotations

import io
import shutil
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ailedger.chain.contracts import JobStatus, JobTerms
from ailedger.compute.jobs import JobSpecError
from ailedger.compute.provider.agent import AgentSettings, ProviderAgent
from ailedger.compute.provider.machine import MachineInfo
from ailedger.compute.provider.sandbox import Sandbox, confinement
from ailedger.compute.provider.standing import StandingError
from ailedger.compute.requester.job import JobStateError
from ailedger.errors import (
    BackPressureError,
    ChainUnreachableError,
    MalformedRequestError,
    NotFoundError,
    PeerUnreachableError,
    TransactionRevertedError,
    UnprocessableError,
)
from ailedger.node.app import create_app
from ailedger.node.service import BackgroundServer, announce, job_inbox
from ailedger.session import Session
from ailedger.sharing.owner import OwnerNode
from ailedger.web.api.compute import parse_job_id, refusals, router
from ailedger.web.deps import WebContext
from ailedger.web.pages.jobs import pages as job_pages
from tests.web.homes import TestClient, auditor, embedded_chain, operator_of, router_client

pytestmark = pytest.mark.slow
AIL = 10**18
MACHINE = MachineInfo(cpu_cores=2, ram_mb=4096, gpus=(), confinement=None)
CONFINED = confinement() is not None

SUM_JOB = """\
import json, os, random
rng = random.Random(int(os.environ["AILEDGER_SEED"]))
total = sum(rng.random() for _ in range(1000))
print("computed", round(total, 6), flush=True)
print("<script>alert('log')</script>", flush=True)
with open(os.path.join(os.environ["AILEDGER_OUTPUT"], "sum.json"), "w") as f:
    json.dump({"sum": total}, f)
"""


def job_toml(cores: int = 1, price: str = "5") -> str:
    return (
        '[job]\nentry = "main.py"\nruntime = "python"\nseed = 3\ndeterministic = true\n'
        f"[resources]\ncpu_cores = {cores}\nram_mb = 256\nmax_hours = 1\n"
        f'[market]\nmax_price_per_hour = "{price}"\ndeadline_hours = 1\nredundancy = 1\n'
    )


def files(toml: str, code: str = SUM_JOB, name: str = "main.py") -> list[tuple[str, Any]]:
    return [
        ("files", ("job.toml", toml.encode(), "application/toml")),
        ("files", (name, code.encode(), "text/x-python")),
    ]


OPTIONS = {"allow_unconfined": "true" if not CONFINED else "false"}


@dataclass
class Market:
    researcher: Session
    provider: Session
    stranger: Session
    owner: Session  # a GPU owner without a running agent: its stake and offer change
    researcher_api: TestClient
    researcher_pages: TestClient
    auditor_api: TestClient
    owner_api: TestClient
    owner_auditor: TestClient
    agent_api: TestClient
    small_upload: TestClient
    tmp: Path


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory, contract_cache: Path) -> Iterator[Market]:
    tmp = tmp_path_factory.mktemp("web-compute")
    jobs_dir = Path(tempfile.mkdtemp(prefix="ailedger-test-web-compute-"))
    jobs_dir.chmod(0o711)  # reachable by the job's uid
    with embedded_chain(tmp, contract_cache) as chain:
        parties = {n: chain.party(n) for n in ("researcher", "provider", "stranger", "owner")}
        for s in parties.values():
            s.token.faucet(1_000 * AIL)
        researcher, provider = parties["researcher"], parties["provider"]
        settings = AgentSettings(
            1 * AIL, 100 * AIL, max_jobs=2, poll_seconds=0.02, work_dir=jobs_dir, max_output_mb=16
        )
        sandbox = Sandbox(allow_unconfined=not CONFINED, base_dir=jobs_dir)
        agent = ProviderAgent(provider, sandbox, MACHINE, settings, lambda _: None)
        agent.prepare()
        stop = threading.Event()
        thread = threading.Thread(target=agent.run, args=(stop,), daemon=True)
        with OwnerNode(researcher) as node:
            app = create_app(node.gateway(), jobs=job_inbox(researcher))
            with BackgroundServer(app) as url:
                announce(researcher, url)
                thread.start()
                ctx = WebContext(researcher)
                owner_ctx = WebContext(parties["owner"])
                me, owner = operator_of(researcher), operator_of(parties["owner"])
                try:
                    yield Market(
                        researcher,
                        provider,
                        parties["stranger"],
                        parties["owner"],
                        router_client(ctx, [router()], me),
                        router_client(ctx, [job_pages()], me),
                        router_client(ctx, [router()], auditor(parties["stranger"].address)),
                        router_client(owner_ctx, [router()], owner),
                        router_client(owner_ctx, [router()], auditor(researcher.address)),
                        router_client(WebContext(provider), [router()], operator_of(provider)),
                        router_client(ctx, [router(max_upload=4096)], me),
                        tmp,
                    )
                finally:
                    stop.set()
                    thread.join(timeout=30)
                    shutil.rmtree(jobs_dir, ignore_errors=True)


def wait_for(client: TestClient, job_id: int, *states: str) -> dict[str, Any]:
    give_up = time.monotonic() + 120
    while time.monotonic() < give_up:
        data: dict[str, Any] = client.get(f"/api/v1/jobs/{job_id}").json()
        if data["status"] in states:
            return data
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} never reached {states}: {data}")


def stranger_job(market: Market) -> int:
    """A job another requester posted (straight on chain: it needs no node for this)."""
    s = market.stranger
    terms = JobTerms(
        bundle_hash=b"\x01" * 32,
        cpu_cores=64,  # more than any provider here offers: it stays open
        ram_mb=256,
        gpu_mem_mb=0,
        max_price_per_hour=AIL,
        max_hours=1,
        deadline=int(time.time()) + 3600,
        require_confined=False,
    )
    s.token.approve(s.compute_market.address, terms.max_cost)
    job_id, _ = s.compute_market.post_job(terms)
    return job_id


# ------------------------------------------------------------------------ happy paths


def test_a_job_is_submitted_followed_and_its_result_downloaded(market: Market) -> None:
    api = market.researcher_api
    answer = api.post("/api/v1/jobs", files=files(job_toml()), data=OPTIONS)
    assert answer.status_code == 201, answer.text
    done = answer.json()
    job_id = done["job_id"]
    assert done["status"] == "assigned" and done["providers"] == [market.provider.address]
    assert api.get("/api/v1/jobs").json()[0]["job_id"] == job_id

    status = wait_for(api, job_id, "review")
    (slot,) = status["assignments"]
    assert slot["revealed"] and slot["output_received"]
    assert api.get(f"/api/v1/jobs/{job_id}/auction").json() == {"job_id": job_id, "outcome": None}

    page = api.get(f"/api/v1/jobs/{job_id}/logs", params={"after": 0}).json()
    lines = [line["line"] for line in page["lines"]]
    assert any(line.startswith("computed") for line in lines), lines
    assert page["running"] is False and page["next"] == len(lines)
    rest = api.get(f"/api/v1/jobs/{job_id}/logs", params={"after": page["next"]}).json()
    assert rest["lines"] == [] and rest["next"] == page["next"]

    # A log line is the provider's text: the job page shows it escaped, never as markup.
    html = market.researcher_pages.get(f"/research/jobs/{job_id}").text
    assert "&lt;script&gt;alert(" in html and "<script>alert(" not in html
    assert f"/api/v1/jobs/{job_id}/result" in html and "/accept" in html

    download = api.get(f"/api/v1/jobs/{job_id}/result")
    assert download.status_code == 200, download.text
    assert download.headers["x-result-provider"] == market.provider.address
    with tarfile.open(fileobj=io.BytesIO(download.content), mode="r:gz") as tar:
        names = tar.getnames()
        member = tar.extractfile(f"job-{job_id}/sum.json")
        assert member is not None and b'"sum"' in member.read()
    assert f"job-{job_id}/sum.json" in names
    assert not list((market.researcher.home.path / "jobs").glob(".download-*"))  # cleaned up

    # The provider sees the job it ran; the researcher accepts and it is paid.
    accepted = api.post(f"/api/v1/jobs/{job_id}/accept")
    assert accepted.status_code == 200, accepted.text
    assert api.get(f"/api/v1/jobs/{job_id}").json()["status"] == "completed"
    history = market.agent_api.get("/api/v1/provider/history").json()
    assert history["jobs"][0]["job_id"] == job_id
    assert int(history["earned"]) > 0 and history["payments"][0]["job_id"] == job_id
    assert market.agent_api.get("/api/v1/provider").json()["completed"] >= 1


def test_an_open_job_is_cancelled_once(market: Market) -> None:
    api = market.researcher_api
    before = market.researcher.token.balance_of(market.researcher.address)
    toml = job_toml(cores=64)  # no provider here has 64 cores: it stays open
    done = api.post("/api/v1/jobs", files=files(toml), data={**OPTIONS, "wait_s": "0"}).json()
    job_id = done["job_id"]
    assert done["status"] == "open"
    listed = {j["job_id"]: j["status"] for j in api.get("/api/v1/jobs").json()}
    assert listed[job_id] == "open"
    cancelled = api.post(f"/api/v1/jobs/{job_id}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["action"] == "cancelled"
    assert api.get(f"/api/v1/jobs/{job_id}").json()["status"] == "cancelled"
    assert market.researcher.token.balance_of(market.researcher.address) == before
    again = api.post(f"/api/v1/jobs/{job_id}/cancel")
    assert again.status_code == 422 and "only open or running jobs" in again.json()["error"]
    no_dispute = api.post(f"/api/v1/jobs/{job_id}/dispute")
    assert no_dispute.status_code == 422 and "review" in no_dispute.json()["error"]


def test_a_gpu_owner_stakes_posts_an_offer_and_withdraws(market: Market) -> None:
    api, chain = market.owner_api, market.owner.compute_providers
    me = api.get("/api/v1/provider").json()
    assert me["registered"] is False and me["offer"] is None and me["machine"]["cpu_cores"] >= 1
    minimum = int(me["min_stake"])

    early = api.put("/api/v1/provider/offer", json={"price_per_hour": "2"})
    assert early.status_code == 422 and "stake first" in early.json()["error"]
    too_little = api.post("/api/v1/provider/stake", json={"amount": str(minimum / AIL / 2)})
    assert too_little.status_code == 422 and "at least" in too_little.json()["error"]
    assert chain.provider(market.owner.address)["registered"] is False

    staked = api.post("/api/v1/provider/stake", json={"amount": str(minimum // AIL)})
    assert staked.status_code == 200 and staked.json()["action"] == "registered"
    more = api.post("/api/v1/provider/stake", json={"amount": "5"})
    assert more.json()["action"] == "added"
    assert chain.provider(market.owner.address)["stake"] == minimum + 5 * AIL

    offered = api.put("/api/v1/provider/offer", json={"price_per_hour": "2.5", "cpu_cores": 1})
    assert offered.status_code == 200, offered.text
    on_chain = chain.offer(market.owner.address)
    assert on_chain["posted"] and on_chain["cpu_cores"] == 1
    assert on_chain["price_per_hour"] == 25 * AIL // 10
    cores = me["machine"]["cpu_cores"]
    beyond = api.put("/api/v1/provider/offer", json={"price_per_hour": "2", "cpu_cores": cores + 1})
    assert beyond.status_code == 422 and "this machine" in beyond.json()["error"]
    assert chain.offer(market.owner.address)["cpu_cores"] == 1  # unchanged

    over = api.post("/api/v1/provider/stake/withdraw", json={"amount": "100000"})
    assert over.status_code == 422 and "at most the stake" in over.json()["error"]
    out = api.post("/api/v1/provider/stake/withdraw", json={"amount": "5"})
    assert out.status_code == 200 and out.json()["action"] == "withdrawn"
    now = api.get("/api/v1/provider").json()
    assert int(now["stake"]) == minimum and now["can_bid"] is True
    assert now["offer"]["price_per_hour"] == str(25 * AIL // 10)
    assert api.get("/api/v1/provider/history").json() == {
        "earned": "0",
        "jobs": [],
        "payments": [],
        "slashes": [],
    }


# --------------------------------------------------------------------------- attacks


def test_an_auditor_can_read_but_every_write_is_refused(market: Market) -> None:
    reader = market.auditor_api
    assert reader.get("/api/v1/jobs").status_code == 200
    assert reader.get("/api/v1/provider").status_code == 200
    jobs_before = market.researcher_api.get("/api/v1/jobs").json()
    job_id = 1
    writes = [
        reader.post("/api/v1/jobs", files=files(job_toml()), data=OPTIONS),
        reader.post(f"/api/v1/jobs/{job_id}/cancel"),
        reader.post(f"/api/v1/jobs/{job_id}/accept"),
        reader.post(f"/api/v1/jobs/{job_id}/dispute"),
        reader.put("/api/v1/provider/offer", json={"price_per_hour": "1"}),
        reader.post("/api/v1/provider/stake", json={"amount": "100"}),
        reader.post("/api/v1/provider/stake/withdraw", json={"amount": "1"}),
    ]
    for answer in writes:
        assert answer.status_code == 403, answer.text
        assert "read-only" in answer.json()["error"]
    assert market.researcher_api.get("/api/v1/jobs").json() == jobs_before
    owner_before = market.owner_api.get("/api/v1/provider").json()
    for answer in (
        market.owner_auditor.post("/api/v1/provider/stake", json={"amount": "100"}),
        market.owner_auditor.put("/api/v1/provider/offer", json={"price_per_hour": "9"}),
    ):
        assert answer.status_code == 403
    assert market.owner_api.get("/api/v1/provider").json() == owner_before


def test_another_requesters_job_is_not_found_and_unchanged(market: Market) -> None:
    theirs = stranger_job(market)
    api = market.researcher_api
    for path in ("", "/logs", "/result", "/auction"):
        answer = api.get(f"/api/v1/jobs/{theirs}{path}")
        assert answer.status_code == 404, (path, answer.text)
        assert "not one of this home's jobs" in answer.json()["error"]
    for action in ("cancel", "accept", "dispute"):
        assert api.post(f"/api/v1/jobs/{theirs}/{action}").status_code == 404
    assert market.researcher_pages.get(f"/research/jobs/{theirs}").status_code == 404
    record = market.stranger.compute_market.job(theirs)
    assert record is not None and record.status == JobStatus.OPEN and record.escrow == AIL
    assert theirs not in [j["job_id"] for j in api.get("/api/v1/jobs").json()]
    market.stranger.compute_market.cancel(theirs)


@pytest.mark.parametrize("bad", ["abc", "-1", "1e3", "0x10", str(2**256), "1" * 100, " 7"])
def test_malformed_job_ids_are_a_clear_400(market: Market, bad: str) -> None:
    answer = market.researcher_api.get(f"/api/v1/jobs/{bad}")
    assert answer.status_code == 400, answer.text
    assert "is not a job id" in answer.json()["error"]
    assert market.researcher_api.post(f"/api/v1/jobs/{bad}/cancel").status_code == 400


def test_wrong_types_and_amounts_are_422_and_change_nothing(market: Market) -> None:
    api = market.researcher_api
    assert api.get("/api/v1/jobs/1/logs", params={"after": -1}).status_code == 422
    assert api.get("/api/v1/jobs/1/logs", params={"after": "soon"}).status_code == 422
    before = api.get("/api/v1/jobs").json()
    bad_wait = api.post("/api/v1/jobs", files=files(job_toml()), data={"wait_s": "forever"})
    assert bad_wait.status_code == 422 and "wait_s" in bad_wait.json()["error"]
    bad_field = api.post("/api/v1/jobs", files=files(job_toml()), data={"budget": "9"})
    assert bad_field.status_code == 422 and "budget" in bad_field.json()["error"]
    bad_toml = api.post(
        "/api/v1/jobs", files=files(job_toml().replace("ram_mb = 256", 'ram_mb = "lots"'))
    )
    assert bad_toml.status_code == 422 and "ram_mb" in bad_toml.json()["error"]
    purpose = api.post("/api/v1/jobs", files=files(job_toml()), data={"purpose": "spying"})
    assert purpose.status_code == 422 and "unknown purpose" in purpose.json()["error"]
    not_multipart = api.post("/api/v1/jobs", json={"files": ["job.toml"]})
    assert not_multipart.status_code == 415
    assert api.get("/api/v1/jobs").json() == before

    owner = market.owner_api
    for body in (
        {"price_per_hour": "lots"},
        {"price_per_hour": "-1"},
        {"price_per_hour": "1", "cpu_cores": "many"},
        {"price_per_hour": "1", "cpu_cores": 0},
        {"cpu_cores": 1},
    ):
        assert owner.put("/api/v1/provider/offer", json=body).status_code == 422, body
    assert owner.post("/api/v1/provider/stake", json={"amount": "1e400"}).status_code == 422
    assert owner.post("/api/v1/provider/stake", json={"amount": 5}).status_code == 422


def test_an_oversized_upload_is_refused_before_anything_is_paid(market: Market) -> None:
    before = market.researcher.token.balance_of(market.researcher.address)
    big = files(job_toml(), code="x = 1\n" + "#" * 200_000)
    answer = market.small_upload.post("/api/v1/jobs", files=big, data=OPTIONS)
    assert answer.status_code == 413 and "over 4096 bytes" in answer.json()["error"]
    # Under the declared-length check, over the limit once copied: refused while staging.
    medium = files(job_toml(), code="x = 1\n" + "#" * 6000)
    answer = market.small_upload.post("/api/v1/jobs", files=medium, data=OPTIONS)
    assert answer.status_code == 413
    assert market.researcher.token.balance_of(market.researcher.address) == before
    assert not list((market.researcher.home.path / "jobs").glob(".upload-*"))


@pytest.mark.parametrize(
    "name", ["../evil.py", "/etc/cron.d/evil", "a/../../evil.py", "a\\..\\evil.py", "a//b.py", "."]
)
def test_a_file_name_that_leaves_the_bundle_is_refused(market: Market, name: str) -> None:
    before = market.researcher_api.get("/api/v1/jobs").json()
    answer = market.researcher_api.post(
        "/api/v1/jobs", files=files(job_toml(), name=name), data=OPTIONS
    )
    assert answer.status_code == 422, answer.text
    assert "not a relative path inside the bundle" in answer.json()["error"]
    assert market.researcher_api.get("/api/v1/jobs").json() == before
    assert not (market.tmp / "evil.py").exists()
    assert not list((market.researcher.home.path / "jobs").glob(".upload-*"))


@pytest.mark.parametrize(
    ("error", "becomes"),
    [
        (JobSpecError("job.toml: [job] entry ..."), UnprocessableError),
        (JobStateError("job 1 is completed"), UnprocessableError),
        (StandingError("stake locked"), UnprocessableError),
        (TransactionRevertedError("reverted: withdraw: amount exceeds stake"), UnprocessableError),
        (ChainUnreachableError("the chain does not answer"), BackPressureError),
        (PeerUnreachableError("your node does not answer"), BackPressureError),
        (NotFoundError("job 9 is not one of this home's jobs"), NotFoundError),
    ],
)
def test_compute_errors_become_the_refusals_they_are(error: Exception, becomes: type) -> None:
    with pytest.raises(becomes) as raised, refusals():
        raise error
    assert str(error) in str(raised.value)


def test_job_ids_span_uint256() -> None:
    assert parse_job_id("0") == 0 and parse_job_id(str(2**256 - 1)) == 2**256 - 1
    with pytest.raises(MalformedRequestError, match="is not a job id"):
        parse_job_id(str(2**256))

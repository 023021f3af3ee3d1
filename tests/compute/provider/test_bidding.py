"""The provider agent's bid path under a slow or hostile counterparty and after a restart.

A requester's node that never hands over its job's ``job.toml`` costs that job the bid,
not the jobs posted beside it; an agent catching up on postings whose bid window has
passed skips them without asking anyone; and one account's transactions, sent from many
threads at once, all land."""

from __future__ import annotations

import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse

from ailedger.chain.connection import open_embedded
from ailedger.chain.deploy import manifest_path, save_manifest
from ailedger.chain.transactions import fund_from_dev_account
from ailedger.compute.provider.agent import AgentSettings, ProviderAgent
from ailedger.compute.provider.machine import MachineInfo
from ailedger.compute.provider.sandbox import Sandbox
from ailedger.compute.requester.job import submit
from ailedger.keys.home import NodeHome
from ailedger.node.app import create_app
from ailedger.node.service import BackgroundServer, announce, job_inbox
from ailedger.peer import wire
from ailedger.session import Session
from ailedger.settings import load_settings
from ailedger.sharing.owner import OwnerNode
from tests.short_windows import SHORT_BID_WINDOWS, deploy_beside

pytestmark = [pytest.mark.slow, pytest.mark.integration]
PASSPHRASE = "bidding"
AIL = 10**18
MACHINE = MachineInfo(cpu_cores=4, ram_mb=8192, gpus=(), confinement=None)


@dataclass
class Market:
    honest: Session  # a requester whose node answers
    stalling: Session  # a requester whose node never hands over a job.toml
    provider: Session
    released: threading.Event  # lets the stalling node's requests end
    spec_requests: list[str]  # job.toml requests the stalling node took
    tmp: Path

    def bundle(self, name: str) -> Path:
        directory = self.tmp / f"{name}-{time.monotonic_ns()}"
        directory.mkdir()
        (directory / "main.py").write_text("print('hello')\n")
        (directory / "job.toml").write_text(
            textwrap.dedent(
                """\
                [job]
                entry = "main.py"
                runtime = "python"
                [resources]
                cpu_cores = 1
                ram_mb = 256
                max_hours = 1
                [market]
                max_price_per_hour = "5"
                deadline_hours = 1
                """
            )
        )
        return directory

    def post(self, requester: Session) -> int:
        """Post a job and leave its auction open (nobody closes it early)."""
        return submit(requester, self.bundle("job"), require_confined=False, wait_s=0).job_id

    def agent(self, lines: list[str]) -> ProviderAgent:
        settings = AgentSettings(1 * AIL, 100 * AIL, max_jobs=4, work_dir=self.tmp)
        sandbox = Sandbox(allow_unconfined=True, base_dir=self.tmp)
        return ProviderAgent(self.provider, sandbox, MACHINE, settings, lines.append)


def _stalling_node(released: threading.Event, seen: list[str]) -> FastAPI:
    """A requester's node that is up but holds every job.toml request until released."""
    app = FastAPI()

    @app.get(wire.HEALTH)
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(wire.JOB_SPEC)
    def spec(job_id: int, request: Request) -> PlainTextResponse:
        seen.append(request.url.path)
        released.wait(60)
        return PlainTextResponse("", status_code=503)

    return app


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory, contract_cache: Path) -> Iterator[Market]:
    tmp = tmp_path_factory.mktemp("bidding")
    homes = {
        n: NodeHome.init(tmp / n, PASSPHRASE, scrypt_n=2**12)
        for n in ("honest", "stalling", "provider")
    }
    with open_embedded(homes["honest"].chain_dir, contract_cache) as connection:
        # Both tests wait a job's bid window out: a market with a 4 s window, not 10 s.
        # The agent bids on the honest job within a tenth of a second of seeing it.
        deployment = deploy_beside(connection.web3, contract_cache, SHORT_BID_WINDOWS)
        for home in homes.values():
            path = manifest_path(home.path, deployment.chain_id, deployment.genesis_hash)
            save_manifest(path, deployment)
        sessions = {}
        for name, home in homes.items():
            settings = load_settings(home=home.path, cache_dir=contract_cache)
            session = Session(
                settings, home, connection, home.unlock_account(PASSPHRASE), PASSPHRASE
            )
            fund_from_dev_account(connection.web3, session.address, 10**20)
            session.token.faucet(1_000 * AIL)
            sessions[name] = session
        released, seen = threading.Event(), list[str]()
        honest = sessions["honest"]
        with (
            OwnerNode(honest) as node,
            BackgroundServer(create_app(node.gateway(), jobs=job_inbox(honest))) as url,
            BackgroundServer(_stalling_node(released, seen)) as stalling_url,
        ):
            announce(honest, url)
            sessions["stalling"].node_registry.register(stalling_url)
            try:
                yield Market(
                    honest, sessions["stalling"], sessions["provider"], released, seen, tmp
                )
            finally:
                released.set()


def _bidders(market: Market, job_id: int) -> list[str]:
    return [provider for provider, _ in market.honest.compute_market.job_bids(job_id)]


def test_a_stalling_requester_does_not_cost_the_jobs_beside_it_their_bids(
    market: Market,
) -> None:
    lines: list[str] = []
    agent = market.agent(lines)
    agent.prepare()
    stalled = market.post(market.stalling)
    honest = market.post(market.honest)  # posted after, so seen after, in chain order
    stop = threading.Event()
    thread = threading.Thread(target=agent.run, args=(stop,), daemon=True)
    thread.start()
    try:
        window = market.honest.compute_market.windows().bid_s
        give_up = time.monotonic() + window
        while market.provider.address not in _bidders(market, honest):
            assert time.monotonic() < give_up, f"no bid on the honest job: {lines}"
            time.sleep(0.05)
        # The bid went in while the stalling node still held the agent's request.
        assert market.spec_requests and not market.released.is_set()
        assert _bidders(market, stalled) == []
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
    # The request to the stalling node was given up by the end of its job's window.
    assert any(f"job {stalled}: not bidding" in line for line in lines), lines


def test_a_restarted_agent_skips_postings_whose_window_has_passed(market: Market) -> None:
    web3 = market.provider.chain.web3
    before = int(web3.eth.block_number) + 1
    job_id = market.post(market.stalling)
    deadline = market.honest.compute_market.job(job_id).bid_deadline  # type: ignore[union-attr]
    while time.time() < deadline + 1:  # the agent was down for the whole window
        time.sleep(0.2)
    asked = len(market.spec_requests)
    # The agent stopped before the posting and starts again from the block it had saved.
    market.provider.home.layout.provider_progress.parent.mkdir(parents=True, exist_ok=True)
    market.provider.home.layout.provider_progress.write_text(f'{{"next_block": {before}}}')
    lines: list[str] = []
    agent = market.agent(lines)
    agent.prepare()
    stop = threading.Event()
    stop_after_one_round = threading.Timer(1.0, stop.set)
    stop_after_one_round.start()
    agent.run(stop)
    assert any(f"job {job_id}: not bidding: its bid window closed" in line for line in lines)
    assert len(market.spec_requests) == asked  # nobody was asked for its job.toml
    assert _bidders(market, job_id) == []


def test_one_accounts_transactions_from_many_threads_all_land(market: Market) -> None:
    token = market.honest.token
    receiver = market.provider.address
    before = token.balance_of(receiver)
    errors: list[BaseException] = []

    def send() -> None:
        try:
            token.transfer(receiver, 1)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=send) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert token.balance_of(receiver) - before == 12  # no nonce taken twice

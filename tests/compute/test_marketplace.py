"""The compute market end to end, in one process: a requester with its node, provider
agents bidding and running jobs in sandboxes, results checked against the chain, payment,
a cheating provider slashed after a tie-break, hostile jobs stopped, a provider that dies
mid-job, and compute-to-data at a dataset owner's node.

The paid job, the k = 2 settlement and compute-to-data run on both chain backends (the
embedded chain, and Anvil with the contracts deployed as on any external network); the
other tests, which exercise the agent and the sandbox rather than the chain, run on the
embedded chain only."""

from __future__ import annotations

import json
import shutil
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from ailedger.chain.connection import ChainConnection, connect_rpc, open_embedded
from ailedger.chain.contracts import JobStatus, OutputPolicy
from ailedger.chain.contracts.data_market import PURPOSES, Policy
from ailedger.chain.deploy import deploy_contracts, manifest_path, save_manifest
from ailedger.chain.transactions import fund_from_dev_account
from ailedger.compute.jobs import bundle_hash
from ailedger.compute.outputs import read_exit_record
from ailedger.compute.provider.agent import AgentSettings, ProviderAgent
from ailedger.compute.provider.machine import MachineInfo
from ailedger.compute.provider.sandbox import Sandbox, SandboxResult, confinement
from ailedger.compute.requester.job import cancel, fetch_result, logs, status, submit
from ailedger.errors import AiledgerError, ChainError
from ailedger.keys.home import NodeHome
from ailedger.node.app import create_app
from ailedger.node.service import BackgroundServer, announce, job_inbox
from ailedger.session import Session
from ailedger.settings import load_settings
from ailedger.sharing.owner import OwnerNode
from ailedger.sharing.requester import request_access
from ailedger.testing.ethnode import AnvilNode, anvil_available
from tests.short_windows import SHORT_BID_WINDOWS, deploy_beside

pytestmark = pytest.mark.slow
PASSPHRASE = "compute market"
AIL = 10**18
RESEARCH = PURPOSES["rare-disease-research"]
MACHINE = MachineInfo(cpu_cores=2, ram_mb=4096, gpus=(), confinement=None)
STAKE = 100 * AIL
SLASH_FRACTION = 0.5


class TamperingSandbox(Sandbox):
    """A cheating provider: adds a file to the output of jobs that carry a marker."""

    def run(self, bundle: Path, *args: Any, **kwargs: Any) -> SandboxResult:
        result = super().run(bundle, *args, **kwargs)
        if (bundle / "tamper-me").exists():
            (result.output_dir / "forged.txt").write_text("not what the code computed\n")
        return result


@dataclass
class Provider:
    session: Session
    agent: ProviderAgent
    stop: threading.Event
    thread: threading.Thread
    lines: list[str] = field(default_factory=list)

    def halt(self) -> None:
        self.stop.set()
        self.thread.join(timeout=30)


@dataclass
class World:
    requester: Session
    providers: dict[str, Provider]
    owner: Session
    jobs_dir: Path
    tmp: Path
    confined: bool

    def bundle(self, name: str, code: str, **job: Any) -> Path:
        directory = self.tmp / f"{name}-{time.monotonic_ns()}"
        directory.mkdir()
        (directory / "main.py").write_text(textwrap.dedent(code))
        inputs = ", ".join(f'"{i}"' for i in job.get("inputs", []))
        (directory / "job.toml").write_text(
            "[job]\n"
            'entry = "main.py"\nruntime = "python"\n'
            f"inputs = [{inputs}]\nseed = 3\ndeterministic = true\n"
            "[resources]\ncpu_cores = 1\nram_mb = 256\nmax_hours = 1\n"
            f'[market]\nmax_price_per_hour = "5"\n'
            f"deadline_hours = {job.get('deadline_hours', 1)}\n"
            f"redundancy = {job.get('k', 1)}\n" + job.get("output", "")
        )
        if job.get("tamper"):
            (directory / "tamper-me").write_text("")
        return directory

    def submit(self, bundle: Path, **kw: Any) -> int:
        # Take bids for half a second so the cheapest provider wins, not the fastest.
        done = submit(self.requester, bundle, require_confined=self.confined, collect_s=0.5, **kw)
        assert done.status == JobStatus.ASSIGNED, done
        return done.job_id

    def wait(self, job_id: int, *wanted: JobStatus, timeout: float = 60) -> JobStatus:
        market = self.requester.compute_market
        give_up = time.monotonic() + timeout
        while time.monotonic() < give_up:
            record = market.job(job_id)
            if record is not None and record.status in wanted:
                return record.status
            time.sleep(0.05)
        raise AssertionError(f"job {job_id}: {status(self.requester, job_id)}")

    def balance(self, session: Session) -> int:
        return int(session.token.balance_of(session.address))


# Tests that exercise the agent and the sandbox, not the chain, run on the embedded one.
embedded_only = pytest.mark.parametrize("world", ["embedded"], indirect=True)


def _session(home: NodeHome, connection: Any, cache: Path) -> Session:
    settings = load_settings(home=home.path, cache_dir=cache)
    return Session(settings, home, connection, home.unlock_account(PASSPHRASE), PASSPHRASE)


def _start(session: Session, sandbox: Sandbox, price: int, jobs_dir: Path) -> Provider:
    settings = AgentSettings(
        price, STAKE, max_jobs=2, poll_seconds=0.02, work_dir=jobs_dir, max_output_mb=16
    )
    lines: list[str] = []
    agent = ProviderAgent(session, sandbox, MACHINE, settings, lines.append)
    prepared = agent.prepare()
    windows = session.compute_market.windows()
    assert f"market windows: bids {windows.bid_s} s" in prepared[-1]
    stop = threading.Event()
    thread = threading.Thread(target=agent.run, args=(stop,), daemon=True)
    thread.start()
    return Provider(session, agent, stop, thread, lines)


@contextmanager
def _chain(
    backend: str, homes: dict[str, NodeHome], cache: Path
) -> Iterator[Callable[[NodeHome], ChainConnection]]:
    """The chain the parties share; yields how each home connects to it."""
    if backend == "embedded":
        with open_embedded(homes["requester"].chain_dir, cache) as connection:
            # The tie-break auction waits its bid window out (its bidder closes it): a
            # market with a 4 s window, not 10 s. Agents bid within a tenth of a second.
            deployment = deploy_beside(connection.web3, cache, SHORT_BID_WINDOWS)
            for home in homes.values():
                path = manifest_path(home.path, deployment.chain_id, deployment.genesis_hash)
                save_manifest(path, deployment)
            yield lambda home: connection
        return
    if not anvil_available():
        pytest.skip("Anvil is not installed: run scripts/install_ethnode.sh")
    with AnvilNode() as node:
        # Deployed as on any external network: by an operator account, manifest copied
        # into each party's home.
        deployer, web3 = Account.create(), connect_rpc(node.url).web3
        fund_from_dev_account(web3, deployer.address, 10**20)
        deployment = deploy_contracts(web3, deployer, cache)
        for home in homes.values():
            path = manifest_path(home.path, deployment.chain_id, deployment.genesis_hash)
            save_manifest(path, deployment)
        yield lambda home: connect_rpc(node.url)


@pytest.fixture(
    scope="module", params=["embedded", pytest.param("anvil", marks=pytest.mark.rpcnode)]
)
def world(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    contract_cache: Path,
) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp(f"market-{request.param}")
    cache = contract_cache
    jobs_dir = Path(tempfile.mkdtemp(prefix="ailedger-test-market-"))
    jobs_dir.chmod(0o711)  # reachable by the job's uid
    confined = confinement() is not None
    names = ("requester", "cheap", "cheater", "spare", "owner")
    homes = {n: NodeHome.init(tmp / n, PASSPHRASE, scrypt_n=2**12) for n in names}
    with _chain(request.param, homes, cache) as connect:
        sessions = {n: _session(h, connect(h), cache) for n, h in homes.items()}
        for s in sessions.values():
            fund_from_dev_account(s.chain.web3, s.address, 10**20)
            s.token.faucet(1_000 * AIL)
        requester = sessions["requester"]
        with OwnerNode(requester) as node:
            app = create_app(node.gateway(), jobs=job_inbox(requester))
            with BackgroundServer(app) as url:
                announce(requester, url)

                def box(kind: type[Sandbox] = Sandbox) -> Sandbox:
                    return kind(allow_unconfined=not confined, base_dir=jobs_dir)

                providers = {
                    "cheap": _start(sessions["cheap"], box(), 1 * AIL, jobs_dir),
                    "cheater": _start(
                        sessions["cheater"], box(TamperingSandbox), 2 * AIL, jobs_dir
                    ),
                    "spare": _start(sessions["spare"], box(), 3 * AIL, jobs_dir),
                    "owner": _start(sessions["owner"], box(), 4 * AIL, jobs_dir),
                }
                try:
                    yield World(requester, providers, sessions["owner"], jobs_dir, tmp, confined)
                finally:
                    for p in providers.values():
                        p.halt()
                    shutil.rmtree(jobs_dir, ignore_errors=True)


SUM_JOB = """
    import json, os, random
    rng = random.Random(int(os.environ["AILEDGER_SEED"]))
    total = sum(rng.random() for _ in range(10_000))
    print("computed", round(total, 6), flush=True)
    with open(os.path.join(os.environ["AILEDGER_OUTPUT"], "sum.json"), "w") as f:
        json.dump({"sum": total}, f)
"""


def test_a_job_runs_is_checked_and_paid(world: World) -> None:
    cheap = world.providers["cheap"].session
    before_r, before_p = world.balance(world.requester), world.balance(cheap)
    job_id = world.submit(world.bundle("sum", SUM_JOB))
    info = status(world.requester, job_id)
    assert [a["provider"] for a in info["assignments"]] == [cheap.address]  # cheapest bid won
    world.wait(job_id, JobStatus.REVIEW)
    _, provider = fetch_result(world.requester, job_id, world.tmp / f"out-{job_id}")
    assert provider == cheap.address
    assert "sum" in json.loads((world.tmp / f"out-{job_id}" / "sum.json").read_text())
    assert read_exit_record(world.tmp / f"out-{job_id}")["reason"] == "ok"
    text = "".join(t for _, t in logs(world.requester, job_id))
    assert "computed" in text and "stopped: ok" in text  # logs streamed back, decrypted
    world.requester.compute_market.accept(job_id)
    # Billed by the second at its own bid of 1 AIL an hour, for no more time than passed
    # on chain between its assignment and its commitment (it used to be one whole hour).
    (slot,) = world.requester.compute_market.assignments(job_id)
    seconds = min(slot["seconds_used"], max(slot["committed_at"] - slot["assigned_at"], 1))
    assert slot["paid"] == seconds * AIL // 3600 and seconds < 600
    assert world.balance(cheap) - before_p == slot["paid"]
    assert before_r - world.balance(world.requester) == slot["paid"]  # the rest came back


def test_matching_results_settle_k2(world: World) -> None:
    job_id = world.submit(world.bundle("sum2", SUM_JOB, k=2))
    assert world.wait(job_id, JobStatus.COMPLETED) == JobStatus.COMPLETED
    slots = world.requester.compute_market.assignments(job_id)
    assert len(slots) == 2 and all(a["revealed"] for a in slots)
    for a in slots:  # both paid, by the second
        worked = min(a["seconds_used"], max(a["committed_at"] - a["assigned_at"], 1))
        assert a["paid"] == worked * a["price_per_hour"] // 3600
    fetch_result(world.requester, job_id, world.tmp / f"out-{job_id}")


@embedded_only
def test_a_cheating_provider_loses_the_tiebreak_and_is_slashed(world: World) -> None:
    providers = world.requester.compute_providers
    cheater = world.providers["cheater"].session
    stake_before = providers.provider(cheater.address)["stake"]
    job_id = world.submit(world.bundle("tamper", SUM_JOB, k=2, tamper=True))
    assert world.wait(job_id, JobStatus.COMPLETED, JobStatus.DISPUTED) == JobStatus.COMPLETED
    slots = {a["provider"]: a for a in status(world.requester, job_id)["assignments"]}
    assert len(slots) == 3  # the two first, and the tie-break run
    assert slots[cheater.address]["paid"] == 0
    assert providers.provider(cheater.address)["slashed"] >= 1
    assert providers.provider(cheater.address)["stake"] == stake_before * (1 - SLASH_FRACTION)
    fetch_result(world.requester, job_id, world.tmp / f"out-{job_id}")
    assert not (world.tmp / f"out-{job_id}" / "forged.txt").exists()


ESCAPE_JOB = """
    import json, os, socket
    tried = {}
    try:
        socket.create_connection(("1.1.1.1", 53), timeout=2)
        tried["network"] = "open"
    except OSError as exc:
        tried["network"] = "blocked"
    for path in ("/etc/shadow", "/root", os.environ.get("HOST_SECRET", "/nonexistent")):
        try:
            open(path).read()
            tried[path] = "read"
        except OSError:
            tried[path] = "blocked"
    with open(os.path.join(os.environ["AILEDGER_OUTPUT"], "tried.json"), "w") as f:
        json.dump(tried, f)
"""
MEMORY_JOB = """
    hog = [bytearray(1 << 20) for _ in range(4096)]
"""
HUGE_OUTPUT_JOB = """
    import os
    with open(os.path.join(os.environ["AILEDGER_OUTPUT"], "big"), "wb") as f:
        while True:
            f.write(b"x" * (1 << 20))
"""


def _reviewed_result(world: World, job_id: int) -> Path:
    world.wait(job_id, JobStatus.REVIEW)
    out = world.tmp / f"out-{job_id}"
    fetch_result(world.requester, job_id, out)
    world.requester.compute_market.accept(job_id)
    return out


@embedded_only
@pytest.mark.skipif(confinement() is None, reason="needs bubblewrap or user namespaces")
def test_hostile_jobs_are_stopped_and_the_provider_keeps_serving(world: World) -> None:
    out = _reviewed_result(world, world.submit(world.bundle("escape", ESCAPE_JOB)))
    tried = json.loads((out / "tried.json").read_text())
    assert set(tried.values()) == {"blocked"}, tried
    out = _reviewed_result(world, world.submit(world.bundle("memory", MEMORY_JOB)))
    assert read_exit_record(out)["reason"] == "memory"
    out = _reviewed_result(world, world.submit(world.bundle("huge", HUGE_OUTPUT_JOB)))
    assert read_exit_record(out)["reason"].startswith("withheld: output-too-large")
    assert not (out / "big").exists()
    out = _reviewed_result(world, world.submit(world.bundle("after", SUM_JOB)))
    assert read_exit_record(out)["reason"] == "ok"  # still serving


SLOW_JOB = """
    import time
    print("started", flush=True)
    time.sleep(120)
"""


@embedded_only
def test_a_provider_that_dies_mid_job_leaves_a_refund(world: World) -> None:
    market = world.requester.compute_market
    cheap = world.providers["cheap"]
    before = world.balance(world.requester)
    job_id = world.submit(world.bundle("slow", SLOW_JOB))
    (slot,) = market.assignments(job_id)
    assert slot["provider"] == cheap.session.address, (cheap.agent.capacity, cheap.lines[-8:])
    give_up = time.monotonic() + 30
    while "started" not in "".join(t for _, t in logs(world.requester, job_id)):
        assert time.monotonic() < give_up
        time.sleep(0.1)

    def dead(*args: Any) -> Any:
        raise ChainError("this provider's machine lost power")

    # The machine dies: its loop stops, the job is killed and nothing reaches the chain.
    cheap.agent._send = dead  # type: ignore[method-assign,assignment]
    cheap.halt()
    cheap.agent._runners[job_id].cancel.set()
    what, _ = cancel(world.requester, job_id)
    assert what == "cancelled"
    assert market.job(job_id).status == JobStatus.CANCELLED  # type: ignore[union-attr]
    # Paid by the second since its assignment at its 1 AIL an hour (whole seconds of
    # block time), the rest refunded, not slashed, nothing locked.
    (slot,) = market.assignments(job_id)
    assert any(slot["paid"] == sec * AIL // 3600 for sec in range(600)), slot["paid"]
    assert before - world.balance(world.requester) == slot["paid"]
    assert market.job(job_id).escrow == 0  # type: ignore[union-attr]
    assert world.requester.compute_providers.provider(cheap.session.address)["active_jobs"] == 0
    assert world.requester.compute_providers.provider(cheap.session.address)["slashed"] == 0
    world.providers["cheap"] = _start(cheap.session, cheap.agent.sandbox, 1 * AIL, world.jobs_dir)


STATS_JOB = """
    import csv, json, os
    data = os.environ["AILEDGER_INPUTS"]
    (name,) = os.listdir(data)
    rows = list(csv.DictReader(open(os.path.join(data, name))))
    print("a row printed to the log:", rows[0], flush=True)
    with open(os.path.join(os.environ["AILEDGER_OUTPUT"], "stats.json"), "w") as f:
        json.dump({"rows": len(rows), "mean_age": sum(int(r["age"]) for r in rows) / len(rows)}, f)
"""
STATS_OUTPUT = """
[output]
counts = ["stats.json:rows"]
statistics = { "stats.json:mean_age" = "stats.json:rows" }
"""
LEAK_JOB = """
    import os, shutil
    data = os.environ["AILEDGER_INPUTS"]
    (name,) = os.listdir(data)
    shutil.copy(os.path.join(data, name), os.path.join(os.environ["AILEDGER_OUTPUT"], "rows.csv"))
"""


@pytest.fixture(scope="module")
def dataset(world: World) -> bytes:
    source = world.tmp / "cohort.csv"
    source.write_text("age,sex\n" + "".join(f"{30 + i % 40},{'FM'[i % 2]}\n" for i in range(50)))
    with OwnerNode(world.owner) as node:
        published = node.publish(source, Policy(RESEARCH, True, 0, 3600, 0), {"title": "c"}, None)
    grant, _ = request_access(world.requester, published.dataset_id, RESEARCH)
    world.owner.data_market.grant(grant)
    world.owner.compute_policy.set_output_policy(
        published.dataset_id, OutputPolicy(max_output_bytes=4096, aggregate_only=True)
    )
    return published.dataset_id


def test_compute_to_data_runs_at_the_owner_and_releases_only_aggregates(
    world: World, dataset: bytes
) -> None:
    name = "0x" + dataset.hex()
    policy = world.owner.compute_policy
    stats = world.bundle("stats", STATS_JOB, inputs=[name], output=STATS_OUTPUT)
    leak = world.bundle("leak", LEAK_JOB, inputs=[name])
    before = world.balance(world.requester)
    with pytest.raises(AiledgerError, match="algorithm not allowed"):
        world.submit(stats, purpose=RESEARCH)
    assert world.balance(world.requester) == before  # refused before anything was paid
    policy.allow_algorithm(dataset, bundle_hash(stats))
    policy.allow_algorithm(dataset, bundle_hash(leak))
    with pytest.raises(AiledgerError, match="grant"):
        world.submit(stats, purpose=PURPOSES["model-training"])

    job_id = world.submit(stats, purpose=RESEARCH)
    slots = status(world.requester, job_id)["assignments"]
    assert [a["provider"] for a in slots] == [world.owner.address]  # only the owner may host
    out = _reviewed_result(world, job_id)
    assert json.loads((out / "stats.json").read_text()) == {"rows": 50, "mean_age": 46.5}
    # What the job prints passes no output policy: none of it reaches the requester.
    log = "".join(text for _, text in logs(world.requester, job_id))
    assert "held back" in log and "a row printed" not in log and "'age'" not in log

    out = _reviewed_result(world, world.submit(leak, purpose=RESEARCH))
    assert not (out / "rows.csv").exists()
    assert read_exit_record(out)["reason"].startswith("withheld:")

    with OwnerNode(world.owner) as node:
        reads = [node.audit.entry(i) for i in range(node.audit.size)]
    reads = [e for e in reads if e.get("kind") == "compute-read"]
    assert len(reads) == 2 and {e["dataset"] for e in reads} == {name}
    assert {e["job"] for e in reads} == {job_id, job_id + 1}

"""From submitting a job to its process starting, on the embedded chain.

One process holds a fresh embedded chain, a requester with its node (bundle server) and
one provider agent polling the chain every 20 ms (the ``provider start`` default). Each
round submits a small bundle whose first act is to write ``time.time()`` to its output;
the figure is that timestamp minus the moment ``submit()`` was called (same clock, same
machine). It covers: validating and packing the bundle, the escrow approval and posting
transactions, the provider seeing the job, fetching its job.toml, bidding, the requester
closing the auction early on the first bid, the provider seeing its assignment, fetching
and checking the bundle, and the sandbox starting the interpreter.

References in the same run: the sandbox alone (``Sandbox.run`` to the job's first line,
no market), which is the floor; and Ocean Protocol's published compute-to-data figure,
4.8 s from job creation to algorithm start, as the ratio. Not included: starting the
``ailedger`` CLI process and unlocking the keystore (see ``cli_startup.py``).

Last line: ``median_submit_to_start_s: <x>``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

from ailedger.chain.connection import open_embedded
from ailedger.chain.contracts import JobStatus
from ailedger.chain.transactions import fund_from_dev_account
from ailedger.compute.provider.agent import AgentSettings, ProviderAgent
from ailedger.compute.provider.machine import detect_machine
from ailedger.compute.provider.sandbox import Limits, Sandbox, confinement
from ailedger.compute.requester.job import fetch_result, submit
from ailedger.keys.home import NodeHome
from ailedger.node.app import create_app
from ailedger.node.service import BackgroundServer, announce, job_inbox
from ailedger.session import Session
from ailedger.settings import load_settings
from ailedger.sharing.owner import OwnerNode

OCEAN_C2D_START_S = 4.8
PASSPHRASE = "benchmark"
AIL = 10**18
JOB = """\
import json, os, time
started = time.time()
with open(os.path.join(os.environ["AILEDGER_OUTPUT"], "start.json"), "w") as f:
    json.dump({"started": started, "nonce": NONCE}, f)
"""


def bundle(root: Path, nonce: int) -> Path:
    directory = root / f"job-{nonce}"
    directory.mkdir()
    # A nonce makes every bundle (and its hash) new, as real submissions are.
    (directory / "main.py").write_text(JOB.replace("NONCE", str(nonce)))
    (directory / "job.toml").write_text(
        '[job]\nentry = "main.py"\nruntime = "python"\n'
        "[resources]\ncpu_cores = 1\nram_mb = 256\nmax_hours = 1\n"
        '[market]\nmax_price_per_hour = "2"\ndeadline_hours = 1\n'
    )
    return directory


def session(home: NodeHome, connection: object, cache: Path) -> Session:
    settings = load_settings(home=home.path, cache_dir=cache)
    return Session(settings, home, connection, home.unlock_account(PASSPHRASE), PASSPHRASE)  # type: ignore[arg-type]


def sandbox_floor(box: Sandbox, root: Path, rounds: int) -> list[float]:
    """Sandbox.run called -> the job's first line, without any market."""
    limits = Limits(cpu_seconds=60, memory_mb=512, wall_seconds=60)
    out = []
    for i in range(rounds):
        directory = bundle(root, 10_000 + i)
        called = time.time()
        result = box.run(directory, "main.py", "python", limits)
        started = json.loads((result.output_dir / "start.json").read_text())["started"]
        out.append(started - called)
        shutil.rmtree(result.output_dir.parent.parent, ignore_errors=True)
    return out


def market_rounds(root: Path, rounds: int, confined: bool) -> list[float]:
    cache = root / "cache"
    homes = [NodeHome.init(root / n, PASSPHRASE, scrypt_n=2**12) for n in ("req", "prov")]
    jobs_dir = Path(tempfile.mkdtemp(prefix="ailedger-bench-jobs-"))
    jobs_dir.chmod(0o711)
    with open_embedded(homes[0].chain_dir, cache) as connection:
        requester, provider = (session(h, connection, cache) for h in homes)
        for s in (requester, provider):
            fund_from_dev_account(connection.web3, s.address, 10**20)
            s.token.faucet(1_000 * AIL)
        box = Sandbox(allow_unconfined=not confined, base_dir=jobs_dir)
        settings = AgentSettings(1 * AIL, 100 * AIL, max_jobs=1, work_dir=jobs_dir)
        agent = ProviderAgent(provider, box, detect_machine(), settings, lambda line: None)
        agent.prepare()
        stop = threading.Event()
        threading.Thread(target=agent.run, args=(stop,), daemon=True).start()
        market = requester.compute_market
        latencies = []
        with OwnerNode(requester) as node:
            app = create_app(node.gateway(), jobs=job_inbox(requester))
            with BackgroundServer(app) as url:
                announce(requester, url)
                for i in range(rounds + 1):  # round 0 warms caches and connections up
                    directory = bundle(root, i)
                    called = time.time()
                    job = submit(requester, directory, require_confined=confined, wait_s=30)
                    while (record := market.job(job.job_id)) is None or (
                        record.status != JobStatus.REVIEW
                    ):
                        time.sleep(0.02)
                    fetch_result(requester, job.job_id, root / f"out-{i}")
                    started = json.loads((root / f"out-{i}" / "start.json").read_text())
                    if i:
                        latencies.append(started["started"] - called)
                        print(f"  job {job.job_id}: {latencies[-1]:.3f} s", flush=True)
                    market.accept(job.job_id)
        stop.set()
    shutil.rmtree(jobs_dir, ignore_errors=True)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 jobs instead of 20")
    parser.add_argument("--rounds", type=int, default=None)
    args = parser.parse_args()
    rounds = args.rounds or (5 if args.quick else 20)
    confined = confinement() is not None
    with tempfile.TemporaryDirectory(prefix="ailedger-bench-") as tmp:
        root = Path(tmp)
        (root / "floor").mkdir()
        floor_dir = Path(tempfile.mkdtemp(prefix="ailedger-bench-floor-"))
        floor_dir.chmod(0o711)
        floor = sandbox_floor(
            Sandbox(allow_unconfined=not confined, base_dir=floor_dir), root / "floor", rounds
        )
        shutil.rmtree(floor_dir, ignore_errors=True)
        print(f"sandbox alone (confinement: {confinement() or 'none'}), {rounds} runs:")
        print(f"  median {statistics.median(floor):.3f} s, max {max(floor):.3f} s")
        print(f"market, {rounds} jobs (submit -> process start):")
        latencies = market_rounds(root, rounds, confined)
    median = statistics.median(latencies)
    print(
        f"median {median:.3f} s, p90 {statistics.quantiles(latencies, n=10)[-1]:.3f} s, "
        f"max {max(latencies):.3f} s; market overhead over the sandbox alone "
        f"{median - statistics.median(floor):.3f} s"
    )
    print(
        f"ratio to Ocean compute-to-data's published {OCEAN_C2D_START_S} s: "
        f"{OCEAN_C2D_START_S / median:.1f}x faster"
    )
    print(f"median_submit_to_start_s: {median:.3f}")


if __name__ == "__main__":
    main()

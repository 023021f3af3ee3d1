"""Each role's main page of the web app, in a home with 1,000 datasets and 10,000 audit
entries: p95 server time.

One process holds a fresh embedded chain and a hospital's home: 1,000 datasets
published through ``OwnerNode.publish`` (encrypted, registered on chain, indexed in the
catalog), 10,000 audit entries in the shapes the gateway writes (reads served and
refused, by several requesters, over the datasets), anchored. The node is served as
``ailedger node start`` serves it, over loopback HTTP, and a client signed in with the
home's account (``ailedger.web.client.sign_in``) opens each role's page, and the
fragments the page loads as it opens (``hx-trigger="load"``), ``--rounds`` times. The
time is the request's wall time on loopback: the server's time plus the HTTP round trip.

Reference, in the same run: the same server answering its static stylesheet (the same
HTTP stack, guard and session lookup, no page), the floor every page stands on.

Last line: ``p95_page_ms: <x>``, the slowest role's p95 (goal: at most 200 ms).
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from ailedger.chain.connection import open_embedded
from ailedger.chain.contracts.data_market import PURPOSES, Policy
from ailedger.chain.transactions import fund_from_dev_account
from ailedger.keys.home import NodeHome
from ailedger.node.service import BackgroundServer, announce, node_app
from ailedger.session import Session
from ailedger.settings import load_settings
from ailedger.sharing.catalog import Catalog
from ailedger.sharing.owner import OwnerNode
from ailedger.web.client import sign_in

PASSPHRASE = "benchmark"
PAGES = ("/", "/owner", "/research", "/research/jobs", "/provider", "/clinic", "/audit")
REFERENCE = "/static/app.css"
LOADED = re.compile(r'hx-get="([^"]+)"[^>]*hx-trigger="[^"]*\bload\b')
GOAL_MS = 200.0


def seed(node: OwnerNode, root: Path, datasets: int, entries: int) -> list[str]:
    """``datasets`` published datasets and ``entries`` audit entries about them."""
    source = root / "cohort.csv"
    source.write_text("id,age\n1,40\n2,51\n")
    policy = Policy(PURPOSES["rare-disease-research"], True, 10**18, 30 * 86400, 0)
    ids = []
    started = time.monotonic()
    for i in range(datasets):
        title = f"Cohort {i:04d}"
        tags = ["rare-disease", f"site-{i % 17}"]
        published = node.publish(source, policy, {"title": title, "tags": tags}, None)
        ids.append("0x" + published.dataset_id.hex())
        if (i + 1) % 100 == 0:
            rate = (i + 1) / (time.monotonic() - started)
            print(f"  published {i + 1}/{datasets} datasets ({rate:.0f}/s)", flush=True)
    rng = random.Random(7)
    requesters = ["0x" + f"{n:040x}" for n in range(1, 40)]
    now = int(time.time())
    for i in range(entries):
        dataset = rng.choice(ids)
        served = rng.random() < 0.9
        node.audit.append(
            {
                "kind": "read",
                "outcome": "served" if served else "refused",
                "time": now - (entries - i) * 30,
                "dataset": dataset,
                "grant": rng.randrange(1, 2_000),
                "requester": rng.choice(requesters),
                "purpose": PURPOSES["rare-disease-research"],
                **({} if served else {"reason": "the grant has expired"}),
            }
        )
    node.audit.checkpoint_now()
    node.anchor()
    print(f"  {entries} audit entries appended and anchored", flush=True)
    return ids


def view(api: httpx.Client, path: str) -> float:
    """Seconds to open ``path`` and the fragments it loads as it opens."""
    started = time.perf_counter()
    answer = api.get(path)
    answer.raise_for_status()
    for fragment in LOADED.findall(answer.text):
        api.get(fragment).raise_for_status()
    return time.perf_counter() - started


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 datasets, 1,000 entries")
    parser.add_argument("--rounds", type=int, default=40, help="views of each page")
    args = parser.parse_args()
    datasets, entries = (100, 1_000) if args.quick else (1_000, 10_000)
    root = Path(tempfile.mkdtemp(prefix="ailedger-bench-web-"))
    cache = root / "cache"
    home = NodeHome.init(root / "hospital", PASSPHRASE, scrypt_n=2**12)
    with open_embedded(home.chain_dir, cache) as connection:
        settings = load_settings(home=home.path, cache_dir=cache)
        session = Session(settings, home, connection, home.unlock_account(PASSPHRASE), PASSPHRASE)
        fund_from_dev_account(connection.web3, session.address, 10**21)
        with OwnerNode(session) as node:
            print(f"seeding a home with {datasets} datasets and {entries} audit entries")
            seed(node, root, datasets, entries)
            with BackgroundServer(node_app(session, node)) as url:
                announce(session, url)  # as `node start` does: its metadata is served
                Catalog(session.database).sync(session)
                assert session.account is not None
                with sign_in(url, session.account) as api:
                    for path in (*PAGES, REFERENCE):  # warm caches and connections up
                        view(api, path)
                    times = {p: [view(api, p) for _ in range(args.rounds)] for p in PAGES}
                    floor = [view(api, REFERENCE) for _ in range(args.rounds)]
    reference = p95(floor) * 1000
    print(f"\n{'page':<16}{'median ms':>10}{'p95 ms':>10}{'x static':>10}")
    for path, values in times.items():
        ms = p95(values) * 1000
        median = statistics.median(values) * 1000
        print(f"{path:<16}{median:>10.1f}{ms:>10.1f}{ms / reference:>10.1f}")
    print(f"{REFERENCE:<16}{statistics.median(floor) * 1000:>10.1f}{reference:>10.1f}{1:>10.1f}")
    worst = max(p95(v) for v in times.values()) * 1000
    verdict = "within" if worst <= GOAL_MS else "over"
    print(f"slowest page p95 {worst:.1f} ms: {verdict} the {GOAL_MS:.0f} ms goal")
    print(f"p95_page_ms: {worst:.1f}")


if __name__ == "__main__":
    main()

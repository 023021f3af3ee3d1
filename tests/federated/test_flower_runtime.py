"""Flower's deployment engine end to end: a SuperLink, SuperNodes and the thin Flower app, driven
by stub ailedger daemons (tiny HTTP servers in this process) that speak the loopback protocol of
``ailedger.federated``: a coordinator doing plain FedAvg, and one desk per institution that
trains on a third of scikit-learn's breast-cancer table (the ClientApp only relays)."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest
from eth_account import Account
from sklearn.datasets import load_breast_cancer

from ailedger.errors import ConfigError
from ailedger.federated.flower import (
    FlowerError,
    SuperLink,
    SuperNode,
    flower_venv,
    start_superlink,
    start_supernode,
    start_supernodes,
    stop_all,
    submit_run,
    wait_run,
)
from ailedger.federated.logistic import train_local
from ailedger.federated.secagg import KeyVouching, SecAggParty
from ailedger.federated.task import read_table, task_from_json

pytestmark = [pytest.mark.integration, pytest.mark.slow]
TOKEN = "coordinator-secret"
JOBS_CONTRACT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"  # named in signed statements


@pytest.fixture(scope="module", autouse=True)
def _flower_installed() -> None:
    try:
        flower_venv()
    except FlowerError as err:
        if os.environ.get("CI"):
            raise  # CI must run these: scripts/test.sh installs Flower's venv first
        pytest.skip(f"{err} (these tests always run in CI)")


@dataclass
class Data:
    x: np.ndarray  # scaled to [-1, 1], as the ClientApp scales
    y: np.ndarray
    task: dict[str, Any]
    parts: list[Path]

    def accuracy(self, weights: list[float]) -> float:
        w = np.asarray(weights)
        return float((((self.x @ w[:-1] + w[-1]) > 0) == self.y).mean())


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Data:
    table = load_breast_cancer()
    names = [str(n) for n in table.feature_names]
    lower, upper = table.data.min(axis=0), table.data.max(axis=0)
    folder = tmp_path_factory.mktemp("tables")
    parts = []
    for k in range(3):
        path = folder / f"part{k}.csv"
        with path.open("w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow([*names, "diagnosis"])
            for row, label in zip(table.data[k::3], table.target[k::3], strict=True):
                writer.writerow([*row, "benign" if label else "malignant"])
        parts.append(path)
    task = {
        "features": names,
        "label": "diagnosis",
        "positive": "benign",
        "lower": lower.tolist(),
        "upper": upper.tolist(),
        "local_epochs": 5,
        "learning_rate": 0.5,
        "batch_size": 32,
    }
    scaled = np.clip(2 * (table.data - lower) / (upper - lower) - 1, -1, 1)
    return Data(scaled, table.target.astype(float), task, parts)


class _Handler(BaseHTTPRequestHandler):
    """Routes to the owning daemon's ``answer(method, path, query, body)``."""

    def _serve(self, method: str) -> None:
        daemon: Daemon = self.server.daemon  # type: ignore[attr-defined]
        if self.headers.get("Authorization") != f"Bearer {daemon.token}":
            self._reply(401, {"detail": "wrong bearer token"})
            return
        url = urlparse(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else {}
        answer = daemon.answer(method, url.path, parse_qs(url.query), body)
        if answer is not None:
            self._reply(200, answer)

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        raw = json.dumps(body).encode()
        with suppress(BrokenPipeError, ConnectionResetError):  # the asker may have been killed
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def log_message(self, *args: object) -> None:
        pass


class Daemon:
    """A stub ailedger daemon on a free loopback port."""

    token = ""

    def __init__(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon = self  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(
        self, method: str, path: str, query: dict[str, list[str]], body: dict[str, Any]
    ) -> dict[str, Any] | None:
        raise NotImplementedError

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Coordinator(Daemon):
    """Plain FedAvg from zero weights; records every request."""

    token = TOKEN

    def __init__(self, size: int) -> None:
        super().__init__()
        self.weights = [0.0] * size
        self.starts: list[dict[str, Any]] = []
        self.results: list[dict[str, Any]] = []
        self.history: list[list[float]] = [list(self.weights)]
        self.done: list[dict[str, Any]] = []

    def answer(
        self, method: str, path: str, query: dict[str, list[str]], body: dict[str, Any]
    ) -> dict[str, Any]:
        if path == "/fl/round/start":
            self.starts.append(body)
            selected = [node["node_id"] for node in body["nodes"]]
            return {"continue": True, "selected": selected, "weights": self.weights}
        if path == "/fl/round/result":
            self.results.append(body)
            if "aggregate" in body:  # secure aggregation: the sum is all there is
                self.weights = body["aggregate"] or self.weights
                self.history.append(list(self.weights))
                return {"weights": self.weights, "continue": True}
            updates = body["updates"]
            if updates:
                total = sum(u["num_examples"] for u in updates)
                mean = sum(np.asarray(u["weights"]) * u["num_examples"] for u in updates) / total
                self.weights = [float(w) for w in mean]
            self.history.append(list(self.weights))
            return {"weights": self.weights, "continue": True}
        self.done.append(body)
        return {}


@dataclass
class Institution(Daemon):
    """One institution's desk: trains on its table, unless told to refuse a round; ``on_ask``
    runs first (the test's way to crash the SuperNode mid-round)."""

    name: str
    table: Path
    refuse: set[int] = field(default_factory=set)
    on_ask: Callable[[int], None] | None = None
    asked: list[int] = field(default_factory=list)
    sent: list[list[float]] = field(default_factory=list)  # updates it masked
    members: list[str] = field(default_factory=list)  # the job's members, as on chain
    refusals: list[str] = field(default_factory=list)  # SecAgg+ steps it refused

    def __post_init__(self) -> None:
        self.token = f"consent-{self.name}"
        self.account = Account.from_key(hashlib.sha256(self.name.encode()).digest())
        self.party = SecAggParty(
            KeyVouching(JOBS_CONTRACT, 7, self.account, lambda: list(self.members))
        )
        super().__init__()

    def _train(self, body: dict[str, Any]) -> tuple[list[float], int]:
        task = task_from_json(body["task"])
        x, y = read_table(task, self.table)
        trained = train_local(body["weights"], x, y, epochs=5, lr=0.5, batch=32)
        return [float(w) for w in trained], len(y)

    def _secagg(self, body: dict[str, Any]) -> dict[str, Any]:
        """What the real desk does (:meth:`InstitutionDesk.secagg`), minus the chain."""
        node, r, signatures = body["node_id"], body["round"], body["signatures"]
        try:
            step = self.party.step(node, r, body["configs"], signatures)
        except ConfigError as refused:
            self.refusals.append(str(refused))
            return {"ok": False, "reason": str(refused)}
        if not step.get("needs_update"):
            return {"ok": True, **step}
        self.asked.append(body["round"])
        if body["round"] in self.refuse:
            return {"ok": False, "reason": "grant revoked"}
        weights, rows = self._train(body)
        self.sent.append(weights)
        step = self.party.step(node, r, body["configs"], signatures, weights, rows)
        return {"ok": True, **step, "num_examples": rows}

    def answer(
        self, method: str, path: str, query: dict[str, list[str]], body: dict[str, Any]
    ) -> dict[str, Any] | None:
        if path == "/fl/secagg":
            return self._secagg(body)
        assert (method, path) == ("POST", "/fl/train")
        r = body["round"]
        self.asked.append(r)
        if self.on_ask is not None:
            self.on_ask(r)
        if r in self.refuse:
            return {"ok": False, "reason": "grant revoked"}
        weights, rows = self._train(body)
        return {"ok": True, "weights": weights, "num_examples": rows}

    def node_config(self) -> dict[str, str]:
        return {
            "institution": f"0x{self.name}",
            "dataset": f"0xdata-{self.name}",
            "consent-url": self.url,
            "consent-token": self.token,
        }


@dataclass
class Federation:
    superlink: SuperLink
    nodes: list[SuperNode]
    institutions: list[Institution]
    workdir: Path


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory, data: Data) -> Iterator[Federation]:
    workdir = tmp_path_factory.mktemp("flower")
    institutions = [Institution(name, part) for name, part in zip("abc", data.parts, strict=True)]
    for institution in institutions:  # a, b and c joined the job
        institution.members = [i.account.address for i in institutions]
    superlink = start_superlink(workdir)
    nodes: list[SuperNode] = []
    try:
        configs = [institution.node_config() for institution in institutions]
        nodes = start_supernodes(superlink.address, configs, workdir)
        yield Federation(superlink, nodes, institutions, workdir)
    finally:
        stop_all([*nodes, superlink])
        for daemon in institutions:
            daemon.close()
    left = [pid for proc in [*nodes, superlink] for pid in proc.pids()]
    assert left == [], f"Flower processes outlived the federation: {left}"


def _run(fed: Federation, coordinator: Coordinator, data: Data, **config: Any) -> Any:
    run_config = {
        "coordinator-url": coordinator.url,
        "coordinator-token": TOKEN,
        "job": 7,
        "rounds": 2,
        "round-timeout": 60.0,
        "min-nodes": len(fed.nodes),
        "task": json.dumps(data.task),
        **config,
    }
    status = wait_run(fed.superlink, submit_run(fed.superlink, run_config), timeout=300)
    assert status.ok, f"run ended {status.status}: {status.details}\n{status.logs[-3000:]}"
    return status


def _by_institution(entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {entry["institution"]: entry for entry in entries}


def test_three_institutions_train_two_rounds(federation: Federation, data: Data) -> None:
    for institution in federation.institutions:
        institution.asked.clear()
    coordinator = Coordinator(len(data.task["features"]) + 1)
    try:
        _run(federation, coordinator, data)
    finally:
        coordinator.close()

    nodes = coordinator.starts[0]["nodes"]
    assert {(n["institution"], n["dataset"]) for n in nodes} == {
        ("0xa", "0xdata-a"),
        ("0xb", "0xdata-b"),
        ("0xc", "0xdata-c"),
    }
    assert [result["round"] for result in coordinator.results] == [1, 2]
    for result in coordinator.results:
        assert result["failed"] == []
        assert set(_by_institution(result["updates"])) == {"0xa", "0xb", "0xc"}
        assert sum(u["num_examples"] for u in result["updates"]) == len(data.y)
    assert coordinator.done == [{"rounds_run": 2}]
    assert [institution.asked for institution in federation.institutions] == [[1, 2]] * 3
    before, after = data.accuracy(coordinator.history[0]), data.accuracy(coordinator.weights)
    assert before < 0.85 < after, (before, after)


def test_refused_and_crashed_nodes_fail_and_the_round_goes_on(
    federation: Federation, data: Data
) -> None:
    """In round 2 institution b refuses consent and institution d's SuperNode dies while the
    round is in flight (its daemon kills it when asked); a and c still train and the run ends."""
    victim_daemon = Institution("d", data.parts[0])
    fed = federation
    with ThreadPoolExecutor(1) as pool:  # the 4th SuperNode starts while the run is submitted
        starting = pool.submit(
            start_supernode, fed.superlink.address, victim_daemon.node_config(), fed.workdir
        )

        def crash(r: int) -> None:
            if r == 2:
                starting.result().kill()

        victim_daemon.on_ask = crash
        fed.institutions[1].refuse = {2}
        coordinator = Coordinator(len(data.task["features"]) + 1)
        try:
            _run(fed, coordinator, data, **{"min-nodes": 4, "round-timeout": 20.0})
        finally:
            coordinator.close()
            fed.institutions[1].refuse = set()
            victim = starting.result()
            victim.stop()
            victim_daemon.close()

    assert victim.pids() == []
    first, second = (_by_institution(r["updates"]) for r in coordinator.results)
    assert set(first) == {"0xa", "0xb", "0xc", "0xd"}
    assert set(second) == {"0xa", "0xc"}
    failed = _by_institution(coordinator.results[1]["failed"])
    assert set(failed) == {"0xb", "0xd"}
    assert "consent refused: grant revoked" in failed["0xb"]["reason"]
    # Missed the deadline, or Flower expired the message a moment before it (its TTL is the
    # round timeout): either way a timeout, not a refusal.
    assert re.search("round timeout|expired", failed["0xd"]["reason"]), failed["0xd"]
    assert coordinator.done == [{"rounds_run": 2}]


def test_secure_aggregation_hides_each_update_and_survives_a_drop_out(
    federation: Federation, data: Data
) -> None:
    """Under SecAgg+ the coordinator gets the weighted average of the survivors' updates
    and who survived, no update of anyone's; in round 2 b drops out after the keys were
    shared (it refuses to send its masked update) and the others' sum is still recovered."""
    fed = federation
    for institution in fed.institutions:
        institution.asked.clear()
        institution.sent.clear()
    fed.institutions[1].refuse = {2}
    coordinator = Coordinator(len(data.task["features"]) + 1)
    secure = {**data.task, "secure_aggregation": True}
    try:
        _run(fed, coordinator, data, task=json.dumps(secure), **{"round-timeout": 30.0})
    finally:
        coordinator.close()
        fed.institutions[1].refuse = set()

    assert all("updates" not in result for result in coordinator.results)
    first, second = coordinator.results
    assert {s["institution"] for s in first["survivors"]} == {"0xa", "0xb", "0xc"}
    assert {s["institution"] for s in second["survivors"]} == {"0xa", "0xc"}
    assert [f["institution"] for f in second["failed"]] == ["0xb"]
    for result in coordinator.results:
        r = result["round"]
        sent = {i.name: i.sent[r - 1] for i in fed.institutions if len(i.sent) >= r}
        rows = {s["institution"][2:]: s["num_examples"] for s in result["survivors"]}
        mean = sum(np.asarray(sent[n]) * k for n, k in rows.items()) / sum(rows.values())
        assert np.allclose(result["aggregate"], mean, atol=1e-3)  # SecAgg+ quantizes
        assert not any(np.allclose(result["aggregate"], sent[n], atol=1e-3) for n in rows)
    assert data.accuracy(coordinator.weights) > 0.85


def test_secure_aggregation_gives_no_share_to_a_node_no_member_vouches_for(
    federation: Federation, data: Data
) -> None:
    """Sybil: c's SuperNode and desk are the requester's own (its key is no member's). a
    and b refuse at key sharing, before any share of their secrets or any update leaves;
    the round has no sum and no one trained."""
    fed = federation
    a, b, c = fed.institutions
    for institution in fed.institutions:
        institution.asked.clear()
        institution.refusals.clear()
    honest_party, requester = c.party, Account.from_key(b"\x66" * 32)
    c.party = SecAggParty(KeyVouching(JOBS_CONTRACT, 7, requester, lambda: list(c.members)))
    coordinator = Coordinator(len(data.task["features"]) + 1)
    secure = {**data.task, "secure_aggregation": True}
    try:
        _run(fed, coordinator, data, task=json.dumps(secure), rounds=1)
    finally:
        coordinator.close()
        c.party = honest_party

    (result,) = coordinator.results
    assert result["aggregate"] is None and result["survivors"] == []
    outsider = requester.address.lower()
    for honest in (a, b):
        (refusal,) = honest.refusals
        assert f"vouched for by {outsider}, not a member of job 7" in refusal
        assert honest.asked == []  # nothing trained, nothing read

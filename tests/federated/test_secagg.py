"""Secure aggregation (Flower's SecAgg+) with the protocol's client side at ailedger's
desk: the server learns the weighted average of the survivors and who survived, never an
update, and a participant that drops after the keys were shared does not stop the sum.

``secagg_harness.py`` runs in Flower's venv: the ServerApp's ``secure_round`` (Flower's
SecAggPlusWorkflow) against three institutions stepping ``secagg_worker`` exactly as the
desk does, over an in-memory grid that keeps every reply the server got. The same round
over Flower's real deployment engine is in ``test_flower_runtime.py``.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ailedger.federated.flower import FlowerError, flower_venv

pytestmark = pytest.mark.integration
HARNESS = Path(__file__).with_name("secagg_harness.py")


def _harness(*args: str) -> dict[str, Any]:
    try:
        python = flower_venv() / "bin" / "python"
    except FlowerError as err:
        pytest.skip(str(err))
    done = subprocess.run(
        [str(python), "-I", str(HARNESS), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    last = done.stdout.strip().splitlines()[-1]
    report: dict[str, Any] = json.loads(last[last.index("{") :])  # after Flower's log lines
    return report


def _mean(report: dict[str, Any], nodes: list[str]) -> Any:
    rows = report["rows"]
    total = sum(rows[n] for n in nodes)
    return sum(np.asarray(report["updates"][n]) * rows[n] for n in nodes) / total


def test_the_server_gets_the_weighted_average_and_no_update() -> None:
    report = _harness()
    assert [s["node_id"] for s in report["survivors"]] == [1, 2, 3]
    assert np.allclose(report["aggregate"], _mean(report, ["1", "2", "3"]), atol=1e-3)
    assert report["plain_update_seen"] is False  # in no reply the server received


def test_each_node_is_shown_its_neighbours_keys_with_the_signatures_vouching_for_them() -> None:
    """What the desk signs at setup is the node's own new keys; what it checks at key
    sharing is each neighbour's keys as the server relays them, with the signature each
    neighbour's desk gave at setup, carried by the ServerApp (``_VouchedKeys``)."""
    report = _harness()
    keys = report["own_keys"]
    assert all(len(k) == 2 and len(set(k)) == 2 for k in keys.values())
    for node in ("1", "2", "3"):
        assert report["neighbours"][node] == keys
        assert report["vouched"][node] == {n: f"by-{n}" for n in ("1", "2", "3")}


def test_a_node_dropping_after_the_keys_were_shared_leaves_the_others_sum() -> None:
    report = _harness("drop")
    assert [s["node_id"] for s in report["survivors"]] == [1, 2]
    assert np.allclose(report["aggregate"], _mean(report, ["1", "2"]), atol=1e-3)
    assert report["plain_update_seen"] is False


def test_a_round_set_up_among_two_is_refused_by_the_institutions() -> None:
    """With two, each would learn the other's update from the sum; a server that set up
    a round of one or two to read an update gets nothing."""
    report = _harness("pair")
    assert report["aggregate"] is None and report["survivors"] == []
    assert report["refusals"] == ["a round among 2 nodes (2 shares) hides no update"] * 2


def test_a_dishonest_server_gets_refusals_not_shares() -> None:
    """Flower's client code leaves these checks to the server's honesty; the desk makes
    them: a round whose keys one share recovers, other protocol parameters (a wider clip
    that would let a crafted vector through), and unmasking that names a node both alive
    and dropped (both its mask seed and its key shares: its update, unmasked)."""
    assert _harness("attacks")["refusals"] == [
        "a round among 3 nodes (1 shares) hides no update",
        "clipping_range must be 16.0, not 1000000000.0",
        "a node both alive and dropped, or this one dropped: no shares",
    ]

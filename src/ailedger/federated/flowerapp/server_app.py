"""ServerApp: carries the rounds; the coordinator daemon (ailedger's process) decides everything.

Runs in Flower's virtualenv, so it may import only the standard library, numpy and flwr. The
loop and its HTTP protocol are in ``ailedger.federated.flower``'s docstring: query the nodes,
then per round ask the coordinator which nodes train from which weights, send them, collect
what comes back within ``round-timeout`` seconds and hand it all to the coordinator, which
aggregates.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MessageType, RecordDict
from flwr.serverapp import Grid, ServerApp

log = logging.getLogger("flwr")  # Flower's handlers put it in the run's log (`flwr log`)
app = ServerApp()


class CoordinatorRefused(RuntimeError):
    """The coordinator answered non-200: the run stops with its answer in the log."""


def _post(context: Context, path: str, body: dict[str, Any]) -> dict[str, Any]:
    cfg = context.run_config
    request = urllib.request.Request(
        str(cfg["coordinator-url"]).rstrip("/") + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {cfg['coordinator-token']}",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as answer:
            result: dict[str, Any] = json.loads(answer.read())
            return result
    except urllib.error.HTTPError as err:
        text = err.read().decode(errors="replace")
        raise CoordinatorRefused(f"POST {path} answered {err.code}: {text}") from None


def _wait_for_nodes(grid: Grid, wanted: int, timeout: float) -> list[int]:
    """Node ids once ``wanted`` SuperNodes are connected (or whoever is there at ``timeout``):
    a run may be submitted while the institutions' SuperNodes are still registering."""
    deadline = time.monotonic() + timeout
    while True:
        ids = sorted(grid.get_node_ids())
        if len(ids) >= wanted or time.monotonic() > deadline:
            return ids
        time.sleep(0.2)


def _exchange(grid: Grid, messages: list[Message], timeout: float) -> list[Message]:
    """Push ``messages`` and collect the replies that come within ``timeout`` seconds. Not
    ``Grid.send_and_receive``: it looks for replies only every 3 s, a round's worth of idling."""
    if not messages:  # the coordinator may select no one this round
        return []
    pending = set(grid.push_messages(messages))
    replies: list[Message] = []
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        got = list(grid.pull_messages(pending))
        replies += got
        pending -= {reply.metadata.reply_to_message_id for reply in got}
        if pending:
            time.sleep(0.2)
    return replies


def _query_nodes(grid: Grid, node_ids: list[int], timeout: float) -> list[dict[str, Any]]:
    asks = [
        Message(RecordDict({"query": ConfigRecord()}), node_id, MessageType.QUERY, ttl=timeout)
        for node_id in node_ids
    ]
    nodes = []
    for reply in _exchange(grid, asks, timeout):
        if reply.has_error():
            log.warning(
                "node %s did not answer the query: %s", reply.metadata.src_node_id, reply.error
            )
            continue
        about = reply.content.config_records["node"]
        nodes.append(
            {
                "node_id": reply.metadata.src_node_id,
                "institution": str(about["institution"]),
                "dataset": str(about["dataset"]),
            }
        )
    return sorted(nodes, key=lambda node: int(node["node_id"]))


def _train_round(
    grid: Grid, r: int, chosen: list[dict[str, Any]], weights: list[float], timeout: float
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(updates, failed): a node that answers with an error or not at all within ``timeout``
    is failed, and the round goes on with the others."""
    model = np.asarray(weights, dtype=np.float64)
    orders = [
        Message(
            RecordDict({"model": ArrayRecord([model]), "config": ConfigRecord({"round": r})}),
            int(node["node_id"]),
            MessageType.TRAIN,
            ttl=timeout,
            group_id=str(r),
        )
        for node in chosen
    ]
    by_id = {int(node["node_id"]): node for node in chosen}
    updates, failed = [], []
    for reply in _exchange(grid, orders, timeout):
        node = by_id.pop(reply.metadata.src_node_id, None)
        if node is None:
            continue
        if reply.has_error():
            failed.append({**_ident(node), "reason": reply.error.reason or "error"})
            continue
        try:
            updates.append({**_ident(node), **_update(reply)})
        except (KeyError, IndexError, TypeError, ValueError) as err:
            # A SuperNode's operator controls what it sends: a bad reply fails that node only.
            failed.append({**_ident(node), "reason": f"malformed reply: {err!r}"})
    reason = f"no answer within the round timeout ({timeout:g} s)"
    failed += [{**_ident(node), "reason": reason} for node in by_id.values()]
    return updates, failed


def _update(reply: Message) -> dict[str, Any]:
    trained = reply.content.array_records["model"].to_numpy_ndarrays()[0]
    count = reply.content.config_records["result"]["num-examples"]
    if not isinstance(count, int):
        raise TypeError(f"num-examples is {count!r}, not an int")
    return {"weights": [float(w) for w in trained.ravel()], "num_examples": count}


def _ident(node: dict[str, Any]) -> dict[str, Any]:
    return {"node_id": node["node_id"], "institution": node["institution"]}


@app.main()
def main(grid: Grid, context: Context) -> None:
    cfg = context.run_config
    timeout = float(cfg["round-timeout"])
    node_ids = _wait_for_nodes(grid, int(cfg["min-nodes"]), timeout)
    nodes = _query_nodes(grid, node_ids, timeout)
    log.info("job %s: %d nodes answered the query", cfg["job"], len(nodes))
    rounds_run = 0
    for r in range(1, int(cfg["rounds"]) + 1):
        start = _post(context, "/fl/round/start", {"round": r, "nodes": nodes})
        if not start.get("continue"):
            log.info("coordinator stopped before round %d: %s", r, start.get("reason", ""))
            break
        selected = {int(node_id) for node_id in start["selected"]}
        chosen = [node for node in nodes if int(node["node_id"]) in selected]
        updates, failed = _train_round(grid, r, chosen, start["weights"], timeout)
        log.info("round %d: %d updates, %d failed", r, len(updates), len(failed))
        result = _post(
            context, "/fl/round/result", {"round": r, "updates": updates, "failed": failed}
        )
        rounds_run = r
        if not result.get("continue"):
            break
    _post(context, "/fl/done", {"rounds_run": rounds_run})

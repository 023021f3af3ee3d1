"""ServerApp of the plain reference: FedAvg of a logistic regression, nothing else.

It moves messages the way ailedger's ServerApp does (``push_messages``, then
``pull_messages`` every 0.2 s, not ``Grid.send_and_receive``, which looks only every 3 s),
so that the two runs differ by what ailedger adds, not by how replies are collected. Every
connected node trains every round from zero weights on; the new model is their FedAvg.
When a round's model is ready it notes ``time.time()``; at the end it writes those times
and the final weights as JSON to the run config's ``record`` path for fl_rounds.py.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MessageType, RecordDict
from flwr.serverapp import Grid, ServerApp
from plain_logistic import fedavg

app = ServerApp()


def _wait_for_nodes(grid: Grid, wanted: int, timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while True:
        ids = sorted(grid.get_node_ids())
        if len(ids) >= wanted or time.monotonic() > deadline:
            return ids
        time.sleep(0.2)


def _exchange(grid: Grid, messages: list[Message], timeout: float) -> list[Message]:
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


def _train_round(
    grid: Grid, round_no: int, node_ids: list[int], weights: np.ndarray, timeout: float
) -> np.ndarray:
    orders = [
        Message(
            RecordDict(
                {"model": ArrayRecord([weights]), "config": ConfigRecord({"round": round_no})}
            ),
            node_id,
            MessageType.TRAIN,
            ttl=timeout,
            group_id=str(round_no),
        )
        for node_id in node_ids
    ]
    replies = _exchange(grid, orders, timeout)
    failed = [reply for reply in replies if reply.has_error()]
    if failed or len(replies) != len(node_ids):
        # A reference that lost a node did less work than ailedger's run: not comparable.
        why = "; ".join(str(reply.error.reason) for reply in failed) or "a node did not answer"
        answered = len(replies) - len(failed)
        raise RuntimeError(f"round {round_no}: {answered} of {len(node_ids)} updates ({why})")
    updates = [reply.content.array_records["model"].to_numpy_ndarrays()[0] for reply in replies]
    examples = [int(reply.content.config_records["result"]["num-examples"]) for reply in replies]
    return fedavg(updates, examples)


@app.main()
def main(grid: Grid, context: Context) -> None:
    cfg = context.run_config
    timeout = float(cfg["round-timeout"])
    task = json.loads(str(cfg["task"]))
    node_ids = _wait_for_nodes(grid, int(cfg["min-nodes"]), timeout)
    weights = np.zeros(len(task["features"]) + 1)
    ready: list[float] = []
    for round_no in range(1, int(cfg["rounds"]) + 1):
        weights = _train_round(grid, round_no, node_ids, weights, timeout)
        ready.append(time.time())
    record = {"round_ready": ready, "weights": [float(w) for w in weights], "nodes": node_ids}
    Path(str(cfg["record"])).write_text(json.dumps(record))

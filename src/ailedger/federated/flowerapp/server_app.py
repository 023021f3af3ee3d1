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
import math
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


# SecAgg+ parameters. Updates are weights of a model on inputs scaled to [-1, 1]: clipped
# to +-16 and quantized on 2**26 levels (a step of 5e-7); each update is weighted by its row
# count up to 50,000 (more counts as 50,000). 64 institutions sum without overflowing 2**32.
SECAGG_CLIP = 16.0
SECAGG_LEVELS = 2**26
SECAGG_MAX_WEIGHT = 50_000.0


class _Chosen:
    """The strategy SecAgg+ runs one round with: the coordinator chose the nodes; the
    aggregate (all the server ever sees) and the survivors are kept for it."""

    def __init__(self, grid: Grid, run_id: int, node_ids: list[int], r: int) -> None:
        self.grid, self.run_id, self.node_ids, self.round = grid, run_id, node_ids, r
        self.aggregate: list[float] | None = None
        self.survivors: list[dict[str, Any]] = []
        self.failures: list[str] = []

    def initialize_parameters(self, client_manager: Any) -> None:
        return None

    def configure_fit(self, server_round: int, parameters: Any, client_manager: Any) -> Any:
        from flwr.common import FitIns
        from flwr.server.compat.grid_client_proxy import GridClientProxy

        return [
            (
                GridClientProxy(nid, self.grid, self.run_id),
                FitIns(parameters, {"round": self.round}),
            )
            for nid in self.node_ids
        ]

    def aggregate_fit(self, server_round: int, results: Any, failures: Any) -> Any:
        from flwr.common import parameters_to_ndarrays

        self.failures = [str(f) for f in failures]
        for proxy, fitres in results:
            self.survivors.append(
                {"node_id": int(proxy.node_id), "num_examples": int(fitres.num_examples)}
            )
        if not results:
            return None, {}
        parameters = results[0][1].parameters  # every result carries the one aggregate
        self.aggregate = [float(w) for w in parameters_to_ndarrays(parameters)[0].ravel()]
        return parameters, {}

    def configure_evaluate(self, server_round: int, parameters: Any, client_manager: Any) -> Any:
        return []

    def aggregate_evaluate(self, server_round: int, results: Any, failures: Any) -> Any:
        return None, {}

    def evaluate(self, server_round: int, parameters: Any) -> Any:
        return None


def full_entropy_masks(
    seed: bytes, num_range: int, dimensions_list: list[tuple[int, ...]]
) -> list[Any]:
    """The masks the institutions' desks make (their worker has the same function): from
    all of a seed's bits, where Flower's generator folds a seed into 32 bits."""
    gen = np.random.Generator(np.random.PCG64(np.random.SeedSequence(int.from_bytes(seed, "big"))))
    return [np.asarray(gen.integers(0, num_range, size=d, dtype=np.int64)) for d in dimensions_list]


SECAGG_CONFIGS = "secaggplus_configs"  # Flower's record key for SecAgg+ messages
KEYS_SIGNATURES = "ailedger_keys"  # a node's signed keys, beside it (client_app.py)


class _VouchedKeys:
    """The grid a SecAgg+ round runs on, carrying each node's signature of its public keys
    from its setup reply to the key-sharing messages of its neighbours: an institution's
    desk gives shares of its secrets only to nodes a member of the job vouches for."""

    def __init__(self, grid: Grid) -> None:
        self.grid = grid
        self.signatures: dict[str, str] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.grid, name)

    def send_and_receive(self, messages: Any, *, timeout: float | None = None) -> Any:
        messages = list(messages)
        for msg in messages:
            configs = msg.content.config_records.get(SECAGG_CONFIGS)
            if configs is not None and configs.get("stage") == "share_keys":
                msg.content.config_records[KEYS_SIGNATURES] = ConfigRecord(
                    {n: self.signatures[n] for n in configs if n in self.signatures}
                )
        # Our own exchange, not the grid's: Flower's looks for replies only every 3 s,
        # which every stage of the protocol (setup, keys, masked vectors, unmasking) paid.
        replies = _exchange(self.grid, messages, math.inf if timeout is None else timeout)
        for reply in replies:
            signed = (
                None if reply.has_error() else reply.content.config_records.get(KEYS_SIGNATURES)
            )
            if signed is not None and "signature" in signed:
                self.signatures[str(reply.metadata.src_node_id)] = str(signed["signature"])
        return replies


def secure_round(
    grid: Grid, context: Context, r: int, node_ids: list[int], weights: list[float], timeout: float
) -> _Chosen:
    """One round under Flower's SecAgg+: the server learns the weighted average of the
    survivors' updates and who survived, never an update of its own."""
    from flwr.common import ndarrays_to_parameters
    from flwr.compat.common import recorddict_compat as compat
    from flwr.server import ServerConfig
    from flwr.server.client_manager import SimpleClientManager
    from flwr.server.compat.legacy_context import LegacyContext
    from flwr.server.workflow import SecAggPlusWorkflow
    from flwr.server.workflow.constant import MAIN_CONFIGS_RECORD, MAIN_PARAMS_RECORD
    from flwr.server.workflow.constant import Key as WorkflowKey
    from flwr.server.workflow.secure_aggregation import secaggplus_workflow

    secaggplus_workflow.pseudo_rand_gen = full_entropy_masks  # as the desks mask
    strategy = _Chosen(grid, context.run_id, node_ids, r)
    legacy = LegacyContext(
        context,
        ServerConfig(num_rounds=1),
        strategy,
        SimpleClientManager(),
    )
    legacy.state.config_records[MAIN_CONFIGS_RECORD] = ConfigRecord({WorkflowKey.CURRENT_ROUND: r})
    start = ndarrays_to_parameters([np.asarray(weights, dtype=np.float64)])
    legacy.state.array_records[MAIN_PARAMS_RECORD] = compat.parameters_to_arrayrecord(start, True)
    workflow = SecAggPlusWorkflow(
        num_shares=1.0,  # every chosen node holds a share of every other's keys
        reconstruction_threshold=0.5,  # half of them recover a dropped node's masks
        clipping_range=SECAGG_CLIP,
        quantization_range=SECAGG_LEVELS,
        max_weight=SECAGG_MAX_WEIGHT,
        timeout=timeout,
    )
    workflow(_VouchedKeys(grid), legacy)
    return strategy


def _secure_outcome(
    grid: Grid,
    context: Context,
    r: int,
    chosen: list[dict[str, Any]],
    weights: list[float],
    timeout: float,
) -> dict[str, Any]:
    """The round's result for the coordinator under SecAgg+: the aggregate (None when the
    protocol could not finish), the survivors with their row counts, and the rest failed."""
    by_id = {int(node["node_id"]): node for node in chosen}
    if len(chosen) < 3:  # SecAgg+ hides an update among others (the desks refuse fewer)
        done = None
    else:
        done = secure_round(grid, context, r, list(by_id), weights, timeout)
    survivors = [
        {**_ident(by_id[s["node_id"]]), "num_examples": s["num_examples"]}
        for s in (done.survivors if done else [])
        if s["node_id"] in by_id
    ]
    kept = {s["node_id"] for s in survivors}
    # A node that dropped out is not asked again in this run (the coordinator reads "no
    # answer within" so), or every stage of every round would wait out its timeout.
    reason = (
        "no answer within secure aggregation (dropped out)" if done else "too few nodes for SecAgg+"
    )
    failed = [{**_ident(node), "reason": reason} for nid, node in by_id.items() if nid not in kept]
    log.info("round %d: %d survivors, %d failed (secure)", r, len(survivors), len(failed))
    aggregate = done.aggregate if done else None
    return {"round": r, "aggregate": aggregate, "survivors": survivors, "failed": failed}


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
    secure = bool(json.loads(str(cfg["task"])).get("secure_aggregation", False))
    rounds_run = 0
    for r in range(1, int(cfg["rounds"]) + 1):
        start = _post(context, "/fl/round/start", {"round": r, "nodes": nodes})
        if not start.get("continue"):
            log.info("coordinator stopped before round %d: %s", r, start.get("reason", ""))
            break
        selected = {int(node_id) for node_id in start["selected"]}
        chosen = [node for node in nodes if int(node["node_id"]) in selected]
        if secure:
            outcome = _secure_outcome(grid, context, r, chosen, start["weights"], timeout)
        else:
            updates, failed = _train_round(grid, r, chosen, start["weights"], timeout)
            log.info("round %d: %d updates, %d failed", r, len(updates), len(failed))
            outcome = {"round": r, "updates": updates, "failed": failed}
        result = _post(context, "/fl/round/result", outcome)
        rounds_run = r
        if not result.get("continue"):
            break
    _post(context, "/fl/done", {"rounds_run": rounds_run})

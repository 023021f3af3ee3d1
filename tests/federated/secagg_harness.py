"""SecAgg+ end to end in one process, run with Flower's venv: the ServerApp's
``secure_round`` (Flower's SecAggPlusWorkflow) against institutions whose every step is
ailedger's desk-side worker, through a grid that delivers messages in memory and records
everything the server receives. Prints a JSON report for ``test_secagg.py``.

Argument: ``drop`` makes node 3 fail the collect stage (after the keys were shared), as a
killed SuperNode would; ``pair`` has the server set up a round among nodes 1 and 2 only.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from flwr.app import ConfigRecord, Error, Message, RecordDict
from flwr.app import Context as FlowerContext
from flwr.common.serde import config_record_to_proto

SRC = Path(__file__).resolve().parents[2] / "src" / "ailedger" / "federated"


def _load(path: Path) -> Any:
    """A module from its file, without putting its directory on sys.path (ailedger's
    federated/http.py would shadow the standard library's http)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


secagg_worker = _load(SRC / "flowerdesk" / "secagg_worker.py")
server_app = _load(SRC / "flowerapp" / "server_app.py")

UPDATES = {1: [0.5, -1.25, 2.0], 2: [1.5, 0.25, -2.0], 3: [-0.75, 3.0, 0.5]}
ROWS = {1: 100, 2: 300, 3: 50}


class Institution:
    """What the relay and the desk do together, minus HTTP: the state stays here."""

    def __init__(self, node_id: int, drop: bool) -> None:
        self.node_id, self.drop, self.state = node_id, drop, None
        self.refusals: list[str] = []
        self.own_keys: list[str] = []  # what the worker gave to sign at setup
        self.neighbours: dict[str, list[str]] = {}  # and to check at key sharing
        self.vouched: dict[str, str] = {}  # the signatures the server carried to it

    def answer(self, msg: Message) -> Message:
        configs = msg.content.config_records["secaggplus_configs"]
        if "ailedger_keys" in msg.content.config_records:
            self.vouched = dict(msg.content.config_records["ailedger_keys"])  # type: ignore[arg-type]
        blob = base64.b64encode(config_record_to_proto(configs).SerializeToString()).decode()
        order: dict[str, Any] = {"node_id": self.node_id, "state": self.state, "configs": blob}
        try:
            out = secagg_worker.step(order)
        except SystemExit as refusal:  # the worker refuses, as the desk then does
            self.refusals.append(str(refusal))
            return Message(Error(code=1001, reason=str(refusal)), reply_to=msg)
        if "needs_update" in out:
            if self.drop:
                return Message(Error(code=1001, reason="killed"), reply_to=msg)
            order |= {"update": UPDATES[self.node_id], "num_examples": ROWS[self.node_id]}
            out = secagg_worker.step(order)
        self.state = out["state"]
        self.own_keys = out.get("own_keys", self.own_keys)
        self.neighbours = out.get("neighbours", self.neighbours)
        reply = RecordDict({"secaggplus_configs": secagg_worker._record(out["configs"])})
        if "own_keys" in out:  # the desk's signature, here a stand-in the test can recognise
            reply.config_records["ailedger_keys"] = ConfigRecord(
                {"signature": f"by-{self.node_id}"}
            )
        if order.get("update") is not None:  # the collect stage also carries the FitRes
            from flwr.common import Code, FitRes, Parameters, Status
            from flwr.compat.common import recorddict_compat as compat

            fitres = FitRes(Status(Code.OK, ""), Parameters([], ""), ROWS[self.node_id], {})
            reply = compat.fitres_to_recorddict(fitres, False)
            reply.config_records["secaggplus_configs"] = secagg_worker._record(out["configs"])
        return Message(reply, reply_to=msg)


class Grid:
    def __init__(self, institutions: dict[int, Institution], halt: str = "") -> None:
        self.institutions, self.seen, self.halt = institutions, [], halt
        self._replies: list[Message] = []

    def send_and_receive(self, messages: Any, *, timeout: float | None = None) -> list[Message]:
        return list(self.pull_messages(self.push_messages(messages)))

    def push_messages(self, messages: Any) -> list[str]:
        """Each institution answers at once; the replies wait to be pulled. Message ids
        are given as Flower's own grid gives them, from the message's content."""
        ids = []
        for msg in messages:
            msg.metadata.__dict__["_message_id"] = msg.object_id
            ids.append(msg.metadata.message_id)
            if msg.content.config_records["secaggplus_configs"].get("stage") == self.halt:
                continue  # the server stops here: the institutions hold their state
            reply = self.institutions[msg.metadata.dst_node_id].answer(msg)
            self.seen.append(reply)
            self._replies.append(reply)
        return ids

    def pull_messages(self, message_ids: Any) -> list[Message]:
        wanted = set(message_ids)
        taken = [r for r in self._replies if r.metadata.reply_to_message_id in wanted]
        self._replies = [r for r in self._replies if r not in taken]
        return taken


class Context:
    run_id = 1

    def __init__(self) -> None:
        from flwr.app import RecordDict

        self.state = RecordDict()
        self.node_id, self.node_config, self.run_config = 0, {}, {}


def _blob(configs: dict[str, Any]) -> str:
    record = config_record_to_proto(ConfigRecord(configs))
    return base64.b64encode(record.SerializeToString()).decode()


def attacks() -> list[str]:
    """What a dishonest server asks, and what the institutions answer: each refusal."""
    from flwr.supercore.task_identity import TaskIdentity

    TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = 1, 0, 0
    refusals = []
    one = {"stage": "setup", "sample_num": 3, "share_num": 1, "threshold": 1,
           "clipping_range": 16.0, "target_range": 2**26, "mod_range": 2**32,
           "max_weight": 50_000.0}  # fmt: skip
    wide = {**one, "share_num": 3, "threshold": 2, "clipping_range": 1e9}
    for configs in (one, wide):
        try:
            secagg_worker.step({"node_id": 1, "state": None, "configs": _blob(configs)})
        except SystemExit as refusal:
            refusals.append(str(refusal))
    # An honest round up to the masked vectors, then unmasking that names node 3 both
    # alive and dropped (to get both its mask seed and its key shares).
    institutions = {n: Institution(n, False) for n in (1, 2, 3)}
    context = FlowerContext(run_id=1, node_id=0, node_config={}, state=RecordDict(), run_config={})
    # The halted stage's messages are never answered: the round waits out its timeout,
    # kept short here since every earlier stage is answered at once.
    server_app.secure_round(
        Grid(institutions, halt="unmask"), context, 1, [1, 2, 3], [0.0] * 3, 2.0
    )  # type: ignore[arg-type]
    both = {"stage": "unmask", "active_nids": [1, 2, 3], "dead_nids": [3]}
    try:
        secagg_worker.step({"node_id": 1, "state": institutions[1].state, "configs": _blob(both)})
    except SystemExit as refusal:
        refusals.append(str(refusal))
    return refusals


def main(drop: bool, pair: bool) -> None:
    from flwr.app import Context as FlowerContext
    from flwr.supercore.task_identity import TaskIdentity

    TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = 1, 0, 0
    institutions = {n: Institution(n, drop and n == 3) for n in (1, 2, 3)}
    grid = Grid(institutions)
    context = FlowerContext(run_id=1, node_id=0, node_config={}, state=RecordDict(), run_config={})
    nodes = [1, 2] if pair else [1, 2, 3]
    chosen = server_app.secure_round(grid, context, 1, nodes, [0.0, 0.0, 0.0], 30.0)  # type: ignore[arg-type]
    floats_seen = []
    for reply in grid.seen:
        if reply.has_error():
            continue
        for record in reply.content.array_records.values():
            for array in record.values():
                if array.stype == "numpy.ndarray":  # the FitRes's parameters are empty
                    floats_seen.append(array.numpy().ravel().tolist())
        for record in reply.content.config_records.values():
            floats_seen += [v for v in record.values() if isinstance(v, list)]
    json.dump(
        {
            "aggregate": chosen.aggregate,
            "refusals": [r for i in institutions.values() for r in i.refusals],
            "survivors": chosen.survivors,
            "updates": UPDATES,
            "rows": ROWS,
            "own_keys": {n: i.own_keys for n, i in institutions.items()},
            "neighbours": {n: i.neighbours for n, i in institutions.items()},
            "vouched": {n: i.vouched for n, i in institutions.items()},
            "plain_update_seen": any(
                isinstance(v, list) and len(v) == 3 and np.allclose(v, u, atol=1e-3)
                for v in floats_seen
                for u in UPDATES.values()
                if all(isinstance(x, float) for x in v)
            ),
        },
        sys.stdout,
    )


if __name__ == "__main__":
    if "attacks" in sys.argv[1:]:
        json.dump({"refusals": attacks()}, sys.stdout)
    else:
        main("drop" in sys.argv[1:], "pair" in sys.argv[1:])

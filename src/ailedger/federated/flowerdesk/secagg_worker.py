"""One SecAgg+ step of an institution, run by its desk with the institution's own Flower.

Run as ``<.venv-flower>/bin/python secagg_worker.py`` (Flower's venv: flwr, numpy, the
standard library), never by the requester's ClientApp: the protocol's secrets (this
node's key pairs, its mask seed and the shares it holds) stay in the desk's state, and
only what the protocol sends to the server leaves. It reads one JSON object on stdin::

    {"node_id": n, "state": b64 | null, "configs": b64,
     "update": [floats] | null, "num_examples": k | null}

``configs`` is the ``secaggplus`` ConfigRecord the server sent (Flower's protobuf form,
base64); ``update`` is the trained weights, given in the collect-masked-vectors stage
only. It runs Flower's own ``secaggplus_mod`` on them and writes::

    {"state": b64, "configs": b64}   or   {"needs_update": "yes"}

the new state (kept by the desk) and the ConfigRecord to reply (the masked vector in the
collect stage: the update itself never leaves); or, when the server asks for the masked
update and none was given, that it is needed (the state unchanged): the desk decides
from the protocol's own stage, not from what the relay says, when to train.
"""

from __future__ import annotations

import base64
import json
import sys
from typing import Any

import numpy as np
from flwr.app import ConfigRecord, Context, Message, MessageType, RecordDict
from flwr.client.mod import secaggplus_mod
from flwr.common import Code, FitRes, Status, ndarrays_to_parameters
from flwr.common.secure_aggregation.secaggplus_constants import (
    RECORD_KEY_CONFIGS,
    RECORD_KEY_STATE,
    Key,
    Stage,
)
from flwr.common.serde import config_record_from_proto, config_record_to_proto
from flwr.compat.common import recorddict_compat as compat
from flwr.proto.recorddict_pb2 import ConfigRecord as ProtoConfigRecord
from flwr.supercore.task_identity import TaskIdentity

# Fewest nodes a round may mask among: with two, each learns the other's update from the
# sum, and a server that set up a round of one would read it outright.
MIN_NODES = 3


class NeedsUpdate(Exception):
    """The server asks for the masked update: the desk must train the round first."""


def _record(blob: str) -> ConfigRecord:
    proto = ProtoConfigRecord()
    proto.ParseFromString(base64.b64decode(blob))
    return config_record_from_proto(proto)


def _blob(record: ConfigRecord) -> str:
    return base64.b64encode(config_record_to_proto(record).SerializeToString()).decode()


def step(order: dict[str, Any]) -> dict[str, str]:
    state = RecordDict()
    if order.get("state"):
        state.config_records[RECORD_KEY_STATE] = _record(order["state"])
    configs = _record(order["configs"])
    if configs.get(Key.STAGE) == Stage.SETUP and int(str(configs[Key.SAMPLE_NUMBER])) < MIN_NODES:
        raise SystemExit(f"a round among {configs[Key.SAMPLE_NUMBER]} nodes hides no update")
    node = int(order["node_id"])
    # Flower stamps each message with the identity of the task running in the process.
    TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = 0, node, 0
    context = Context(run_id=0, node_id=node, node_config={}, state=state, run_config={})
    message = Message(
        RecordDict({RECORD_KEY_CONFIGS: configs}),
        dst_node_id=node,
        message_type=MessageType.TRAIN,
    )

    def trained(msg: Message, _: Context) -> Message:
        if order.get("update") is None:
            raise NeedsUpdate
        weights = np.asarray(order["update"], dtype=np.float64)
        fitres = FitRes(
            Status(Code.OK, ""), ndarrays_to_parameters([weights]), int(order["num_examples"]), {}
        )
        return Message(compat.fitres_to_recorddict(fitres, False), reply_to=msg)

    try:
        reply = secaggplus_mod(message, context, trained)
    except NeedsUpdate:
        return {"needs_update": "yes"}  # nothing changed: the desk trains, then asks again
    return {
        "state": _blob(context.state.config_records[RECORD_KEY_STATE]),
        "configs": _blob(reply.content.config_records[RECORD_KEY_CONFIGS]),
    }


if __name__ == "__main__":
    json.dump(step(json.load(sys.stdin)), sys.stdout)

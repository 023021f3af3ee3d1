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
collect stage: the update itself never leaves), with ``"own_keys"`` (this node's new public
keys, hex) at setup and ``"neighbours"`` (node id -> its public keys, hex) at key sharing,
for the desk to sign and to check against the job's members; or, when the server asks for the masked
update and none was given, that it is needed (the state unchanged): the desk decides
from the protocol's own stage, not from what the relay says, when to train.
"""

from __future__ import annotations

import base64
import importlib
import json
import sys
from typing import Any, cast

import numpy as np
from flwr.app import ConfigRecord, Context, Message, MessageType, RecordDict
from flwr.client.mod import secaggplus_mod
from flwr.client.mod.secure_aggregation.secaggplus_mod import SecAggPlusState
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
MAX_SHARES = 64
# The parameters ailedger's ServerApp runs SecAgg+ with (flowerapp/server_app.py): a server
# that asks for others (a wider clip, another modulus) is refused.
PARAMETERS = {
    Key.CLIPPING_RANGE: 16.0,
    Key.TARGET_RANGE: 2**26,
    Key.MOD_RANGE: 2**32,
    Key.MAX_WEIGHT: 50_000.0,
}


class Refused(SystemExit):
    """The server asked for something SecAgg+ run honestly never asks: no answer."""


def full_entropy_masks(
    seed: bytes, num_range: int, dimensions_list: list[tuple[int, ...]]
) -> list[Any]:
    """Masks from all of a seed's bits. Flower's generator folds a 32-byte seed into 32
    bits, so a server holding a masked vector could search 2**32 seeds for its mask; the
    ServerApp uses this same function for the masks it removes."""
    gen = np.random.Generator(np.random.PCG64(np.random.SeedSequence(int.from_bytes(seed, "big"))))
    return [np.asarray(gen.integers(0, num_range, size=d, dtype=np.int64)) for d in dimensions_list]


def _check(configs: ConfigRecord, state: Any, node: int) -> None:
    """Refuse a stage that would let the server take more than the sum (the checks the
    protocol relies on and Flower's client code leaves to the server's honesty)."""
    stage = configs.get(Key.STAGE)
    if stage != Stage.SETUP and state is None:
        raise Refused(f"stage {stage} before any round was set up")
    if stage == Stage.SETUP:
        n, k, t = (
            int(str(configs[key])) for key in (Key.SAMPLE_NUMBER, Key.SHARE_NUMBER, Key.THRESHOLD)
        )
        if n < MIN_NODES or not MIN_NODES <= k <= min(n, MAX_SHARES):
            raise Refused(f"a round among {n} nodes ({k} shares) hides no update")
        if t < 2 or 2 * t <= k:
            raise Refused(f"a threshold of {t} of {k} shares lets a minority recover keys")
        for key, value in PARAMETERS.items():
            if configs.get(key) != value:
                raise Refused(f"{key} must be {value}, not {configs.get(key)}")
    elif stage == Stage.SHARE_KEYS:
        nodes = [int(k) for k in configs if k != Key.STAGE]
        if len(nodes) != state.share_num or node not in nodes:
            raise Refused(f"{len(nodes)} neighbours where {state.share_num} were set up")
    elif stage == Stage.UNMASK:
        active = [int(n) for n in cast(list[int], configs[Key.ACTIVE_NODE_ID_LIST])]
        dead = [int(n) for n in cast(list[int], configs[Key.DEAD_NODE_ID_LIST])]
        named = set(active) | set(dead)
        if len(named) != len(active) + len(dead) or node not in active:
            raise Refused("a node both alive and dropped, or this one dropped: no shares")
        if not named <= set(state.public_keys_dict) or len(active) < state.threshold:
            raise Refused("unmasking names nodes outside this round, or too few alive")


class NeedsUpdate(Exception):
    """The server asks for the masked update: the desk must train the round first."""


def _record(blob: str) -> ConfigRecord:
    proto = ProtoConfigRecord()
    proto.ParseFromString(base64.b64decode(blob))
    return config_record_from_proto(proto)


def _blob(record: ConfigRecord) -> str:
    return base64.b64encode(config_record_to_proto(record).SerializeToString()).decode()


def step(order: dict[str, Any]) -> dict[str, Any]:
    # The module, not the function of the same name its package exports.
    protocol = importlib.import_module("flwr.client.mod.secure_aggregation.secaggplus_mod")
    vars(protocol)["pseudo_rand_gen"] = full_entropy_masks
    state = RecordDict()
    if order.get("state"):
        state.config_records[RECORD_KEY_STATE] = _record(order["state"])
    configs = _record(order["configs"])
    stage = configs.get(Key.STAGE)  # Flower's client pops it from the record
    node = int(order["node_id"])
    _check(
        configs,
        SecAggPlusState(**dict(state.config_records[RECORD_KEY_STATE]))
        if order.get("state")
        else None,
        node,
    )
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
    kept = context.state.config_records[RECORD_KEY_STATE]
    out: dict[str, Any] = {
        "state": _blob(kept),
        "configs": _blob(reply.content.config_records[RECORD_KEY_CONFIGS]),
    }
    # What the desk vouches for, or must see vouched for, before this step's answer leaves.
    if stage == Stage.SETUP:
        mine = SecAggPlusState(**dict(kept))
        out["own_keys"] = [mine.pk1.hex(), mine.pk2.hex()]
    elif stage == Stage.SHARE_KEYS:
        out["neighbours"] = {
            node: [bytes(key).hex() for key in cast(list[bytes], keys)]
            for node, keys in configs.items()
            if node != Key.STAGE
        }
    return out


if __name__ == "__main__":
    json.dump(step(json.load(sys.stdin)), sys.stdout)

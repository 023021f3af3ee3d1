"""ClientApp: one institution's side of a round, run by its SuperNode.

Runs in Flower's virtualenv (standard library, numpy and flwr only). Who the institution is and
where its desk listens come from the SuperNode's ``--node-config``. It comes with the
requester's run, so it is a relay and nothing more: it hands the round's global weights and the
task to the institution's desk, which trains in ailedger's process under consent, and replies
the update the desk returns. The data never reaches this code.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Error, Message, RecordDict
from flwr.clientapp import ClientApp

CONSENT_REFUSED = 1001  # Error code of a train reply refused by the institution's daemon
app = ClientApp()


@app.query()
def query(msg: Message, context: Context) -> Message:
    about = ConfigRecord({key: str(context.node_config[key]) for key in ("institution", "dataset")})
    return Message(RecordDict({"node": about}), reply_to=msg)


def _ask_desk(context: Context, order: dict[str, Any], path: str = "/fl/train") -> dict[str, Any]:
    """The desk's answer; a desk that errs or is down refuses, it never lets data through."""
    cfg = context.node_config
    request = urllib.request.Request(
        f"{str(cfg['consent-url']).rstrip('/')}{path}",
        data=json.dumps(order).encode(),
        method="POST",
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {cfg['consent-token']}",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=300) as answer:
            result: dict[str, Any] = json.loads(answer.read())
            return result
    except urllib.error.HTTPError as err:
        text = err.read().decode(errors="replace")
        return {"ok": False, "reason": f"the institution's desk answered {err.code}: {text}"}
    except OSError as err:
        return {"ok": False, "reason": f"the institution's desk is unreachable: {err}"}


SECAGG_CONFIGS = "secaggplus_configs"  # Flower's record key for SecAgg+ messages
# Beside it: a node's signature of its keys in a setup reply; the neighbours' signatures in
# a key-sharing message (the desk takes shares only from nodes a job member vouches for).
KEYS_SIGNATURES = "ailedger_keys"


def _secagg(msg: Message, context: Context) -> Message:
    """Relay one SecAgg+ message to the desk, which holds this node's protocol secrets
    and masks the update itself: this code sees what the server sees, nothing more."""
    import base64

    from flwr.common import Code, FitRes, Parameters, Status, parameters_to_ndarrays
    from flwr.common.serde import config_record_from_proto, config_record_to_proto
    from flwr.compat.common import recorddict_compat as compat
    from flwr.proto.recorddict_pb2 import ConfigRecord as ProtoConfigRecord

    task = json.loads(str(context.run_config["task"]))
    weights = [0.0] * (len(task["features"]) + 1)  # a stage that trains nothing
    number = int(msg.metadata.group_id or 0)
    if msg.content.array_records:  # the stage that collects masked updates carries FitIns
        fitins = compat.recorddict_to_fitins(msg.content, keep_input=True)
        weights = [float(w) for w in parameters_to_ndarrays(fitins.parameters)[0].ravel()]
        number = int(str(fitins.config["round"]))
    configs = config_record_to_proto(msg.content.config_records[SECAGG_CONFIGS])
    order = {
        "node_id": int(msg.metadata.dst_node_id),
        "configs": base64.b64encode(configs.SerializeToString()).decode(),
        "round": number,
        "weights": weights,
        "task": task,
        "signatures": {
            str(node): str(signature)
            for node, signature in msg.content.config_records.get(
                KEYS_SIGNATURES, ConfigRecord()
            ).items()
        },
    }
    answer = _ask_desk(context, order, "/fl/secagg")
    if answer.get("ok") is not True:
        reason = f"consent refused: {answer.get('reason', 'no reason given')}"
        return Message(Error(code=CONSENT_REFUSED, reason=reason), reply_to=msg)
    proto = ProtoConfigRecord()
    proto.ParseFromString(base64.b64decode(str(answer["configs"])))
    content = RecordDict()
    if "num_examples" in answer:  # the masked update goes with an empty FitRes
        empty = Parameters(tensors=[], tensor_type="")
        fitres = FitRes(Status(Code.OK, ""), empty, int(answer["num_examples"]), {})
        content = compat.fitres_to_recorddict(fitres, keep_input=False)
    content.config_records[SECAGG_CONFIGS] = config_record_from_proto(proto)
    if "signature" in answer:  # setup: the desk vouches for this node's new keys
        content.config_records[KEYS_SIGNATURES] = ConfigRecord(
            {"signature": str(answer["signature"])}
        )
    return Message(content, reply_to=msg)


@app.train()
def train_handler(msg: Message, context: Context) -> Message:
    if SECAGG_CONFIGS in msg.content.config_records:
        return _secagg(msg, context)
    start = msg.content.array_records["model"].to_numpy_ndarrays()[0]
    order = {
        "round": int(str(msg.content.config_records["config"]["round"])),
        "weights": [float(w) for w in start.ravel()],
        "task": json.loads(str(context.run_config["task"])),
    }
    answer = _ask_desk(context, order)
    if answer.get("ok") is not True:  # only an explicit yes sends an update
        reason = f"consent refused: {answer.get('reason', 'no reason given')}"
        return Message(Error(code=CONSENT_REFUSED, reason=reason), reply_to=msg)
    trained = np.asarray(answer["weights"], dtype=np.float64)
    result = ConfigRecord(
        {
            "num-examples": int(answer["num_examples"]),
            "institution": str(context.node_config["institution"]),
        }
    )
    return Message(RecordDict({"model": ArrayRecord([trained]), "result": result}), reply_to=msg)

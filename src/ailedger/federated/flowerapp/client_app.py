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


def _ask_desk(context: Context, order: dict[str, Any]) -> dict[str, Any]:
    """The desk's answer; a desk that errs or is down refuses, it never lets data through."""
    cfg = context.node_config
    request = urllib.request.Request(
        f"{str(cfg['consent-url']).rstrip('/')}/fl/train",
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


@app.train()
def train_handler(msg: Message, context: Context) -> Message:
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

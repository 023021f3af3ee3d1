"""ClientApp: one institution's side of a round, run by its SuperNode.

Runs in Flower's virtualenv (standard library, numpy and flwr only). Who the institution is and
where its daemon listens come from the SuperNode's ``--node-config``; the table to train on is
handed out by that daemon per round, only with consent, so a refusal trains nothing.
"""

from __future__ import annotations

import csv
import json
import urllib.error
import urllib.parse
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


def _consent(context: Context, r: int) -> dict[str, Any]:
    """The daemon's answer; a daemon that errs or is down refuses, it never lets data through."""
    cfg = context.node_config
    query = urllib.parse.urlencode({"round": r})
    url = f"{str(cfg['consent-url']).rstrip('/')}/fl/consent?{query}"
    auth = {"Authorization": f"Bearer {cfg['consent-token']}"}
    request = urllib.request.Request(url, headers=auth)
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            result: dict[str, Any] = json.loads(answer.read())
            return result
    except urllib.error.HTTPError as err:
        text = err.read().decode(errors="replace")
        return {"ok": False, "reason": f"consent daemon answered {err.code}: {text}"}
    except OSError as err:
        return {"ok": False, "reason": f"consent daemon unreachable: {err}"}


def load_table(path: str, task: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Features scaled to [-1, 1] by the task's bounds (clamped) and 0/1 labels."""
    with open(path, newline="") as table:
        rows = list(csv.DictReader(table))
    x = np.array([[float(row[f]) for f in task["features"]] for row in rows], dtype=np.float64)
    lower = np.asarray(task["lower"], dtype=np.float64)
    upper = np.asarray(task["upper"], dtype=np.float64)
    span = np.where(upper > lower, upper - lower, 1.0)
    x = np.clip(2.0 * (x - lower) / span - 1.0, -1.0, 1.0)
    y = np.array([row[task["label"]] == str(task["positive"]) for row in rows], dtype=np.float64)
    return x, y


def train(
    weights: np.ndarray, x: np.ndarray, y: np.ndarray, task: dict[str, Any], r: int
) -> np.ndarray:
    """Mini-batch gradient descent on the logistic loss; the last weight is the bias."""
    w = weights.astype(np.float64).copy()
    xb = np.hstack([x, np.ones((len(x), 1))])
    batch = int(task["batch_size"])
    rng = np.random.default_rng(r)  # same order for the same round: reruns reproduce
    for _ in range(int(task["local_epochs"])):
        order = rng.permutation(len(xb))
        for start in range(0, len(xb), batch):
            rows = order[start : start + batch]
            p = 0.5 * (1.0 + np.tanh(0.5 * (xb[rows] @ w)))  # the sigmoid, without overflow
            w -= float(task["learning_rate"]) * xb[rows].T @ (p - y[rows]) / len(rows)
    return w


@app.train()
def train_handler(msg: Message, context: Context) -> Message:
    r = int(str(msg.content.config_records["config"]["round"]))
    consent = _consent(context, r)
    if consent.get("ok") is not True:  # only an explicit yes lets data through
        reason = f"consent refused: {consent.get('reason', 'no reason given')}"
        return Message(Error(code=CONSENT_REFUSED, reason=reason), reply_to=msg)
    task = json.loads(str(context.run_config["task"]))
    x, y = load_table(str(consent["data"]), task)
    start = msg.content.array_records["model"].to_numpy_ndarrays()[0]
    trained = train(start, x, y, task, r)
    result = ConfigRecord(
        {"num-examples": len(y), "institution": str(context.node_config["institution"])}
    )
    return Message(RecordDict({"model": ArrayRecord([trained]), "result": result}), reply_to=msg)

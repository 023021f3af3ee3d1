"""ClientApp of the plain reference: trains the round on its SuperNode's own CSV.

The table's path is the SuperNode's ``--node-config`` ``table``; the task (features,
bounds, hyperparameters) is the run config's ``task``, the same JSON ailedger's run
carries. No consent, audit or chain: what is left is the work every federated round does.
"""

from __future__ import annotations

import json
from pathlib import Path

from flwr.app import ArrayRecord, ConfigRecord, Context, Message, RecordDict
from flwr.clientapp import ClientApp
from plain_logistic import read_table, train_local

app = ClientApp()


@app.train()
def train(msg: Message, context: Context) -> Message:
    task = json.loads(str(context.run_config["task"]))
    start = msg.content.array_records["model"].to_numpy_ndarrays()[0]
    round_no = int(str(msg.content.config_records["config"]["round"]))
    x, y = read_table(task, Path(str(context.node_config["table"])))
    trained = train_local(
        start,
        x,
        y,
        epochs=int(task["local_epochs"]),
        lr=float(task["learning_rate"]),
        batch=int(task["batch_size"]),
        seed=round_no,
    )
    result = ConfigRecord({"num-examples": len(y)})
    return Message(RecordDict({"model": ArrayRecord([trained]), "result": result}), reply_to=msg)

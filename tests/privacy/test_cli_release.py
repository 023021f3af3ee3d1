"""Private analytics through the real CLI, two homes on one chain: the owner makes a
dataset private and serves it (its chain and its node are processes of their own); a
researcher asks, trains, is refused past the cap before paying, and both read the same
budget from the chain. The commands run in this process, as `ailedger` would run them,
which spares a Python start per command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli_home import Home
from tests.processes import Party, free_port, stop, wait_http

pytestmark = [pytest.mark.integration, pytest.mark.slow]

QUERY = {
    "columns": {
        "age": {"type": "int", "lower": 0, "upper": 120},
        "stage": {"type": "category", "categories": ["early", "late"]},
    },
    "statistics": [{"kind": "count"}, {"kind": "histogram", "column": "stage"}],
    "epsilon": 0.2,
}
TRAINING_TOML = """
label = "outcome"
features = ["age"]
epsilon = 0.3
delta = 1e-6
epochs = 2
batch_size = 64

[columns.age]
type = "int"
lower = 0
upper = 120

[columns.outcome]
type = "category"
categories = ["no", "yes"]
"""


def _table(path: Path) -> Path:
    rows = [
        f"{20 + i % 60},{'early' if i % 3 else 'late'},{'yes' if i % 60 > 30 else 'no'}"
        for i in range(300)
    ]
    path.write_text("age,stage,outcome\n" + "\n".join(rows) + "\n")
    return path


def test_ask_train_refuse_and_read_the_budget_through_the_cli(
    tmp_path: Path,
    contract_cache: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    chain_port, node_port = free_port(), free_port()
    chain_url = f"http://127.0.0.1:{chain_port}"
    owner = Home(Party(tmp_path / "owner", contract_cache, None), capsys, monkeypatch)
    researcher = Home(
        Party(tmp_path / "researcher", contract_cache, chain_url), capsys, monkeypatch
    )
    owner.init()
    researcher.init()
    chain = owner.spawn("chain", "serve", "--port", str(chain_port))
    node = None
    try:
        wait_http(
            f"http://127.0.0.1:{chain_port}",
            {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
        )
        owner.run("account", "fund")
        researcher.run("account", "fund")
        researcher.run("token", "faucet", "50")
        published = owner.json(
            "data", "publish", str(_table(tmp_path / "t.csv")), "--title", "Stages",
            "--purpose", "model-training", "--price", "1", "--auto",
        )  # fmt: skip
        dataset = str(published["dataset"])
        capped = owner.json("privacy", "cap", dataset, "--epsilon", "1", "--delta", "1e-6")
        assert capped["epsilon_cap"] == 1.0 and capped["previous_cap"] is None

        node = owner.spawn("node", "start", "--port", str(node_port), "--no-web")
        wait_http(f"http://127.0.0.1:{node_port}/v1/health")
        query = tmp_path / "query.json"
        query.write_text(json.dumps(QUERY))

        first: Any = researcher.json("privacy", "query", dataset, str(query), "--buy")
        assert set(first["values"]) == {"count", "histogram_stage"}
        assert set(first["values"]["histogram_stage"]) == {"early", "late"}
        grant = str(first["bought"]["grant"])
        said = researcher.run("privacy", "query", dataset, str(query), "--grant", grant).stdout
        assert "charged to the dataset on chain" in said and "count:" in said

        training = tmp_path / "training.toml"
        training.write_text(TRAINING_TOML)
        model = tmp_path / "model.json"
        trained = researcher.run(
            "privacy", "train", dataset, str(training), "--grant", grant, "-o", str(model)
        ).stdout
        assert "trained over 300 rows" in trained
        assert json.loads(model.read_text())["features"] == ["age"]

        balance = researcher.json("token", "balance")
        greedy = tmp_path / "greedy.json"
        greedy.write_text(json.dumps({**QUERY, "epsilon": 5}))
        refused = researcher.run("privacy", "query", dataset, str(greedy), "--buy", ok=False)
        assert refused.returncode == 1 and "over its cap of 1" in refused.stderr
        assert researcher.json("token", "balance") == balance  # refused before paying

        fetched = researcher.run(
            "data", "fetch", dataset, "--grant", grant, "-o", str(tmp_path / "rows.csv"), ok=False
        )
        assert "this dataset is private" in fetched.stderr
        assert not (tmp_path / "rows.csv").exists()

        for bad, says in (("{not json", "is not valid json"), ("[]", "not valid")):
            query.write_text(bad)
            line = researcher.run(
                "privacy", "query", dataset, str(query), "--grant", grant, ok=False
            )
            assert says in line.stderr.lower() and "Traceback" not in line.stderr
        neither = researcher.run("privacy", "query", dataset, str(greedy), ok=False)
        assert "give --grant ID" in neither.stderr
    finally:
        if node is not None:
            stop(node)
        stop(chain)

    budget: Any = owner.json("data", "budget", dataset)
    assert [r["kind"] for r in budget["releases"]] == ["query", "query", "training"]
    assert budget["consistent"] is True and 0 < budget["remaining"] < 1
    assert set(budget["by_kind"]) == {"query", "training"}
    text = owner.run("privacy", "budget", dataset).stdout
    assert "epsilon cap 1 at delta 1e-06" in text and "remaining" in text

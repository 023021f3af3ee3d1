"""The model and algorithm market through the real CLI, two homes on one chain: the seller
registers a model, lists its predictions and an algorithm, and serves them (its chain and
its node are processes of their own); a buyer lists, buys, asks for predictions with
receipts it verifies, fetches the algorithm, and each misuse is one clear line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli_home import Home
from tests.processes import Party, free_port, stop, wait_http

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MODEL = {
    "features": ["age", "bmi"],
    "weights": [1.5, -0.75],
    "bias": 0.2,
    "lower": [0.0, 10.0],
    "upper": [120.0, 50.0],
}


def _model(root: Path) -> Path:
    model = root / "model"
    model.mkdir()
    (model / "model.json").write_text(json.dumps(MODEL))
    return model


def _bundle(root: Path) -> Path:
    bundle = root / "bundle"
    bundle.mkdir()
    (bundle / "main.py").write_text("print('cohort statistics')\n")
    (bundle / "job.toml").write_text(
        '[job]\nentry = "main.py"\nruntime = "python"\ninputs = []\n'
        "[resources]\ncpu_cores = 1\nram_mb = 256\nmax_hours = 1\n"
        '[market]\nmax_price_per_hour = "1"\ndeadline_hours = 1\n'
    )
    return bundle


def test_sell_list_buy_predict_and_fetch_through_the_cli(
    tmp_path: Path,
    contract_cache: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    chain_port, node_port = free_port(), free_port()
    chain_url = f"http://127.0.0.1:{chain_port}"
    seller = Home(Party(tmp_path / "seller", contract_cache, None), capsys, monkeypatch)
    buyer = Home(Party(tmp_path / "buyer", contract_cache, chain_url), capsys, monkeypatch)
    seller.init()
    buyer.init()
    chain = seller.spawn("chain", "serve", "--port", str(chain_port))
    node = None
    try:
        wait_http(chain_url, {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []})
        seller.run("account", "fund")
        buyer.run("account", "fund")
        buyer.run("token", "faucet", "20")
        buyer.run("account", "register-key")  # a fetched file is encrypted to this key
        model = _model(tmp_path)
        done: Any = seller.json("model", "register", str(model), "--name", "risk")
        predictions: Any = seller.json(
            "market", "sell-model", str(model), "--bundle", done["bundle"],
            "--public-key", done["public_key"], "--title", "Readmission risk",
            "--predictions", "--uses", "2", "--price", "3", "--purpose", "clinical-care",
        )  # fmt: skip
        algorithm: Any = seller.json(
            "market", "sell-algorithm", str(_bundle(tmp_path)), "--title", "Cohort stats",
            "--price", "1", "--purpose", "public-health",
        )  # fmt: skip
        no_uses = seller.run(
            "market", "sell-model", str(model), "--bundle", done["bundle"],
            "--public-key", done["public_key"], "--title", "x", "--predictions",
            "--purpose", "clinical-care", ok=False,
        )  # fmt: skip
        assert "give --uses N" in no_uses.stderr and "Traceback" not in no_uses.stderr

        node = seller.spawn("node", "start", "--port", str(node_port), "--no-web")
        wait_http(f"http://127.0.0.1:{node_port}/v1/health")

        offers = {o["offer"]: o for o in buyer.json("market", "list")["offers"]}
        listed = offers[predictions["offer"]]
        assert listed["kind"] == "model-predictions" and listed["problems"] == []
        assert listed["passport"] == done["passport"] and listed["max_uses"] == 2
        assert offers[algorithm["offer"]]["kind"] == "algorithm"
        assert "confirmed on chain" in buyer.run("market", "list").stdout

        wrong = buyer.run(
            "market", "buy", predictions["offer"], "--purpose", "public-health", ok=False
        )
        assert "this dataset allows only: clinical-care" in wrong.stderr
        bought: Any = buyer.json(
            "market", "buy", predictions["offer"], "--purpose", "clinical-care"
        )
        assert bought["status"] == "granted"
        grant = str(bought["grant"])

        inputs = tmp_path / "inputs.json"
        inputs.write_text(json.dumps([{"age": 61, "bmi": 31}]))
        receipts = tmp_path / "receipts"
        said = buyer.run("market", "predict", grant, str(inputs), "--receipts", str(receipts))
        assert "receipt verified against the chain" in said.stdout
        assert "uses left under grant" in said.stdout
        (receipt,) = receipts.iterdir()
        checked: Any = buyer.json("decision", "verify", str(receipt))
        assert checked["ok"] is True and checked["input_matched"] is True

        inputs.write_text(json.dumps([{"age": 61, "bmi": 31}, {"age": 30, "bmi": 20}]))
        over = buyer.run("market", "predict", grant, str(inputs), ok=False)
        assert "1 of its 2 uses left; 2 were asked for" in over.stderr
        files = buyer.run("market", "fetch", grant, str(tmp_path / "files"), ok=False)
        assert "never its files" in files.stderr and not (tmp_path / "files").exists()

        paid: Any = buyer.json("market", "buy", algorithm["offer"], "--purpose", "public-health")
        got: Any = buyer.json("market", "fetch", str(paid["grant"]), str(tmp_path / "alg"))
        assert got["kind"] == "algorithm" and (tmp_path / "alg" / "job.toml").exists()
    finally:
        if node is not None:
            stop(node)
        stop(chain)

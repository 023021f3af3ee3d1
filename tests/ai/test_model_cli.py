"""``ailedger model`` through the CLI: a home registers a model from its completed job,
then the commands list, show and verify it, and refuse a card edited after signing."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from ailedger.chain.contracts.data_market import PURPOSES, Policy
from ailedger.chain.deploy import COMPUTE_MIN_STAKE
from ailedger.chain.transactions import fund_from_dev_account
from ailedger.compute.outputs import output_hash
from tests.cli.test_cli import error_of, home_env, run  # noqa: F401 (fixture)
from tests.completed_jobs import AIL, BUNDLE, completed_job

pytestmark = pytest.mark.integration
TRAINING = PURPOSES["model-training"]


def _registered_model(home: Path, model: Path) -> dict[str, Any]:
    """In this home: a dataset of another account's, a job over it granted for training
    and run by that account, settled on ``model``; then the model registered."""
    from ailedger.ai.models import register_model
    from ailedger.session import open_session
    from ailedger.settings import load_settings

    with open_session(load_settings(), unlock=True) as me:
        web3 = me.chain.web3
        fund_from_dev_account(web3, me.address, 10**20)
        other = Account.create()
        fund_from_dev_account(web3, other.address, 10**20)
        them = dataclasses.replace(me, account=other)  # the same chain, another account
        dataset = b"\x64" * 32
        them.data_market.register_dataset(
            dataset, b"\x22" * 32, b"\x33" * 32, Policy(TRAINING, False, 0, 86400, 0)
        )
        them.compute_policy.allow_algorithm(dataset, BUNDLE)
        for s in (me, them):
            s.token.faucet(1_000 * AIL)
            s.token.approve(s.deployment.address("ComputeMarket"), 1_000 * AIL)
        them.token.approve(them.deployment.address("ComputeProviders"), 1_000 * AIL)
        them.compute_providers.register_provider(COMPUTE_MIN_STAKE)
        them.compute_providers.post_offer(2, 4096, "", 0, 3 * AIL, True)
        job = completed_job(
            me.data_market,
            me.compute_market,
            them.compute_market,
            dataset,
            TRAINING,
            output_hash(model),
        )
        done = register_model(me, model, [job], name="risk")
    return {
        "model": "0x" + done.model_id.hex(),
        "bundle": str(done.passport.path),
        "key": str(done.public_key),
    }


def test_register_then_list_show_and_verify_through_the_cli(
    home_env: Path,  # noqa: F811 (the fixture imported above)
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert run(["init"], capsys, monkeypatch)[0] == 0
    code, out, _ = run(["model", "list"], capsys, monkeypatch)
    assert code == 0 and "no models registered" in out
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.json").write_text(
        json.dumps({"weights": [0.5, -0.25], "bias": 0.1, "features": ["age", "bmi"]})
    )
    made = _registered_model(home_env, model)

    listed = json.loads(run(["model", "list", "--mine", "--json"], capsys, monkeypatch)[1])
    assert [m["model"] for m in listed["models"]] == [made["model"]]
    shown = run(["model", "show", made["model"]], capsys, monkeypatch)[1]
    assert f"{made['model']} v1 (current)" in shown
    verify = [
        "model",
        "verify",
        str(model),
        "--bundle",
        made["bundle"],
        "--public-key",
        made["key"],
    ]
    code, out, err = run(verify, capsys, monkeypatch)
    assert code == 0, err
    assert "granted for model training (grant 1): ok" in out and "model verified" in out

    # Serving: two decisions, each a receipt its person checks against the chain alone.
    inputs = tmp_path / "inputs.json"
    inputs.write_text(json.dumps([{"age": 1.0, "bmi": 2.0}, {"age": -1.0, "bmi": 0.5}]))
    serve = ["model", "serve", str(model), "--bundle", made["bundle"], "--input", str(inputs)]
    serve += ["--public-key", made["key"], "--receipts", str(tmp_path / "receipts"), "--json"]
    code, out, err = run(serve, capsys, monkeypatch)
    assert code == 0, err
    served = json.loads(out)
    assert len(served["decisions"]) == 2 and served["anchored"] is not None
    first = Path(served["decisions"][0]["receipt"])
    code, out, err = run(["audit", "history"], capsys, monkeypatch)  # decisions have no outcome
    assert code == 0, err
    assert out.count(" decision ") == 2
    code, out, err = run(["decision", "verify", str(first)], capsys, monkeypatch)
    assert code == 0, err
    assert "anchored on chain, explanation adds up, your input matches" in out

    # The auditor re-runs the decision with the model and the person's input.
    replay = ["decision", "replay", str(first), "--model", str(model), "--bundle"]
    replay += [made["bundle"], "--public-key", made["key"], "--json"]
    code, out, err = run(replay, capsys, monkeypatch)
    assert code == 0, err
    replayed = json.loads(out)
    assert replayed["ok"] and replayed["replayed_output"] == replayed["logged_output"]

    receipt = json.loads(first.read_text())
    other = {**receipt, "features": {"age": 1.0, "bmi": 2.5}}  # another person's input
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(other))
    code, out, _ = run(["decision", "verify", str(forged), "--json"], capsys, monkeypatch)
    assert code == 1 and json.loads(out)["input_matched"] is False
    entry = json.loads(receipt["entry"])
    entry["output"] = 0.01  # the decision altered after issue
    forged.write_text(json.dumps({**receipt, "entry": json.dumps(entry)}))
    code, out, _ = run(["decision", "verify", str(forged), "--json"], capsys, monkeypatch)
    assert code == 1 and json.loads(out)["problems"]
    code, out, _ = run([*replay[:2], str(forged), *replay[3:]], capsys, monkeypatch)
    assert code == 1 and "output: logged 0.01" in " ".join(json.loads(out)["problems"])

    # Record-keeping: not redacted before its retention; a signed export for a regulator.
    index = str(receipt["index"])
    line = error_of(["decision", "redact", index], capsys, monkeypatch)
    assert "must be kept until" in line and "183 days" in line
    monkeypatch.setenv("AILEDGER_DECISION_RETENTION_DAYS", "400")  # the deployer's own rule
    assert "retained 400 days" in error_of(["decision", "redact", index], capsys, monkeypatch)
    monkeypatch.setenv("AILEDGER_DECISION_RETENTION_DAYS", "30")  # shorter than the law
    assert "shorter than the 183 days" in error_of(
        ["decision", "redact", index], capsys, monkeypatch
    )
    monkeypatch.delenv("AILEDGER_DECISION_RETENTION_DAYS")
    exported = tmp_path / "export.json"
    code, out, err = run(["decision", "export", "-o", str(exported)], capsys, monkeypatch)
    assert code == 0, err
    me = json.loads(run(["account", "show", "--json"], capsys, monkeypatch)[1])["address"]
    check = ["decision", "check-export", str(exported), "--node", me, "--json"]
    code, out, err = run(check, capsys, monkeypatch)
    assert code == 0 and json.loads(out)["decisions"] == 2, err
    altered = json.loads(exported.read_text())
    altered["export"]["redacted"] = [int(index)]  # claims a decision was redacted
    exported.write_text(json.dumps(altered))
    assert "altered" in error_of(check, capsys, monkeypatch)

    (model / "MODEL_CARD.md").write_text("# risk\n\nEdited after signing.\n")
    line = error_of(verify, capsys, monkeypatch)
    assert "MODEL_CARD.md" in line


def test_model_commands_refuse_bad_input_in_one_line(
    home_env: Path,  # noqa: F811 (the fixture imported above)
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert run(["init"], capsys, monkeypatch)[0] == 0
    line = error_of(["model", "show", "0x" + "ab" * 32], capsys, monkeypatch)
    assert "there is no model" in line
    line = error_of(
        ["model", "register", str(tmp_path / "nope"), "--name", "x"], capsys, monkeypatch
    )
    assert "is not a directory" in line
    (tmp_path / "m").mkdir()
    args = ["model", "register", str(tmp_path / "m"), "--name", "x", "--job", "7"]
    assert "job 7 is not a job this home posted" in error_of(args, capsys, monkeypatch)

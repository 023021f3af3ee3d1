"""The CLI as a person uses it: the real entry point, environment settings, exit codes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ailedger.cli.app import main
from ailedger.testing.ethnode import AnvilNode, anvil_available

PASSPHRASE = "correct horse battery staple"


def run(
    args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["ailedger", *args])
    monkeypatch.setenv("COLUMNS", "200")
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0) if not isinstance(exc.code, str) else 1
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def home_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, contract_cache: Path) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("AILEDGER_HOME", str(home))
    monkeypatch.setenv("AILEDGER_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("AILEDGER_CACHE_DIR", str(contract_cache))
    monkeypatch.delenv("AILEDGER_CHAIN", raising=False)
    return home


def test_help_lists_every_command_group(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = run(["--help"], capsys, monkeypatch)
    assert code == 0
    for group in ("init", "demo", "account", "token", "chain"):
        assert f" {group} " in out


def test_help_imports_no_heavy_library() -> None:
    """`ailedger --help` stays fast because no chain library loads for it."""
    probe = (
        "import sys; sys.argv=['ailedger','--help']\n"
        "from ailedger.cli.app import main\n"
        "try: main()\nexcept SystemExit: pass\n"
        "heavy = ('web3', 'eth', 'vyper', 'eth_account', 'cryptography')\n"
        "heavy = [m for m in heavy if m in sys.modules]\n"
        "print('HEAVY', heavy)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert "HEAVY []" in out.stdout


def test_token_lifecycle_through_the_cli(
    home_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = run(["init"], capsys, monkeypatch)
    assert code == 0, err
    assert "created ailedger home" in out

    code, out, err = run(["token", "faucet", "500", "--json"], capsys, monkeypatch)
    assert code == 0, err
    minted = json.loads(out)
    assert minted["balance_base_units"] == str(500 * 10**18)
    assert minted["tx"].startswith("0x") and len(minted["tx"]) == 66

    friend = "0x" + "ab" * 20
    code, out, err = run(["token", "transfer", friend, "12.5"], capsys, monkeypatch)
    assert code == 0, err
    assert "sent 12.5 AIL" in out

    code, out, _ = run(["token", "balance", friend, "--json"], capsys, monkeypatch)
    assert json.loads(out)["base_units"] == str(125 * 10**17)

    code, out, err = run(["account", "register-key"], capsys, monkeypatch)
    assert code == 0, err
    code, out, _ = run(["account", "show", "--json"], capsys, monkeypatch)
    shown = json.loads(out)
    assert shown["encryption_key_registered"] is True
    assert shown["token_base_units"] == str(4875 * 10**17)

    code, out, _ = run(["chain", "status", "--json"], capsys, monkeypatch)
    status = json.loads(out)
    assert status["chain_id"] == 7357 and status["head"] >= 5 and status["pending"] == 0
    assert set(status["contracts"]) == {
        "Token",
        "KeyRegistry",
        "NodeRegistry",
        "DataMarket",
        "AuditAnchor",
        "ComputeMarket",
        "ComputePolicy",
        "ComputeProviders",
        "PrivacyLedger",
        "ModelRegistry",
        "FederatedJobs",
        "Patients",
    }
    assert status["market_windows"] == {"bid_s": 10, "reveal_s": 300, "dispute_s": 600}


@pytest.mark.rpcnode
@pytest.mark.integration
@pytest.mark.skipif(not anvil_available(), reason="Anvil: run scripts/install_ethnode.sh")
def test_deploy_to_an_external_chain_with_a_fixed_bid_window(
    home_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with AnvilNode() as node:
        monkeypatch.setenv("AILEDGER_CHAIN", node.url)
        assert run(["init"], capsys, monkeypatch)[0] == 0
        assert run(["account", "fund"], capsys, monkeypatch)[0] == 0
        code, out, err = run(
            ["chain", "deploy", "--bid-window", "7", "--json"], capsys, monkeypatch
        )
        assert code == 0, err
        deployed = json.loads(out)
        assert Path(deployed["manifest"]).parent == home_env / "deployments"
        # The bid window as fixed; reveal and dispute scaled to a chain mining on demand.
        assert deployed["market_windows"] == {"bid_s": 7, "reveal_s": 300, "dispute_s": 600}
        code, out, _ = run(["chain", "status", "--json"], capsys, monkeypatch)
        assert json.loads(out)["market_windows"] == deployed["market_windows"]
        code, out, _ = run(["chain", "deploy", "--dispute-window", "0"], capsys, monkeypatch)
        assert code != 0  # the contract would refuse it; the flag refuses it first


def error_of(
    args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> str:
    code, out, err = run(args, capsys, monkeypatch)
    assert code == 1, (out, err)
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


def test_missing_home_is_one_clear_line(
    home_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    line = error_of(["account", "show"], capsys, monkeypatch)
    assert "no ailedger home" in line and "ailedger init" in line


def test_wrong_passphrase_is_one_clear_line(
    home_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(["init"], capsys, monkeypatch)[0] == 0
    monkeypatch.setenv("AILEDGER_PASSPHRASE", "not the passphrase")
    line = error_of(["token", "transfer", "0x" + "ab" * 20, "1"], capsys, monkeypatch)
    assert "passphrase does not open" in line


def test_unreachable_rpc_url_is_one_clear_line(
    home_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(["init"], capsys, monkeypatch)[0] == 0
    line = error_of(["--chain", "http://127.0.0.1:9", "token", "balance"], capsys, monkeypatch)
    assert "cannot reach the JSON-RPC node at http://127.0.0.1:9" in line


def test_init_twice_refuses_to_overwrite(
    home_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(["init"], capsys, monkeypatch)[0] == 0
    line = error_of(["init"], capsys, monkeypatch)
    assert "AILEDGER_HOME" in line


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["token", "transfer", "0xnot-an-address", "1"], "is not an Ethereum address"),
        (["token", "transfer", "--", "0x" + "ab" * 20, "-3"], "must be a positive number"),
        (["token", "transfer", "0x" + "ab" * 20, "lots"], "is not an amount"),
        (["token", "faucet", "20000"], "per-call limit"),
        (["--chain", "ftp://x", "token", "balance"], "unknown chain"),
    ],
)
def test_bad_input_is_explained(
    args: list[str],
    expected: str,
    home_env: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert run(["init"], capsys, monkeypatch)[0] == 0
    assert expected in error_of(args, capsys, monkeypatch)


def test_init_json_reports_the_new_home(
    home_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = run(["init", "--json"], capsys, monkeypatch)
    assert code == 0, err
    created = json.loads(out)
    assert created["home"] == str(home_env)
    assert re.fullmatch(r"0x[0-9a-fA-F]{40}", created["address"])
    assert len(bytes.fromhex(created["encryption_public_key"])) == 32
    assert created["chain"] == "embedded"


def test_audit_verify_checks_the_key_on_chain_and_a_damaged_log_is_one_line(
    home_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from ailedger.chain.transactions import fund_from_dev_account
    from ailedger.session import open_session
    from ailedger.settings import load_settings

    assert run(["init"], capsys, monkeypatch)[0] == 0
    code, out, err = run(["audit", "verify"], capsys, monkeypatch)
    assert code == 0, err
    assert "covered: 0 of 0 entries by signed checkpoints, 0 by anchors on chain" in out
    assert "checkpoint key on chain: not bound yet" in out
    with open_session(load_settings(), unlock=True) as s:
        fund_from_dev_account(s.chain.web3, s.address, 10**18)
        s.audit_anchor.set_checkpoint_key(b"\x01" * 32)  # a key this log was never signed by
    code, out, err = run(["audit", "verify"], capsys, monkeypatch)
    assert code == 1 and "checkpoint key on chain: DIFFERENT" in out
    assert "receipts will not verify" in err
    audit = home_env / "audit"
    audit.mkdir(exist_ok=True)
    (audit / "audit.sqlite3").write_bytes(b"not a database" * 100)
    for command in (["audit", "verify"], ["audit", "history"]):
        code, out, err = run(command, capsys, monkeypatch)
        assert code == 1
        assert "Traceback" not in out + err
        assert "error:" in err and "is damaged" in err

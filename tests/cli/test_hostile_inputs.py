"""Hostile input through the real entry point: refused in one ``error:`` line, never a
traceback or a crash, and a refused publish leaves nothing behind."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.cli.hostile_inputs import CRASHERS, HOSTILE, PUBLISH, write_hostile_files
from tests.cli.test_cli import PASSPHRASE, run

ENV = ("AILEDGER_HOME", "AILEDGER_PASSPHRASE", "AILEDGER_CACHE_DIR", "AILEDGER_CHAIN")


@pytest.fixture(scope="module")
def hostile_home(
    tmp_path_factory: pytest.TempPathFactory, contract_cache: Path
) -> Iterator[tuple[dict[str, str], dict[str, str]]]:
    """One home on the embedded chain for the whole corpus (no tokens, no ether), and
    the corpus's files; yields (environment, files)."""
    root = tmp_path_factory.mktemp("hostile")
    env = {
        "AILEDGER_HOME": str(root / "home"),
        "AILEDGER_PASSPHRASE": PASSPHRASE,
        "AILEDGER_CACHE_DIR": str(contract_cache),
    }
    files = write_hostile_files(root / "files")
    with pytest.MonkeyPatch.context() as patch:
        for name in ENV:
            patch.delenv(name, raising=False)
        for name, value in env.items():
            patch.setenv(name, value)
        code = subprocess.run(
            [sys.executable, "-m", "ailedger.cli", "init"], capture_output=True, text=True
        )
        assert code.returncode == 0, code.stderr
        yield env, files


def _filled(args: list[str], files: dict[str, str]) -> list[str]:
    return [files[arg[1:-1]] if arg[:1] + arg[-1:] == "{}" else arg for arg in args]


def _assert_refused(code: int, out: str, err: str, args: list[str]) -> None:
    assert code in (1, 2), (args, code, out, err)
    assert "Traceback" not in err and "Traceback" not in out, (args, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), (args, err)


@pytest.mark.parametrize("args", HOSTILE, ids=[" ".join(a)[:60] for a in HOSTILE])
def test_hostile_command_line_is_refused_in_one_line(
    args: list[str],
    hostile_home: tuple[dict[str, str], dict[str, str]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    filled = _filled(args, hostile_home[1])
    _assert_refused(*run(filled, capsys, monkeypatch), filled)


def test_deep_nesting_is_refused_without_crashing(
    hostile_home: tuple[dict[str, str], dict[str, str]],
) -> None:
    """A segfault would end the test process, so these run in one child process that
    reports each outcome as a JSON line."""
    child = (
        "import io, json, sys, contextlib\n"
        "import eth  # raises the recursion limit to 100,000, as every command does\n"
        "from ailedger.cli.app import main\n"
        "for args in json.loads(sys.argv[1]):\n"
        "    sys.argv = ['ailedger', *args]\n"
        "    err = io.StringIO()\n"
        "    with contextlib.redirect_stderr(err):\n"
        "        try:\n"
        "            main(); code = 0\n"
        "        except SystemExit as exc:\n"
        "            code = exc.code\n"
        "    print(json.dumps({'code': code, 'err': err.getvalue()}), flush=True)\n"
    )
    cases = [_filled(args, hostile_home[1]) for args in CRASHERS]
    done = subprocess.run(
        [sys.executable, "-c", child, json.dumps(cases)], capture_output=True, text=True
    )
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    outcomes = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(outcomes) == len(cases), done.stdout
    for args, outcome in zip(cases, outcomes, strict=True):
        _assert_refused(outcome["code"], "", outcome["err"], args)
        assert "nested" in outcome["err"], outcome["err"]


def test_refused_publish_leaves_nothing_behind(
    hostile_home: tuple[dict[str, str], dict[str, str]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The home has no ether: the file is encrypted, the chain refuses the registration,
    and neither the ciphertext nor the owner's record of it stays."""
    from ailedger.session import open_session
    from ailedger.settings import load_settings
    from ailedger.sharing.owner_store import OwnerStore

    env, files = hostile_home
    blobs = Path(env["AILEDGER_HOME"]) / "data" / "blobs"
    before = sorted(blobs.rglob("*")) if blobs.exists() else []
    filled = _filled(PUBLISH, files)
    code, out, err = run(filled, capsys, monkeypatch)
    _assert_refused(code, out, err, filled)
    assert "the node refused the transaction" in err and "insufficient funds" in err, err
    after = sorted(p for p in blobs.rglob("*") if p.is_file()) if blobs.exists() else []
    assert [p for p in after if p not in before] == []
    with open_session(load_settings(), unlock=False) as session:
        assert OwnerStore(session.database, session.address).all() == []


def test_a_policy_no_contract_holds_is_refused_before_encrypting(
    hostile_home: tuple[dict[str, str], dict[str, str]],
) -> None:
    """The library checks too, for callers that skip the command line."""
    from ailedger.chain.contracts import Policy
    from ailedger.errors import ConfigError
    from ailedger.session import open_session
    from ailedger.settings import load_settings
    from ailedger.sharing.owner import publish

    env, files = hostile_home
    blobs = Path(env["AILEDGER_HOME"]) / "data" / "blobs"
    before = sorted(blobs.rglob("*")) if blobs.exists() else []
    source = Path(files["small"])
    for policy in (Policy(1, True, 2**256, 60, 0), Policy(1, True, 0, 60, -1)):
        with (
            open_session(load_settings(), unlock=True) as session,
            pytest.raises(ConfigError, match="2\\*\\*256"),
        ):
            publish(session, source, policy, {"title": "t"})
    assert (sorted(blobs.rglob("*")) if blobs.exists() else []) == before

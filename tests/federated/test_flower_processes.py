"""ailedger's handling of Flower's processes, against stand-ins for Flower's programs (no flwr
needed): config values reach Flower intact whatever they hold, a missing venv says what to do,
and no process outlives its owner, not even one that fled into a session of its own."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from ailedger.federated.flower import (
    VENV_ENV,
    FlowerError,
    flower_venv,
    start_superlink,
    start_supernode,
    stop_all,
    submit_run,
    supernode_confinement,
)

pytestmark = pytest.mark.integration

# One stand-in for flower-superlink, flower-supernode and flwr, told apart by its name. Each
# server starts a helper in a new session (as Flower's executors do) and records its pid.
FAKE = """#!{python}
import json, os, socket, subprocess, sys, time, tomllib
from pathlib import Path

name = Path(sys.argv[0]).name
args = sys.argv[1:]
if name == "flwr":
    config = tomllib.loads(Path(args[args.index("--run-config") + 1]).read_text())
    Path("run-config.json").write_text(json.dumps(config))
    print(json.dumps({{"success": True, "run-id": "42"}}))
    sys.exit(0)
Path("env.json").write_text(json.dumps(sorted(os.environ)))
helper = subprocess.Popen(
    [sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True
)
Path("helper.pid").write_text(str(helper.pid))
if "--node-config" in args:
    config = tomllib.loads(Path(args[args.index("--node-config") + 1]).read_text())
    Path("node-config.json").write_text(json.dumps(config))
    if "probe" in config:  # what a ClientApp started here could reach
        seen = {{"home": Path(config["probe"]).exists(), "us": Path(config["pid"]).exists()}}
        Path("probe.json").write_text(json.dumps(seen))
if os.environ.get("FAKE_FLOWER_FAIL"):
    print("cannot start: port in use", flush=True)
    sys.exit(1)
server = socket.create_server(("127.0.0.1", int(args[args.index("--port") + 1])))
time.sleep(600)
"""

NASTY = 'a"b\\c\nd\te\x7f\u00e9 = "x" injected = 1'


@pytest.fixture
def fake_venv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    # The base interpreter, linked as a venv's is: a confined SuperNode sees it, not ours.
    python = os.path.realpath(sys.executable)
    (venv / "bin" / "python").symlink_to(python)
    for name in ("flower-superlink", "flower-supernode", "flwr"):
        script = venv / "bin" / name
        script.write_text(FAKE.format(python=python))
        script.chmod(0o755)
    monkeypatch.setenv(VENV_ENV, str(venv))
    return venv


def _alive(pid: int) -> bool:
    """Running, not a zombie (nothing here reaps orphans, so the dead may linger as zombies)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_missing_venv_says_how_to_set_it_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(VENV_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(FlowerError, match=r"bash scripts/flower-env\.sh"):
        flower_venv()


def test_the_superlink_listens_on_loopback_only(fake_venv: Path, tmp_path: Path) -> None:
    """It runs without TLS, so a routable address would expose weights and tokens."""
    for host in ("0.0.0.0", "10.1.2.3", "localhost.example"):
        with pytest.raises(FlowerError, match="loopback only"):
            start_superlink(tmp_path / "work", host=host)
    assert not (tmp_path / "work").exists()


def test_stopping_kills_what_fled_into_another_session(fake_venv: Path, tmp_path: Path) -> None:
    link = start_superlink(tmp_path / "work")
    node = start_supernode(link.address, {"institution": "0xa"}, tmp_path / "work")
    # A confined SuperNode's helper has a pid of its namespace's: its tag finds it instead.
    confined = supernode_confinement() is not None
    procs = (link,) if confined else (link, node)
    helpers = [int((proc.workdir / "helper.pid").read_text()) for proc in procs]
    assert all(_alive(pid) for pid in helpers) and len(node.pids()) >= 2
    assert set(helpers) <= set(link.pids()) | set(node.pids())
    assert os.getsid(helpers[0]) != os.getsid(link.popen.pid)  # it did flee

    stop_all([node, link], grace=1.0)

    assert not any(_alive(pid) for pid in [*helpers, link.popen.pid, node.popen.pid])
    assert link.pids() == [] and node.pids() == []


def test_a_server_that_fails_to_start_leaves_nothing(
    fake_venv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_FLOWER_FAIL", "1")
    with pytest.raises(FlowerError, match=r"superlink exited.*port in use"):
        start_superlink(tmp_path / "work")
    helper = int(next((tmp_path / "work").rglob("helper.pid")).read_text())
    assert not _alive(helper)


def test_config_values_reach_flower_intact(fake_venv: Path, tmp_path: Path) -> None:
    """Quotes, backslashes and control characters in a token or a task stay inside their
    value: they can neither break the TOML Flower reads nor smuggle in another key."""
    node_config = {"institution": "0xa", "consent-token": NASTY}
    run_config: dict[str, str | int | float] = {"task": NASTY, "job": 7, "round-timeout": 2.5}
    with (
        start_superlink(tmp_path / "work") as link,
        start_supernode(link.address, node_config, tmp_path / "work") as node,
    ):
        assert submit_run(link, run_config) == 42
        assert json.loads((link.workdir / "run-config.json").read_text()) == run_config
        assert json.loads((node.workdir / "node-config.json").read_text()) == node_config


def test_config_keys_must_be_plain(fake_venv: Path, tmp_path: Path) -> None:
    with start_superlink(tmp_path / "work") as link:
        with pytest.raises(FlowerError, match="config key"):
            submit_run(link, {'job = 1\nrounds = 99\n"x': 1})
        with pytest.raises(FlowerError, match="strings, ints or floats"):
            submit_run(link, {"rounds": True})


def test_a_supernode_gets_nothing_of_ailedgers_and_its_token_is_private(
    fake_venv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ClientApp is the requester's code: no passphrase or home in its environment, and
    the desk's token in the node config is readable by the node's owner alone."""
    monkeypatch.setenv("AILEDGER_PASSPHRASE", "the wallet's")
    monkeypatch.setenv("AILEDGER_HOME", str(tmp_path / "home"))
    with pytest.raises(FlowerError, match="loopback only"):
        start_supernode("10.1.2.3:9092", {"institution": "0xa"}, tmp_path / "work")
    with (
        start_superlink(tmp_path / "work") as link,
        start_supernode(link.address, {"consent-token": "t"}, tmp_path / "work") as node,
    ):
        names = json.loads((node.workdir / "env.json").read_text())
        assert not [n for n in names if n.startswith("AILEDGER_") and "TAG" not in n]
        assert (node.workdir / "node-config.toml").stat().st_mode & 0o077 == 0
        assert node.workdir.stat().st_mode & 0o077 == 0


def test_a_confined_supernode_sees_neither_the_home_nor_ailedgers_process(
    fake_venv: Path, tmp_path: Path
) -> None:
    """What the requester's ClientApp, started by the SuperNode, could open: not the
    institution's home (its keys, its blobs) and not this process (whose memory holds
    the decrypted table)."""
    if supernode_confinement() is None:
        pytest.skip("bubblewrap cannot run here: SuperNodes run unconfined")
    home = tmp_path / "home"
    home.mkdir()
    (home / "keystore.json").write_text("{}")
    probe = {"probe": str(home / "keystore.json"), "pid": f"/proc/{os.getpid()}/environ"}
    with (
        start_superlink(tmp_path / "work") as link,
        start_supernode(link.address, probe, tmp_path / "work") as node,
    ):
        assert json.loads((node.workdir / "probe.json").read_text()) == {
            "home": False,
            "us": False,
        }

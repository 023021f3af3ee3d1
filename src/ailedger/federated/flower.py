"""Flower's deployment engine as processes that ailedger starts, watches and stops.

Flower (flwr 1.42) lives in its own virtualenv, ``.venv-flower`` (``scripts/flower-env.sh``):
its pins of fastapi, starlette, typer and protobuf clash with ailedger's, so this module never
imports flwr; it runs Flower's programs. Every process listens on 127.0.0.1 only, on a free port,
with telemetry off, the app's dependencies never installed at run time (that needs the network)
and its own ``FLWR_HOME`` under the caller's work directory, so two federations never share
state. Each process starts in a session of its own, logs to a file and is stopped with its whole
process group; what Flower detaches into other sessions (the SuperLink's executor, the apps it
spawns) carries an environment tag that teardown looks for, so no Flower process outlives its
owner.

The app the runs execute is :data:`APP_DIR` (``flowerapp/``, standard library, numpy and flwr
only). It is thin: everything ailedger decides (consent, aggregation, scores, anchoring) stays in
ailedger's processes, which the app reaches over loopback HTTP, every request with
``Authorization: Bearer <token>``.

Run config (``flwr run --run-config``, all scalars): ``coordinator-url``, ``coordinator-token``,
``job`` (int), ``rounds`` (int), ``round-timeout`` (seconds), ``min-nodes`` (int: the ServerApp
waits up to ``round-timeout`` for this many SuperNodes before querying them) and ``task``, a JSON
string ``{"features": [...], "label": "outcome", "positive": "yes", "lower": [...],
"upper": [...], "local_epochs": 5, "learning_rate": 0.5, "batch_size": 32}``. The model is
logistic regression: ``len(features) + 1`` weights, the last one the bias; features are scaled
to [-1, 1] by ``lower``/``upper`` (clamped); the label is 1 iff the column equals ``positive``.

Node config (the SuperNode's): ``institution``, ``dataset``, ``consent-url``, ``consent-token``.

The ServerApp's loop:

1. Query every connected node for its ``institution`` and ``dataset``.
2. Per round r: ``POST {coordinator-url}/fl/round/start`` ``{"round": r, "nodes": [{"node_id",
   "institution", "dataset"}]}`` -> ``{"continue": true, "selected": [node_id], "weights": [..]}``
   or ``{"continue": false, "reason": ".."}`` (stop); send "train" to the selected nodes and wait
   at most ``round-timeout``; a node that errs (consent refused) or does not answer (killed) is
   failed; ``POST /fl/round/result`` ``{"round": r, "updates": [{"node_id", "institution",
   "weights", "num_examples"}], "failed": [{"node_id", "institution", "reason"}]}`` ->
   ``{"weights": [..], "continue": bool}``.
3. ``POST /fl/done`` ``{"rounds_run": n}``. A non-200 answer stops the run, its text in the log.

The ClientApp's train: ``POST {consent-url}/fl/train`` ``{"round": r, "weights": [..], "task":
{..}}`` -> ``{"ok": true, "weights": [..], "num_examples": n}`` or ``{"ok": false, "reason":
".."}`` (refused: an error reply; a desk that errs or is down counts as a refusal). The
institution's desk trains in ailedger's process (``ailedger.federated.institution``): the
app, which comes with the requester's run, never sees the data.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from ailedger.errors import AiledgerError

VENV_ENV = "AILEDGER_FLOWER_VENV"
# No __init__.py there: the app is not a package of ailedger (flwr is not in ailedger's venv),
# so walking ailedger's packages never imports it.
APP_DIR = Path(__file__).parent / "flowerapp"
_TAG_ENV = "AILEDGER_FLOWER_TAG"
_REPO_VENV = Path(__file__).resolve().parents[3] / ".venv-flower"
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
RunConfig = Mapping[str, str | int | float]


class FlowerError(AiledgerError):
    """Flower's processes could not be found, started or run; the message says which and why."""


@dataclass(frozen=True)
class RunStatus:
    """A finished run as the SuperLink reports it: ``status`` is e.g. ``finished:completed``."""

    run_id: int
    status: str
    details: str
    logs: str

    @property
    def ok(self) -> bool:
        return self.status == "finished:completed"


@dataclass
class FlowerProcess:
    """One Flower program we started, the head of its own session, logging to ``log_path``."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    tag: str
    workdir: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def pids(self) -> list[int]:
        """Live processes with this one's tag: itself and all it started, in any session."""
        return sorted(_tagged_pids(self.tag))

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL the process group and every tagged descendant: a crash, nothing flushed."""
        _signal_group(self.popen.pid, signal.SIGKILL)
        self.popen.wait()
        deadline = time.monotonic() + 5.0
        while (left := list(_tagged_pids(self.tag))) and time.monotonic() < deadline:
            for pid in left:  # not our children: wait by watching them go
                _signal_pid(pid, signal.SIGKILL)
            time.sleep(0.05)

    def stop(self, grace: float = 5.0) -> None:
        stop_all([self], grace)

    def __enter__(self) -> FlowerProcess:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


@dataclass
class SuperLink(FlowerProcess):
    """The coordinator's SuperLink; ``flwr_home`` holds the CLI's config.toml pointing at it."""

    address: str = ""
    flwr_home: Path = field(default_factory=Path)

    def __enter__(self) -> SuperLink:
        return self


@dataclass
class SuperNode(FlowerProcess):
    """One institution's SuperNode, connected to ``superlink_address``."""

    node_config: dict[str, str] = field(default_factory=dict)

    def __enter__(self) -> SuperNode:
        return self


def flower_venv() -> Path:
    """The virtualenv holding flwr: ``$AILEDGER_FLOWER_VENV``, else the repo's ``.venv-flower``."""
    configured = os.environ.get(VENV_ENV)
    venv = Path(configured) if configured else _REPO_VENV
    if not (venv / "bin" / "flower-superlink").is_file():
        raise FlowerError(
            f"Flower's virtualenv is missing at {venv} (no bin/flower-superlink): run "
            f"`bash scripts/flower-env.sh` in the ailedger repository, or set {VENV_ENV} to a "
            "virtualenv with flwr 1.42 installed."
        )
    return venv


def start_superlink(workdir: Path, host: str = "127.0.0.1", timeout: float = 60.0) -> SuperLink:
    """Start a SuperLink on a free port of ``host`` and wait until it answers there."""
    if not _is_loopback(host):
        raise FlowerError(
            f"the SuperLink may listen on loopback only, not {host}: it runs without TLS "
            "(--insecure); use 127.0.0.1 and reach other machines through a TLS tunnel"
        )
    home = _fresh_dir(workdir / f"superlink-{secrets.token_hex(4)}")
    port = _free_port(host)
    address = f"{host}:{port}"
    argv = ["flower-superlink", "--insecure", "--disable-runtime-dependency-installation"]
    argv += ["--host", host, "--port", str(port)]
    base = _spawn("superlink", argv, home, home / "flwr-home")
    link = SuperLink(**vars(base), address=address, flwr_home=home / "cli-home")
    with _stopped_on_failure([link]):
        link.flwr_home.mkdir()
        (link.flwr_home / "config.toml").write_text(
            f'[superlink]\ndefault = "local"\n\n[superlink.local]\n'
            f'address = "{address}"\ninsecure = true\n'
        )
        _wait_listening(link, host, port, timeout)
    return link


def start_supernode(
    superlink_address: str, node_config: Mapping[str, str], workdir: Path, timeout: float = 60.0
) -> SuperNode:
    """Start a SuperNode for one institution; ``node_config`` reaches its ClientApp."""
    return start_supernodes(superlink_address, [node_config], workdir, timeout)[0]


def start_supernodes(
    superlink_address: str,
    node_configs: Sequence[Mapping[str, str]],
    workdir: Path,
    timeout: float = 60.0,
    readable: Sequence[Path] = (),
) -> list[SuperNode]:
    """Start several SuperNodes at once (each takes seconds to import Flower), then wait for
    all; if one fails, none is left running. A confined SuperNode sees its own directory
    and, read-only, the ``readable`` paths (none for an institution: its desk holds the
    data)."""
    nodes: list[SuperNode] = []
    ports: list[int] = []
    with _stopped_on_failure(nodes):  # the list as it is when something fails
        for node_config in node_configs:
            node, port = _spawn_supernode(superlink_address, node_config, workdir, readable)
            nodes.append(node)
            ports.append(port)
        for node, port in zip(nodes, ports, strict=True):
            _wait_listening(node, "127.0.0.1", port, timeout)
    return nodes


def _spawn_supernode(
    superlink_address: str,
    node_config: Mapping[str, str],
    workdir: Path,
    readable: Sequence[Path] = (),
) -> tuple[SuperNode, int]:
    host = superlink_address.rpartition(":")[0].strip("[]")
    if not _is_loopback(host):
        raise FlowerError(
            f"a SuperNode connects to a SuperLink on loopback only, not {superlink_address}: "
            "it runs without TLS (--insecure); reach other machines through a TLS tunnel"
        )
    home = _fresh_dir(workdir / f"supernode-{secrets.token_hex(4)}")
    port = _free_port("127.0.0.1")
    # A TOML file, not `k="v" ...` on the command line: Flower splits that with a regular
    # expression that cuts values holding quotes or spaces. It holds the desk's token: the
    # node's owner alone may read it.
    config_file = home / "node-config.toml"
    config_file.touch(mode=0o600)
    config_file.write_text(_toml_table(node_config))
    argv = ["flower-supernode", "--insecure", "--superlink", superlink_address]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--node-config", str(config_file)]
    base = _spawn("supernode", argv, home, home / "flwr-home", confine=readable or True)
    return SuperNode(**vars(base), node_config=dict(node_config)), port


def submit_run(superlink: SuperLink, run_config: RunConfig, app_dir: Path = APP_DIR) -> int:
    """Submit ``app_dir`` with ``run_config`` (keys must be defaults in its pyproject.toml)."""
    config_file = superlink.workdir / f"run-config-{secrets.token_hex(4)}.toml"
    config_file.write_text(_toml_table(run_config))
    argv = ["flwr", "run", str(app_dir), "--run-config", str(config_file), "--format", "json"]
    out = _flwr_cli(superlink, argv, timeout=120.0)
    try:
        return int(json.loads(out[out.index("{") :])["run-id"])
    except (ValueError, KeyError) as err:
        raise FlowerError(
            f"`flwr run` did not submit the app at {app_dir}: {out.strip()[-2000:]}; check the "
            "run config keys against the app's [tool.flwr.app.config] and the SuperLink's log "
            f"({superlink.log_path})."
        ) from err


def wait_run(superlink: SuperLink, run_id: int, timeout: float = 600.0) -> RunStatus:
    """Block until the run finishes (its log stream ends), then read its status and logs."""
    logs = _flwr_cli(superlink, ["flwr", "log", str(run_id), "--stream"], timeout=timeout)
    out = _flwr_cli(superlink, ["flwr", "ls", "--run-id", str(run_id), "--format", "json"])
    try:
        run = json.loads(out[out.index("{") :])["runs"][0]
    except (ValueError, KeyError, IndexError) as err:
        raise FlowerError(f"`flwr ls` gave no status for run {run_id}: {out[-2000:]}") from err
    return RunStatus(run_id, str(run["status"]), str(run.get("status-details", "")), logs)


def stop_all(processes: Iterable[FlowerProcess], grace: float = 5.0) -> None:
    """SIGTERM every process group at once, SIGKILL what is left after ``grace`` seconds,
    then every tagged descendant that escaped into a session of its own."""
    running = list(processes)
    for proc in running:
        if proc.alive():
            _signal_group(proc.popen.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in running:
        with suppress(subprocess.TimeoutExpired):
            proc.popen.wait(max(0.0, deadline - time.monotonic()))
        proc.kill()


def _spawn(
    name: str,
    argv: list[str],
    workdir: Path,
    flwr_home: Path,
    *,
    confine: bool | Sequence[Path] = False,
) -> FlowerProcess:
    """``confine``: run under bubblewrap where it can run (True), and let it read these
    paths too (a sequence)."""
    tag = secrets.token_hex(8)
    log_path = workdir / f"{name}.log"
    command = [str(flower_venv() / "bin" / argv[0]), *argv[1:]]
    if confine and supernode_confinement() is not None:
        readable = [] if confine is True else list(confine)
        command = _in_bubblewrap(command, workdir, readable)
    with log_path.open("wb") as log:
        popen = subprocess.Popen(
            command,
            cwd=workdir,
            env=_flower_env(flwr_home, tag),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return FlowerProcess(name, popen, log_path, tag, workdir)


def supernode_confinement() -> str | None:
    """How a SuperNode (and the requester's ClientApps it starts) is confined here:
    "bubblewrap" (its own process, mount and IPC namespaces; it sees Flower's venv, the
    system's programs and its own directory, not this process, the home or /tmp), or None
    where bubblewrap cannot run (then the table held in memory and an environment without
    ailedger's variables are what stand between the ClientApp and the data)."""
    from ailedger.compute.provider.confine import confinement

    return "bubblewrap" if confinement() == "bwrap" else None


def _in_bubblewrap(command: list[str], workdir: Path, readable: Sequence[Path]) -> list[str]:
    from ailedger.compute.provider.confine import host_links

    venv = str(flower_venv().resolve())
    where = str(workdir)
    base = _base_python()
    interpreter = [] if base.is_relative_to("/usr") else ["--ro-bind", str(base), str(base)]
    return [
        "bwrap",
        "--unshare-all",
        "--share-net",  # loopback to the SuperLink and to the desk
        "--die-with-parent",
        "--tmpfs", "/tmp",  # first: the directories bound below may lie under /tmp
        "--ro-bind", "/usr", "/usr",
        *host_links(),
        "--ro-bind", "/etc", "/etc",
        *interpreter,
        "--ro-bind", venv, venv,
        *[arg for path in readable for arg in ("--ro-bind", str(path), str(path))],
        "--bind", where, where,
        "--proc", "/proc",
        "--dev", "/dev",
        "--chdir", where,
        "--",
        *command,
    ]  # fmt: skip


def _base_python() -> Path:
    """The installation Flower's venv was made from (its ``bin/python`` links there)."""
    return Path(os.path.realpath(flower_venv() / "bin" / "python")).parents[1]


def _flower_env(flwr_home: Path, tag: str) -> dict[str, str]:
    # Nothing of ailedger's (the passphrase, the home) reaches Flower's processes: a
    # ClientApp there is the requester's code.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AILEDGER_")}
    # The SuperLink and SuperNodes start Flower's other programs (flower-superexec,
    # flwr-serverapp, flwr-clientapp) by name, so Flower's venv must come first on PATH.
    env["PATH"] = f"{flower_venv() / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env.pop("VIRTUAL_ENV", None)
    env.pop("PYTHONPATH", None)  # ailedger's source tree must not shadow Flower's packages
    env.update(FLWR_HOME=str(flwr_home), FLWR_TELEMETRY_ENABLED="0", PYTHONUNBUFFERED="1")
    # Flower's executors look for work to start every second by default: a second of idling
    # before each ServerApp and each ClientApp message, for a few cheap loopback requests.
    env["FLWR_SUPEREXEC_TASK_POLL_INTERVAL"] = "0.2"
    env[_TAG_ENV] = tag
    return env


def _flwr_cli(superlink: SuperLink, argv: list[str], timeout: float = 60.0) -> str:
    """Run a ``flwr`` CLI command against ``superlink``; its output, or FlowerError."""
    env = _flower_env(superlink.flwr_home, superlink.tag)
    cmd = [str(flower_venv() / "bin" / argv[0]), *argv[1:]]
    try:
        done = subprocess.run(
            cmd, env=env, cwd=superlink.workdir, capture_output=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as err:
        raise FlowerError(
            f"`{' '.join(argv[:3])}` did not finish within {timeout:g} s; the SuperLink's log is "
            f"{superlink.log_path}. Raise the timeout or stop the run with `flwr stop`."
        ) from err
    out = (done.stdout + done.stderr).decode(errors="replace")
    if done.returncode != 0:
        raise FlowerError(
            f"`{' '.join(argv[:3])}` failed ({done.returncode}): {out.strip()[-2000:]}; the "
            f"SuperLink's log is {superlink.log_path}."
        )
    return out


def _toml_table(values: RunConfig) -> str:
    for key in values:
        if not _BARE_KEY.fullmatch(key):
            raise FlowerError(f"config key {key!r} must be letters, digits, '-' or '_'")
    return "".join(f"{key} = {_toml_value(value)}\n" for key, value in values.items())


def _toml_value(value: str | int | float) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise FlowerError(f"run config values are strings, ints or floats, not {value!r}")
    if not isinstance(value, str):
        return repr(value)
    # TOML basic string: escape what TOML forbids raw (quotes, backslash, control chars).
    return '"' + "".join(_toml_char(c) for c in value) + '"'


def _toml_char(c: str) -> str:
    if c in '"\\' or ord(c) < 0x20 or ord(c) == 0x7F:
        return f"\\u{ord(c):04x}"
    return c


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_listening(proc: FlowerProcess, host: str, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            break
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            if sock.connect_ex((host, port)) == 0:
                return
        time.sleep(0.1)
    why = "exited" if not proc.alive() else f"did not listen on {host}:{port} within {timeout:g} s"
    raise FlowerError(
        f"the {proc.name} {why}; its log ({proc.log_path}) ends with: {proc.log()[-2000:]}"
    )


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _fresh_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=False)
    path.chmod(0o700)
    return path.resolve()


@contextmanager
def _stopped_on_failure(procs: Sequence[FlowerProcess]) -> Iterator[None]:
    """Kill ``procs`` if the block raises: a half-started process is never left behind."""
    try:
        yield
    except BaseException:
        for proc in procs:
            proc.kill()
        raise


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _signal_pid(pid: int, sig: signal.Signals) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def _tagged_pids(tag: str) -> Iterator[int]:
    """Processes whose environment carries ``tag``: ours, whatever session they moved to."""
    marker = f"{_TAG_ENV}={tag}".encode()
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0"):
            yield int(entry.name)

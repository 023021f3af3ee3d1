"""Attacks on the sandbox: each is stopped with the right reason, and the next job runs."""

from __future__ import annotations

import contextlib
import shutil
import socket
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ailedger.compute.provider import sandbox as sb
from ailedger.compute.provider.sandbox import (
    ConfinementUnavailableError,
    Limits,
    Sandbox,
    SandboxResult,
)

MODES = [m for m in ("bwrap", "unshare") if shutil.which(m)]
LIMITS = Limits(cpu_seconds=5, memory_mb=512, wall_seconds=20, output_mb=8, max_processes=32)


@pytest.fixture
def jobs_dir() -> Iterator[Path]:
    """Job directories must be reachable by the job's uid (pytest's tmp is root-only)."""
    path = Path(tempfile.mkdtemp(prefix="ailedger-test-jobs-"))
    path.chmod(0o711)
    yield path
    shutil.rmtree(path)


@pytest.fixture(params=["bwrap", "unshare"])
def box(request: pytest.FixtureRequest, jobs_dir: Path) -> Sandbox:
    mode = str(request.param)
    if mode not in MODES or sb.confinement() is None:
        pytest.skip(f"{mode} unavailable here (apt-get install bubblewrap; user namespaces)")
    return Sandbox(mode=mode, base_dir=jobs_dir)


def run(
    box: Sandbox,
    tmp_path: Path,
    code: str,
    limits: Limits = LIMITS,
    inputs: dict[str, Path] | None = None,
    lines: list[str] | None = None,
) -> SandboxResult:
    bundle = tmp_path / f"bundle{time.monotonic_ns()}"
    bundle.mkdir()
    (bundle / "job.py").write_text(textwrap.dedent(code))
    lines = [] if lines is None else lines
    result = box.run(
        bundle,
        "job.py",
        "python",
        limits,
        inputs=inputs,
        on_line=lambda s, line: lines.append(f"{s}:{line}"),
    )
    # the next job still runs fine
    ok = tmp_path / f"ok{time.monotonic_ns()}"
    ok.mkdir()
    (ok / "job.py").write_text("open('output/r', 'w').write('fine'); print('done')")
    after = box.run(ok, "job.py", "python", LIMITS)
    assert after.reason == "ok" and (after.output_dir / "r").read_text() == "fine"
    return result


def out(result: SandboxResult) -> str:
    return result.stdout_path.read_text() + result.stderr_path.read_text()


def test_benign_job_streams_lines(box: Sandbox, tmp_path: Path) -> None:
    data = tmp_path / "ds"
    data.mkdir()
    (data / "a.csv").write_text("1,2\n")
    lines: list[str] = []
    r = run(
        box,
        tmp_path,
        """
        import os
        print(open(os.environ['AILEDGER_INPUTS'] + '/ds/a.csv').read().strip())
        print('gpu=' + repr(os.environ['CUDA_VISIBLE_DEVICES']))
        open(os.environ['AILEDGER_OUTPUT'] + '/m.txt', 'w').write('model')
    """,
        inputs={"ds": data},
        lines=lines,
    )
    assert r.reason == "ok" and r.exit_code == 0
    assert lines == ["stdout:1,2", "stdout:gpu=''"]
    assert (r.output_dir / "m.txt").read_text() == "model"
    assert r.usage.wall_seconds > 0 and r.usage.max_rss_mb > 0


def test_no_network(box: Sandbox, tmp_path: Path) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    port = server.getsockname()[1]
    accepted: list[object] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            accepted.append(server.accept())

    t = threading.Thread(target=accept)
    t.start()
    r = run(
        box,
        tmp_path,
        f"""
        import socket
        for host in ('127.0.0.1', '1.1.1.1'):
            try:
                socket.create_connection((host, {port}), timeout=2)
                print('CONNECTED', host)
            except OSError as e:
                print('blocked', host, e)
    """,
    )
    t.join()
    server.close()
    assert "CONNECTED" not in out(r) and out(r).count("blocked") == 2
    assert accepted == []


def test_cannot_read_outside(box: Sandbox, tmp_path: Path) -> None:
    secret = tmp_path / "provider-secret.txt"
    secret.write_text("TOPSECRET")
    r = run(
        box,
        tmp_path,
        f"""
        import os
        for p in ('/etc/shadow', '/etc/passwd', '/root', '/home', {str(secret)!r}):
            try:
                if os.path.isdir(p):
                    print('LISTED', p, os.listdir(p))
                else:
                    print('READ', p, open(p).read()[:20])
            except OSError as e:
                print('denied', p)
    """,
    )
    text = out(r)
    assert "TOPSECRET" not in text and "READ" not in text and "LISTED" not in text
    assert text.count("denied") == 5


def test_cannot_write_inputs(box: Sandbox, tmp_path: Path) -> None:
    data = tmp_path / "ds"
    data.mkdir()
    (data / "a.csv").write_text("original")
    r = run(
        box,
        tmp_path,
        """
        import os
        for attempt in (lambda: open('/inputs/ds/a.csv', 'a').write('x'),
                        lambda: os.chmod('/inputs/ds/a.csv', 0o666),
                        lambda: open('/inputs/ds/new', 'w'),
                        lambda: os.unlink('/inputs/ds/a.csv')):
            try:
                attempt(); print('WROTE')
            except OSError as e:
                print('denied', e.errno)
    """,
        inputs={"ds": data},
    )
    assert "WROTE" not in out(r) and out(r).count("denied") == 4
    assert (data / "a.csv").read_text() == "original"


def test_memory_limit(box: Sandbox, tmp_path: Path) -> None:
    r = run(box, tmp_path, "x = bytearray(1 << 30)\nprint('ALLOCATED')")
    assert r.reason == "memory" and "ALLOCATED" not in out(r)


def test_cpu_limit(box: Sandbox, tmp_path: Path) -> None:
    r = run(box, tmp_path, "while True: pass", Limits(1, 512, 20))
    assert r.reason == "cpu-time" and r.usage.wall_seconds < 10


def test_wall_limit(box: Sandbox, tmp_path: Path) -> None:
    r = run(box, tmp_path, "import time\nprint('sleeping')\ntime.sleep(60)", Limits(5, 512, 1))
    assert r.reason == "wall-time" and r.usage.wall_seconds < 5


def test_huge_output_single_file(box: Sandbox, tmp_path: Path) -> None:
    r = run(
        box,
        tmp_path,
        """
        with open('output/big', 'wb') as f:
            for _ in range(100):
                f.write(b'x' * (1 << 20))
    """,
    )
    assert r.reason == "output-too-large"
    assert (r.output_dir / "big").stat().st_size <= LIMITS.output_mb << 20


def test_huge_output_many_files(box: Sandbox, tmp_path: Path) -> None:
    r = run(
        box,
        tmp_path,
        """
        import time
        for i in range(1000):
            open(f'output/f{i}', 'wb').write(b'x' * (1 << 20))
            time.sleep(0.005)
    """,
    )
    assert r.reason == "output-too-large"


def test_huge_logs(box: Sandbox, tmp_path: Path) -> None:
    r = run(
        box, tmp_path, "while True: print('x' * 1000)", Limits(5, 512, 20, output_mb=8, log_mb=1)
    )
    assert r.reason == "output-too-large" and r.stdout_path.stat().st_size <= 1 << 20


def test_fork_bomb(box: Sandbox, tmp_path: Path) -> None:
    r = run(
        box,
        tmp_path,
        """
        import os, time
        made = 0
        try:
            for _ in range(500):
                if os.fork() == 0:
                    time.sleep(30)
                    os._exit(0)
                made += 1
        except OSError as e:
            print('fork refused after', made)
            raise SystemExit(3)
        print('FORKED ALL')
    """,
    )
    assert "FORKED ALL" not in out(r) and "fork refused" in out(r)
    assert r.reason == "nonzero-exit" and r.usage.wall_seconds < 15


def test_refuses_without_confinement(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sb, "confinement", lambda: None)
    with pytest.raises(ConfinementUnavailableError, match="allow_unconfined"):
        Sandbox()
    assert Sandbox(allow_unconfined=True).mode is None


def test_unconfined_still_limits(tmp_path: Path, jobs_dir: Path) -> None:
    box = Sandbox(mode=None, allow_unconfined=True, base_dir=jobs_dir)
    r = run(box, tmp_path, "while True: pass", Limits(1, 512, 20))
    assert r.reason == "cpu-time" and r.confinement is None

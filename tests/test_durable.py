"""atomic_write: mode before data, old or new content after a crash, no stray temp files."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ailedger import _durable
from ailedger._durable import (
    PRIVATE_FILE_MODE,
    PUBLIC_FILE_MODE,
    atomic_write,
    atomic_write_json,
    replace_durably,
)


def _temp_files(directory: Path) -> list[Path]:
    return sorted(directory.glob(".*.tmp"))


@pytest.mark.parametrize("mode", [PRIVATE_FILE_MODE, PUBLIC_FILE_MODE])
def test_mode_is_set_before_any_data_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: int
) -> None:
    seen: list[tuple[int, int]] = []
    real_write_all = _durable._write_all

    def observe(fd: int, data: bytes) -> None:
        # Before any data and half-way through, the temporary file has its final mode.
        for part in (data[:0], data[: len(data) // 2]):
            real_write_all(fd, part)
            [tmp] = _temp_files(tmp_path)
            info = tmp.stat()
            seen.append((stat.S_IMODE(info.st_mode), info.st_size))
        real_write_all(fd, data[len(data) // 2 :])

    monkeypatch.setattr(_durable, "_write_all", observe)
    old_umask = os.umask(0o022)
    try:
        atomic_write(tmp_path / "secret", b"x" * 1000, mode=mode)
    finally:
        os.umask(old_umask)
    assert seen == [(mode, 0), (mode, 500)]
    assert stat.S_IMODE((tmp_path / "secret").stat().st_mode) == mode


def test_umask_narrows_but_never_widens(tmp_path: Path) -> None:
    old_umask = os.umask(0o077)
    try:
        atomic_write(tmp_path / "f", b"data", mode=PUBLIC_FILE_MODE)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE((tmp_path / "f").stat().st_mode) == 0o600


def test_write_leaves_no_temp_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "f.bin"
    atomic_write(target, b"one")
    atomic_write(target, b"two")
    assert target.read_bytes() == b"two"
    with pytest.raises(TypeError):
        atomic_write(target, "text")  # type: ignore[arg-type]
    assert [p.name for p in target.parent.iterdir()] == ["f.bin"]
    assert target.read_bytes() == b"two"


def test_failure_mid_write_keeps_the_old_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "state.json"
    atomic_write_json(target, {"version": 1})

    def half_then_fail(fd: int, data: bytes) -> None:
        os.write(fd, data[:3])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_durable, "_write_all", half_then_fail)
    with pytest.raises(OSError, match="No space"):
        atomic_write_json(target, {"version": 2})
    assert target.read_text() == '{"version": 1}\n'
    assert _temp_files(tmp_path) == []


_WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from ailedger._durable import atomic_write

    target = Path(sys.argv[1])
    print("ready", flush=True)
    n = 0
    while True:
        n += 1
        # Big enough that a kill often lands in the middle of a write.
        atomic_write(target, (b"%08d" % n) * 250_000)
    """
)


def test_kill_9_leaves_old_or_new_content(tmp_path: Path) -> None:
    target = tmp_path / "big.bin"
    atomic_write(target, (b"%08d" % 0) * 250_000)
    for delay in (0.05, 0.15, 0.3):
        writer = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(target)], stdout=subprocess.PIPE, text=True
        )
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "ready"
        time.sleep(delay)
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        writer.stdout.close()
        data = target.read_bytes()
        assert len(data) == 2_000_000
        assert data == data[:8] * 250_000  # one whole version, never a mix or a truncation


def test_replace_durably_moves_a_streamed_file(tmp_path: Path) -> None:
    source, target = tmp_path / ".upload", tmp_path / "out" / "file.bin"
    target.parent.mkdir()
    source.write_bytes(b"streamed")
    replace_durably(source, target)
    assert target.read_bytes() == b"streamed"
    assert not source.exists()

"""Process plumbing of the sandbox: probing namespace tools, preparing directories, pumping logs.

Split from :mod:`ailedger.compute.provider.sandbox` (whose docstring holds the threat model). The
``unshare`` fallback builds a chroot by hand: read-only binds of ``/usr`` and the runtime, the
job's ``/work``, a read-only ``/inputs``, four device nodes and a fresh ``/proc``; then it drops
every capability (``setpriv``) so the job cannot remount its inputs writable.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO

LineCallback = Callable[[str, str], None]
NOBODY = 65534


def _job_uid() -> int | None:
    return NOBODY if os.geteuid() == 0 else None


def host_links() -> list[str]:
    args: list[str] = []
    for name in ("bin", "sbin", "lib", "lib64", "lib32"):
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), f"/{name}"]
        elif path.is_dir():
            args += ["--ro-bind", str(path), f"/{name}"]
    return args


# Every namespace a job must not share with the provider: its own user (mapped to root
# inside only), network (none), processes, mounts, IPC and hostname.
UNSHARE_NAMESPACES = (
    "unshare",
    "--user",
    "--map-root-user",
    "--net",
    "--pid",
    "--mount",
    "--ipc",
    "--uts",
    "--fork",
)


@functools.cache
def confinement() -> str | None:
    """Which namespace tool confines jobs here: "bwrap", "unshare" or None (probed once)."""
    uid = _job_uid()
    probes = {
        "bwrap": [
            "bwrap",
            "--unshare-all",
            "--die-with-parent",
            "--cap-drop",
            "ALL",
            "--ro-bind",
            "/usr",
            "/usr",
            *host_links(),
            "true",
        ],
        "unshare": [*UNSHARE_NAMESPACES, "true"],
    }
    for name, argv in probes.items():
        if shutil.which(argv[0]) is None:
            continue
        try:
            done = subprocess.run(
                argv,
                capture_output=True,
                timeout=20,
                check=False,
                user=uid,
                group=uid,
                extra_groups=[] if uid else None,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0:
            return name
    return None


_UNSHARE_SCRIPT = r"""
set -e
PATH=/usr/sbin:/usr/bin:/sbin:/bin
R="$1"; shift
for d in usr $RO; do mount --rbind "/$d" "$R/$d"; mount -o remount,bind,ro "$R/$d"; done
for d in null zero random urandom; do mount --bind "/dev/$d" "$R/dev/$d"; done
mount --bind "$WORK" "$R/work"
mount --bind "$INPUTS" "$R/inputs"; mount -o remount,bind,ro "$R/inputs"
mount -t proc proc "$R/proc"
cd /
chroot "$R" /usr/bin/setpriv --bounding-set=-all --inh-caps=-all --no-new-privs \
    sh -c 'unset WORK INPUTS RO; PATH=/usr/bin:/bin; cd /work && exec "$@"' job "$@"
"""


def _tree_size(root: Path) -> tuple[int, int]:
    """(total bytes, largest file) under root, not following links."""
    total = largest = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            try:
                size = os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                continue
            total += size
            largest = max(largest, size)
    return total, largest


def _copy_read_only(src: Path, dest: Path) -> None:
    if src.is_dir():
        shutil.copytree(src, dest, symlinks=False)
    else:
        shutil.copyfile(src, dest)
    for dirpath, dirs, files in os.walk(dest):
        for name in files:
            os.chmod(os.path.join(dirpath, name), 0o444)
        for name in dirs:
            os.chmod(os.path.join(dirpath, name), 0o555)
    os.chmod(dest, 0o555 if dest.is_dir() else 0o444)


def _killpg(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _own_processes() -> int:
    uid, count = os.getuid(), 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    count += 1
            except OSError:
                pass
    return count


def _pump(
    stream: IO[bytes] | None,
    name: str,
    path: Path,
    cap: int,
    on_line: LineCallback | None,
    over: threading.Event,
    tail: list[str],
) -> None:
    """Copy one pipe to its log file line by line, up to ``cap`` bytes, then drain it."""
    if stream is None:
        return
    written = 0
    with stream, open(path, "wb") as out:
        while line := stream.readline(65536):
            if written + len(line) > cap:
                over.set()
                continue
            written += len(line)
            out.write(line)
            text = line.decode("utf-8", "replace").rstrip("\n")
            if name == "stderr":
                tail.append(text + "\n")
                del tail[:-50]
            if on_line is not None:
                on_line(name, text)

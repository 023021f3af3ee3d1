"""Run a stranger's job on the provider's machine without letting it harm the provider.

Threat model: the job's code is hostile. It may try to reach the network (exfiltrate the
provider's data or the requester's inputs, attack the LAN), read files outside its directory
(keys, ``/etc/shadow``, the provider's home), tamper with its inputs (so a verifier sees other
data), and exhaust the machine (memory, CPU, disk, processes) to hurt other jobs. Each limit:

* **namespaces** (bubblewrap, else ``unshare`` + chroot): a private network namespace with no
  interfaces but loopback, so no socket reaches anything outside; a mount namespace showing only
  ``/usr`` (read-only), the runtime, ``/work`` (its private copy of the bundle, writable) and
  ``/inputs`` (read-only bind); a pid namespace, so killing its init kills every descendant.
* **a separate uid** (65534 when the provider runs as root) and no capabilities, so file
  permissions (inputs are ``chmod a-w``) and ``RLIMIT_NPROC`` apply; root ignores both.
* ``RLIMIT_CPU`` stops busy loops, ``RLIMIT_AS`` bounds memory so one job cannot push the
  machine into swap or the OOM killer, ``RLIMIT_FSIZE`` plus a periodic size check of ``/work``
  and a cap on logs bound disk use, ``RLIMIT_NPROC`` stops fork bombs, and a **wall-clock** limit
  kills the whole process group of a job that sleeps or blocks instead of computing.

Without any namespace tool a job can only run *unconfined* (limits and a private directory,
but network and file reads open); :class:`Sandbox` refuses that unless built with
``allow_unconfined=True``, and the provider's offer must then say so on chain.
GPU jobs skip ``RLIMIT_AS`` (CUDA reserves huge virtual address ranges); their memory bound is
the GPU's. Usage comes from ``wait4``: CPU seconds and max RSS of the job and its reaped children.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ailedger.compute.provider.confine import (
    _UNSHARE_SCRIPT,
    NOBODY,
    UNSHARE_NAMESPACES,
    LineCallback,
    _copy_read_only,
    _job_uid,
    _killpg,
    _own_processes,
    _pump,
    _tree_size,
    confinement,
    host_links,
)
from ailedger.errors import AiledgerError

__all__ = [
    "NOBODY",
    "ConfinementUnavailableError",
    "Limits",
    "LineCallback",
    "Runtime",
    "Sandbox",
    "SandboxError",
    "SandboxResult",
    "Usage",
    "confinement",
    "python_runtime",
]

Reason = Literal[
    "ok",
    "nonzero-exit",
    "cpu-time",
    "memory",
    "wall-time",
    "output-too-large",
    "killed",
    "cancelled",
]
_MEMORY_MARKERS = ("MemoryError", "Cannot allocate memory", "std::bad_alloc", "out of memory")


class SandboxError(AiledgerError):
    """A job could not be started in the sandbox."""


class ConfinementUnavailableError(SandboxError):
    """No namespace tool works here and unconfined runs were not allowed."""


@dataclass(frozen=True)
class Runtime:
    """A named environment a provider advertises: the command that runs an entry file and the
    host paths it needs (bound read-only at the same place inside the sandbox)."""

    name: str
    command: tuple[str, ...]
    ro_paths: tuple[str, ...] = ()


def python_runtime(name: str = "python", interpreter: str | None = None) -> Runtime:
    """A Python runtime; by default the system ``/usr/bin/python3`` (standard library only)."""
    exe = interpreter or (
        "/usr/bin/python3"
        if Path("/usr/bin/python3").exists()
        else os.path.realpath(sys.executable)
    )
    real = Path(os.path.realpath(exe))
    prefix = real.parent.parent
    ro = () if str(prefix).startswith("/usr") else (str(prefix),)
    if Path(exe).parent.parent != prefix and not exe.startswith("/usr/"):
        ro = (*ro, str(Path(exe).parent.parent))  # a virtualenv: its dir and its base interpreter
    return Runtime(name, (exe, "-s", "-u"), ro)


@dataclass(frozen=True)
class Limits:
    """Per-job limits; sizes in MiB, times in seconds."""

    cpu_seconds: float
    memory_mb: int
    wall_seconds: float
    output_mb: int = 1024
    max_processes: int = 64
    log_mb: int = 16


@dataclass(frozen=True)
class Usage:
    cpu_seconds: float
    wall_seconds: float
    max_rss_mb: float


@dataclass(frozen=True)
class SandboxResult:
    exit_code: int | None
    reason: Reason
    usage: Usage
    output_dir: Path
    stdout_path: Path
    stderr_path: Path
    confinement: str | None


class Sandbox:
    """Runs job entry points confined (see module docstring); one :meth:`run` per job."""

    def __init__(
        self,
        runtimes: Mapping[str, Runtime] | None = None,
        *,
        allow_unconfined: bool = False,
        mode: str | None = "auto",
        base_dir: Path | None = None,
    ) -> None:
        self.runtimes = dict(runtimes) if runtimes else {"python": python_runtime()}
        self.mode = confinement() if mode == "auto" else mode
        if self.mode not in ("bwrap", "unshare", None):
            raise SandboxError(f"unknown confinement {self.mode!r}")
        if self.mode is None and not allow_unconfined:
            raise ConfinementUnavailableError(
                "no way to confine jobs here (bubblewrap missing and user namespaces refused); "
                "install it (apt-get install bubblewrap) or pass allow_unconfined=True and "
                "declare the offer unconfined"
            )
        self.base_dir = base_dir
        self.uid = _job_uid()

    def run(
        self,
        bundle: Path,
        entry: str,
        runtime: str,
        limits: Limits,
        *,
        inputs: Mapping[str, Path] | None = None,
        gpu: int | str | None = None,
        env: Mapping[str, str] | None = None,
        on_line: LineCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> SandboxResult:
        """Copy the bundle into a fresh directory, run ``entry`` with ``runtime``, enforce
        ``limits`` and stream each output line to ``on_line(stream, line)``. Setting
        ``cancel`` stops the job (reason ``cancelled``)."""
        if runtime not in self.runtimes:
            raise SandboxError(
                f"runtime {runtime!r} is not offered here; "
                f"offered: {', '.join(sorted(self.runtimes))}"
            )
        rt = self.runtimes[runtime]
        root = Path(tempfile.mkdtemp(prefix="ailedger-job-", dir=self.base_dir))
        os.chmod(root, 0o711)
        work, inp, logs = root / "work", root / "inputs", root / "logs"
        shutil.copytree(bundle, work, symlinks=True)
        for sub in ("output", "tmp"):
            (work / sub).mkdir(exist_ok=True)
        inp.mkdir()
        logs.mkdir()
        for name, src in (inputs or {}).items():
            _copy_read_only(src, inp / name)
        os.chmod(inp, 0o555)
        if self.uid is not None:
            for dirpath, dirs, files in os.walk(work):
                for n in [*dirs, *files, "."]:
                    os.lchown(os.path.join(dirpath, n), self.uid, self.uid)
        inside = self.mode is not None
        wdir, idir = ("/work", "/inputs") if inside else (str(work), str(inp))
        job_env = {
            "PATH": "/usr/bin:/bin",
            "HOME": wdir,
            "TMPDIR": f"{wdir}/tmp",
            "LANG": "C.UTF-8",
            "AILEDGER_INPUTS": idir,
            "AILEDGER_OUTPUT": f"{wdir}/output",
            "CUDA_VISIBLE_DEVICES": "" if gpu is None else str(gpu),
            **(env or {}),
        }
        argv = [*rt.command, f"{wdir}/{entry}"]
        if self.mode == "bwrap":
            argv = self._bwrap_argv(rt, work, inp, gpu) + argv
        elif self.mode == "unshare":
            argv = self._unshare_argv(rt, root, job_env) + argv
        return self._execute(
            argv, None if inside else work, job_env, limits, gpu, root, on_line, cancel
        )

    def _bwrap_argv(self, rt: Runtime, work: Path, inp: Path, gpu: int | str | None) -> list[str]:
        argv = [
            "bwrap",
            "--unshare-all",
            "--die-with-parent",
            "--new-session",
            "--cap-drop",
            "ALL",
            "--hostname",
            "sandbox",
            "--ro-bind",
            "/usr",
            "/usr",
            *host_links(),
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--bind",
            str(work),
            "/work",
            "--ro-bind",
            str(inp),
            "/inputs",
            "--symlink",
            "/work/tmp",
            "/tmp",
        ]
        for path in rt.ro_paths:
            argv += ["--ro-bind", path, path]
        if gpu is not None:
            for dev in ("nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", f"nvidia{gpu}"):
                if Path("/dev", dev).exists():
                    argv += ["--dev-bind", f"/dev/{dev}", f"/dev/{dev}"]
        return [*argv, "--chdir", "/work", "--"]

    def _unshare_argv(self, rt: Runtime, root: Path, env: dict[str, str]) -> list[str]:
        top = root / "root"
        for d in ("usr", "work", "inputs", "proc", "dev", *(p.lstrip("/") for p in rt.ro_paths)):
            (top / d).mkdir(parents=True, exist_ok=True)
        for d in ("null", "zero", "random", "urandom"):
            (top / "dev" / d).touch()
        for name in ("bin", "sbin", "lib", "lib64", "lib32"):
            if Path("/", name).is_symlink():
                (top / name).symlink_to(os.readlink(Path("/", name)))
        (top / "tmp").symlink_to("/work/tmp")
        env.update(
            WORK=str(root / "work"),
            INPUTS=str(root / "inputs"),
            RO=" ".join(p.lstrip("/") for p in rt.ro_paths),
        )
        return [
            *UNSHARE_NAMESPACES,
            "--kill-child",
            "sh",
            "-c",
            _UNSHARE_SCRIPT,
            "sandbox",
            str(top),
        ]

    def _execute(
        self,
        argv: list[str],
        cwd: Path | None,
        env: dict[str, str],
        limits: Limits,
        gpu: int | str | None,
        root: Path,
        on_line: LineCallback | None,
        cancel: threading.Event | None = None,
    ) -> SandboxResult:
        work, logs = root / "work", root / "logs"
        fsize = limits.output_mb << 20
        nproc = limits.max_processes + (0 if self.uid is not None else _own_processes())

        def preexec() -> None:
            cpu = max(1, int(limits.cpu_seconds + 0.999))
            resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 2))
            if gpu is None:
                mem = limits.memory_mb << 20
                resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
            resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))

        start = time.monotonic()
        try:
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
                preexec_fn=preexec,
                user=self.uid,
                group=self.uid,
                extra_groups=[] if self.uid else None,
            )
        except OSError as exc:
            raise SandboxError(f"cannot start job: {exc}") from exc
        over_log = threading.Event()
        tail: list[str] = []
        readers = [
            threading.Thread(
                target=_pump,
                daemon=True,
                args=(
                    stream,
                    name,
                    logs / f"{name}.txt",
                    limits.log_mb << 20,
                    on_line,
                    over_log,
                    tail,
                ),
            )
            for name, stream in (("stdout", proc.stdout), ("stderr", proc.stderr))
        ]
        for t in readers:
            t.start()
        killed: Reason | None = None
        next_check = start
        while True:
            pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            now = time.monotonic()
            if killed is None:
                if cancel is not None and cancel.is_set():
                    killed = "cancelled"
                elif now - start > limits.wall_seconds:
                    killed = "wall-time"
                elif over_log.is_set():
                    killed = "output-too-large"
                elif now >= next_check:
                    next_check = now + 0.5
                    if _tree_size(work)[0] > fsize:
                        killed = "output-too-large"
                if killed is not None:
                    _killpg(proc.pid)
            time.sleep(0.02)
        wall = time.monotonic() - start
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        _killpg(proc.pid)  # stragglers of an unconfined job
        for t in readers:
            t.join(timeout=5)
        cpu = ru.ru_utime + ru.ru_stime
        usage = Usage(round(cpu, 3), round(wall, 3), round(ru.ru_maxrss / 1024, 1))
        sig = -code if code < 0 else (code - 128 if self.mode and code > 128 else 0)
        total, largest = _tree_size(work)
        text = "".join(tail)
        reason: Reason
        if killed is not None:
            reason = killed
        elif code == 0:
            reason = "ok"
        elif sig == signal.SIGXCPU or cpu >= limits.cpu_seconds - 0.05:
            reason = "cpu-time"
        elif sig == signal.SIGXFSZ or largest >= fsize or total > fsize or "File too large" in text:
            reason = "output-too-large"
        elif any(m in text for m in _MEMORY_MARKERS):
            reason = "memory"
        elif sig:
            reason = "killed"
        else:
            reason = "nonzero-exit"
        return SandboxResult(
            code,
            reason,
            usage,
            work / "output",
            logs / "stdout.txt",
            logs / "stderr.txt",
            self.mode,
        )

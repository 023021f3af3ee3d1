"""What this provider machine can offer: CPU cores, RAM, NVIDIA GPUs, and job confinement.

The numbers end up in an on-chain offer, so they are read from the kernel and the driver
rather than trusted from configuration: cores from the scheduler affinity mask (what this
process may really use, e.g. inside a container), RAM from ``/proc/meminfo``, GPUs from
``nvidia-smi``. A machine without ``nvidia-smi`` simply has no GPUs; an ``nvidia-smi`` that fails
(driver mismatch, hung GPU) is logged as a warning and also reported as no GPUs, so a broken
driver never advertises capacity that jobs would then fail on.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ailedger.compute.provider.sandbox import confinement

log = logging.getLogger(__name__)

NVIDIA_SMI_QUERY = ["--query-gpu=name,memory.total,uuid", "--format=csv,noheader,nounits"]


@dataclass(frozen=True)
class GpuInfo:
    """One NVIDIA GPU; ``index`` is what ``CUDA_VISIBLE_DEVICES`` names."""

    index: int
    name: str
    memory_mb: int
    uuid: str


@dataclass(frozen=True)
class MachineInfo:
    """The machine as an offer describes it. ``confinement`` is "bwrap", "unshare" or None
    (None: jobs could only run unconfined, which an offer must declare)."""

    cpu_cores: int
    ram_mb: int
    gpus: tuple[GpuInfo, ...]
    confinement: str | None


def cpu_cores() -> int:
    """Cores this process may run on (affinity mask), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def ram_mb(meminfo: Path = Path("/proc/meminfo")) -> int:
    """Total RAM in MiB from ``MemTotal`` (kB) of ``/proc/meminfo``; 0 if unreadable."""
    try:
        text = meminfo.read_text("ascii")
    except OSError as exc:
        log.warning("cannot read %s: %s; reporting 0 MiB of RAM", meminfo, exc)
        return 0
    for line in text.splitlines():
        if line.startswith("MemTotal:"):
            fields = line.split()
            if len(fields) >= 2 and fields[1].isdigit():
                return int(fields[1]) // 1024
    log.warning("no MemTotal in %s; reporting 0 MiB of RAM", meminfo)
    return 0


def parse_nvidia_smi(text: str) -> tuple[GpuInfo, ...]:
    """Parse ``name, memory.total, uuid`` CSV lines; memory with or without a ``MiB`` unit."""
    gpus: list[GpuInfo] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = [p.strip() for p in line.rsplit(",", 2)]
        if len(parts) != 3:
            raise ValueError(f"unexpected nvidia-smi line {line!r}")
        name, memory, uuid = parts
        memory = memory.removesuffix("MiB").strip()
        if not memory.isdigit():
            raise ValueError(f"unexpected memory value {memory!r} from nvidia-smi")
        gpus.append(GpuInfo(len(gpus), name, int(memory), uuid))
    return tuple(gpus)


def detect_gpus(nvidia_smi: str | None = None, timeout: float = 20.0) -> tuple[GpuInfo, ...]:
    """NVIDIA GPUs via ``nvidia-smi``; none if it is absent, none plus a warning if it fails."""
    exe = nvidia_smi or shutil.which("nvidia-smi")
    if exe is None:
        return ()
    try:
        done = subprocess.run(
            [exe, *NVIDIA_SMI_QUERY], capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("nvidia-smi could not run (%s); offering no GPUs", exc)
        return ()
    if done.returncode != 0:
        log.warning(
            "nvidia-smi failed (exit %d): %s; offering no GPUs",
            done.returncode,
            done.stderr.strip()[:500],
        )
        return ()
    try:
        return parse_nvidia_smi(done.stdout)
    except ValueError as exc:
        log.warning("nvidia-smi output not understood (%s); offering no GPUs", exc)
        return ()


def detect_machine(nvidia_smi: str | None = None) -> MachineInfo:
    """Detect cores, RAM, GPUs and the confinement available for jobs."""
    return MachineInfo(cpu_cores(), ram_mb(), detect_gpus(nvidia_smi), confinement())

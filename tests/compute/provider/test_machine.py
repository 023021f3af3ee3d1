"""Machine detection: RAM, cores, nvidia-smi present, absent or failing."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from ailedger.compute.provider.machine import detect_gpus, detect_machine, parse_nvidia_smi, ram_mb


def test_parse_nvidia_smi() -> None:
    gpus = parse_nvidia_smi("NVIDIA H100 80GB HBM3, 81559 MiB, GPU-1234\nTesla T4, 15360, GPU-ab\n")
    assert [(g.index, g.name, g.memory_mb, g.uuid) for g in gpus] == [
        (0, "NVIDIA H100 80GB HBM3", 81559, "GPU-1234"),
        (1, "Tesla T4", 15360, "GPU-ab"),
    ]


def test_ram_from_meminfo(tmp_path: Path) -> None:
    (tmp_path / "m").write_text("MemTotal:       16384000 kB\nMemFree: 1 kB\n")
    assert ram_mb(tmp_path / "m") == 16000


def test_failing_nvidia_smi_means_no_gpus(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\necho 'NVIDIA-SMI has failed' >&2\nexit 9\n")
    fake.chmod(0o755)
    with caplog.at_level(logging.WARNING):
        assert detect_gpus(str(fake)) == ()
    assert "nvidia-smi failed" in caplog.text


def test_detect_machine() -> None:
    info = detect_machine(nvidia_smi="/nonexistent/nvidia-smi")
    assert info.cpu_cores >= 1 and info.ram_mb > 0 and info.gpus == ()
    assert info.confinement in ("bwrap", "unshare", None)

"""The compute commands that exist so far: bundle checks and machine detection."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.cli.test_cli import error_of, run

JOB_TOML = """
[job]
entry = "train.py"
runtime = "python"
deterministic = true
seed = 7

[resources]
cpu_cores = 1
ram_mb = 512
max_hours = 1.5

[market]
max_price_per_hour = "2"
deadline_hours = 4
redundancy = 2
"""


def _bundle(tmp_path: Path, toml: str = JOB_TOML) -> Path:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "job.toml").write_text(toml)
    (bundle / "train.py").write_text("print('hello')\n")
    return bundle


def test_job_check_prints_hash_and_escrow(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = run(["job", "check", str(_bundle(tmp_path)), "--json"], capsys, monkeypatch)
    assert code == 0, err
    checked = json.loads(out)
    assert len(checked["bundle_hash"]) == 66 and checked["redundancy"] == 2
    # 2 AIL x 2 h x (k=2 runs + 1 reserve share for a tie-break run)
    assert checked["max_cost_base_units"] == str(2 * 10**18 * 2 * 3)


def test_job_check_names_the_bad_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = JOB_TOML.replace("ram_mb = 512", 'ram_mb = "lots"')
    line = error_of(["job", "check", str(_bundle(tmp_path, bad))], capsys, monkeypatch)
    assert "ram_mb" in line and "lots" in line


def test_provider_machine_reports_this_machine(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = run(["provider", "machine", "--json"], capsys, monkeypatch)
    info = json.loads(out)
    assert code == 0 and info["cpu_cores"] >= 1 and info["ram_mb"] > 100

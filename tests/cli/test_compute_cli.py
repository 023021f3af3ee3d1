"""The compute commands that exist so far: bundle checks and machine detection."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.cli.test_cli import error_of, home_env, run  # noqa: F401 (fixture)

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
    assert checked["output"] is None


def test_job_check_shows_the_declared_output_for_the_owners_review(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    toml = JOB_TOML + (
        '[output]\ncounts = ["stats.json:patients", "stats.json:by_gene.KMT2D"]\n'
        'statistics = { "stats.json:mean_age" = "stats.json:patients" }\n'
    )
    code, out, err = run(
        ["job", "check", str(_bundle(tmp_path, toml)), "--json"], capsys, monkeypatch
    )
    assert code == 0, err
    assert json.loads(out)["output"] == {
        "counts": ["stats.json:by_gene.KMT2D", "stats.json:patients"],
        "statistics": {"stats.json:mean_age": "stats.json:patients"},
    }
    code, out, err = run(["job", "check", str(tmp_path / "bundle")], capsys, monkeypatch)
    assert code == 0, err
    assert "may release 2 counts and 1 statistics" in out
    assert "statistic  stats.json:mean_age  (cell stats.json:patients)" in out


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


@pytest.mark.usefixtures("home_env")
def test_owner_sets_compute_rules_for_its_dataset(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """allow-algorithm, allow-host and output-policy change the ComputePolicy contract,
    only for the dataset's owner, and refuse bad input by naming it."""
    assert run(["init"], capsys, monkeypatch)[0] == 0
    run(["token", "faucet", "10"], capsys, monkeypatch)
    source = tmp_path / "cohort.csv"
    source.write_text("age\n42\n")
    code, out, err = run(
        ["data", "publish", str(source), "--title", "t", "--purpose", "public-health", "--json"],
        capsys,
        monkeypatch,
    )
    assert code == 0, err
    dataset = json.loads(out)["dataset"]
    digest = json.loads(
        run(["job", "check", str(_bundle(tmp_path)), "--json"], capsys, monkeypatch)[1]
    )["bundle_hash"]

    code, out, _ = run(["data", "output-policy", dataset, "--json"], capsys, monkeypatch)
    assert json.loads(out) | {"tx": None} == {
        "dataset": dataset,
        "max_output_bytes": 1 << 20,
        "aggregate_only": True,
        "min_cell_size": 10,
        "differentially_private": False,
        "privacy": "not differentially private (use `ailedger privacy query` for private releases)",
        "tx": None,
    }
    code, out, err = run(
        ["data", "output-policy", dataset, "--max-bytes", "4096", "--min-cell-size", "25"],
        capsys,
        monkeypatch,
    )
    assert code == 0, err
    assert "4096 bytes, declared aggregates only, cells of at least 25" in out
    assert "not differentially private" in out and "epsilon" not in out
    code, out, err = run(
        ["data", "output-policy", dataset, "--any-output", "--json"], capsys, monkeypatch
    )
    assert code == 0, err
    shown = json.loads(out)
    assert (shown["max_output_bytes"], shown["aggregate_only"], shown["min_cell_size"]) == (
        4096,
        False,
        25,
    )
    assert shown["differentially_private"] is False
    assert not any("epsilon" in key for key in shown)
    code, out, _ = run(["data", "output-policy", dataset], capsys, monkeypatch)
    assert "any output (no cell-size check)" in out and "not differentially private" in out
    code, _, err = run(["data", "output-policy", dataset, "--dp-epsilon", "1"], capsys, monkeypatch)
    assert code == 2 and "No such option" in err  # gone: no epsilon is ever set or shown
    assert run(["data", "allow-algorithm", dataset, digest], capsys, monkeypatch)[0] == 0
    host = "0x" + "11" * 20
    assert run(["data", "allow-host", dataset, host], capsys, monkeypatch)[0] == 0
    assert run(["data", "allow-host", dataset, host, "--revoke"], capsys, monkeypatch)[0] == 0

    line = error_of(["data", "allow-algorithm", dataset, "0x1234"], capsys, monkeypatch)
    assert "bundle hash" in line
    line = error_of(["data", "output-policy", dataset, "--max-bytes", "0"], capsys, monkeypatch)
    assert "output size cap" in line
    line = error_of(["data", "output-policy", dataset, "--min-cell-size", "0"], capsys, monkeypatch)
    assert "minimum cell size" in line
    other = "0x" + "22" * 32
    line = error_of(["data", "allow-algorithm", other, digest], capsys, monkeypatch)
    assert "unknown dataset" in line

    # No job posted from this home yet: none listed, and an id not its own is refused.
    code, out, err = run(["job", "list", "--json"], capsys, monkeypatch)
    assert code == 0 and json.loads(out) == {"jobs": []}, err
    line = error_of(["job", "cancel", "7"], capsys, monkeypatch)
    assert "not one of this home's jobs" in line


@pytest.mark.usefixtures("home_env")
def test_a_provider_stakes_offers_and_withdraws_from_the_cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """provider stake / offer / status / unstake: the functions the web's provider page
    calls, with the same refusals."""
    assert run(["init"], capsys, monkeypatch)[0] == 0
    run(["token", "faucet", "500"], capsys, monkeypatch)
    code, out, _ = run(["provider", "status", "--json"], capsys, monkeypatch)
    assert code == 0 and json.loads(out)["registered"] is False
    assert "stake first" in error_of(["provider", "offer", "--price", "1"], capsys, monkeypatch)
    code, out, err = run(["provider", "stake", "100", "--json"], capsys, monkeypatch)
    assert code == 0 and json.loads(out)["action"] == "registered", err
    code, out, err = run(
        ["provider", "offer", "--price", "1.5", "--cores", "1", "--json"], capsys, monkeypatch
    )
    assert code == 0 and json.loads(out)["cpu_cores"] == 1, err
    assert "this machine" in error_of(
        ["provider", "offer", "--price", "1", "--cores", "100000"], capsys, monkeypatch
    )
    assert "at most the stake" in error_of(["provider", "unstake", "1000"], capsys, monkeypatch)
    assert run(["provider", "unstake", "10"], capsys, monkeypatch)[0] == 0
    code, out, _ = run(["provider", "status", "--json"], capsys, monkeypatch)
    status = json.loads(out)
    assert status["stake"] == str(90 * 10**18) and status["offer"]["cpu_cores"] == 1
    assert status["jobs_run"] == 0 and status["earned"] == "0" and status["slashes"] == []

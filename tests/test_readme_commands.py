"""The README's quickstart commands, run as a newcomer would (house rule: they never rot)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.demo_story import check_demo_story

REPO = Path(__file__).resolve().parents[1]


def test_readme_quickstart_names_exactly_the_two_scripts() -> None:
    readme = (REPO / "README.md").read_text()
    quickstart = readme.split("## Quickstart", 1)[1].split("##", 1)[0]
    commands = re.findall(r"^(bash scripts/\S+)", quickstart, flags=re.M)
    assert commands == ["bash scripts/demo.sh", "bash scripts/test.sh"]
    assert "scripts/test.sh" in (REPO / ".ci" / "run").read_text()


@pytest.mark.slow
@pytest.mark.integration
def test_demo_script_runs_from_the_checkout(tmp_path: Path, contract_cache: Path) -> None:
    """The whole demo, run once per suite as the README says: its story is checked
    chapter by chapter, then its closing hint is run."""
    env = {**os.environ, "AILEDGER_CACHE_DIR": str(contract_cache), "COLUMNS": "200"}
    done = subprocess.run(
        ["bash", "scripts/demo.sh", "--dir", str(tmp_path / "demo")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    check_demo_story(done.stdout)  # every chapter told as it should be
    # A newcomer's next step: the closing command works exactly as printed, in a fresh shell.
    lines = done.stdout.splitlines()
    hint = lines[lines.index(next(x for x in lines if x.startswith("done."))) + 1].strip()
    shown = subprocess.run(
        ["bash", "-c", hint],
        env={k: v for k, v in env.items() if not k.startswith("AILEDGER_")},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert "checkpoint:" in shown.stdout
    assert "proved" in shown.stdout and "PROOF FAILED" not in shown.stdout

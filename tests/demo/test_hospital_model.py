"""The demo's compute-to-data training job: what it releases passes the hospital's
aggregate-only output policy and serves the demo's patient, and a cohort under the minimum
cell size releases no weight that could be served."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ailedger.ai.serving import load_linear_model
from ailedger.compute.jobs import JobBundle
from ailedger.compute.outputs import ReleaseRules, apply_output_policy
from ailedger.demo.compute import COHORT_TRAIN_OUTPUT, COHORT_TRAIN_SCRIPT, write_bundle
from ailedger.demo.models import PATIENT
from ailedger.demo.story import _cohort_csv
from ailedger.errors import ConfigError

# The hospital's rules for its cohort in the demo's chapter 11.
RULES = ReleaseRules(max_output_bytes=4096, aggregate_only=True, min_cell_size=10)
DATASET = "0x" + "ab" * 32


def _run_and_release(tmp_path: Path, cohort: str) -> tuple[Path, tuple[str, ...]]:
    """Run the reviewed bundle as a provider would (inputs and output directories), then
    apply the hospital's output policy with the schema its job.toml declares."""
    bundle = write_bundle(
        tmp_path / "job", COHORT_TRAIN_SCRIPT, inputs=(DATASET,), output=COHORT_TRAIN_OUTPUT
    )
    schema = JobBundle.read(bundle).spec.output
    inputs, output = tmp_path / "inputs", tmp_path / "output"
    inputs.mkdir()
    output.mkdir()
    (inputs / DATASET).write_text(cohort)
    env = {"AILEDGER_INPUTS": str(inputs), "AILEDGER_OUTPUT": str(output)}
    subprocess.run([sys.executable, str(bundle / "main.py")], env=env, check=True, timeout=120)
    return output, apply_output_policy(output, RULES, schema)


def test_the_hospital_model_is_released_whole_and_serves_the_demo_patient(
    tmp_path: Path,
) -> None:
    output, suppressed = _run_and_release(tmp_path, _cohort_csv())
    assert suppressed == ()
    model = load_linear_model(output)
    assert sorted(model.features) == sorted(PATIENT)
    model.check(PATIENT)  # inside the declared bounds
    risk = float(model.estimator.predict_proba(model.explainer.row(PATIENT))[0, 1])
    assert 0.5 < risk < 1  # an early onset and a high delay score: regression likelier


def test_a_cohort_under_the_minimum_cell_releases_no_servable_model(tmp_path: Path) -> None:
    small = "\n".join(_cohort_csv().splitlines()[:10]) + "\n"  # header and 9 patients
    output, suppressed = _run_and_release(tmp_path, small)
    assert "model.json:weights.delay_score" in suppressed
    with pytest.raises(ConfigError, match="is not a served model"):
        load_linear_model(output)

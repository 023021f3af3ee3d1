"""The task file: what a requester posts is what each institution rebuilds and checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from ailedger.errors import ConfigError
from ailedger.federated.task import read_task, task_from_json

BASE = """features = ["age", "dose"]
label = "outcome"
positive = "yes"

[bounds]
age = [0, 120]
dose = [0.5, 10]
"""


def _task(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "task.toml"
    path.write_text(text)
    return path


def test_a_task_carried_as_json_rebuilds_to_the_same_hash(tmp_path: Path) -> None:
    plain = read_task(_task(tmp_path, BASE))
    assert "privacy" not in plain.as_json()  # a task without privacy terms hashes as before
    private = read_task(
        _task(tmp_path, BASE + "\n[privacy]\nclip_norm = 0.5\nnoise_multiplier = 1.5\n")
    )
    assert private.privacy is not None and private.privacy.on_budget == "drop"
    for task in (plain, private):
        assert task_from_json(task.as_json()).digest() == task.digest()
    assert plain.digest() != private.digest()


@pytest.mark.parametrize(
    ("privacy", "complaint"),
    [
        ("clip_norm = 1.0", "noise_multiplier must be a number"),
        ("noise_multiplier = 1.0", "clip_norm must be a number"),
        ("clip_norm = 0\nnoise_multiplier = 1.0", "clip_norm must be a number"),
        ("clip_norm = 1\nnoise_multiplier = 0.001", "noise_multiplier must be a number"),
        ('clip_norm = 1\nnoise_multiplier = 1\non_budget = "ignore"', "drop or stop"),
        ("clip_norm = 1\nnoise_multiplier = 1\nepsilon = 3", "holds clip_norm"),
    ],
)
def test_bad_privacy_terms_are_refused_by_name(
    tmp_path: Path, privacy: str, complaint: str
) -> None:
    with pytest.raises(ConfigError, match=complaint):
        read_task(_task(tmp_path, BASE + "\n[privacy]\n" + privacy + "\n"))


@pytest.mark.parametrize(
    "carried",
    [
        [],
        {"features": "age", "lower": [0], "upper": [1]},
        {"features": ["age"], "lower": [0, 1], "upper": [1]},
        {"features": [["age"]], "lower": [0], "upper": [1]},
        {"features": ["age"], "lower": [1], "upper": [0], "label": "o", "positive": "y"},
    ],
)
def test_a_malformed_carried_task_is_a_config_error(carried: object) -> None:
    with pytest.raises(ConfigError):
        task_from_json(carried)

"""The lineage document: canonical JSON, read back strictly."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ailedger.ai.errors import LineageError
from ailedger.ai.lineage import (
    MAX_LINEAGE_BYTES,
    DatasetUse,
    Evaluation,
    Lineage,
    PrivacyCharge,
    TrainingJob,
)

H = "0x" + "ab" * 32
LINEAGE = Lineage(
    name="m",
    version="2",
    training_jobs=(TrainingJob(1, H), TrainingJob(2, H)),
    datasets=(DatasetUse(H, 9),),
    privacy=(PrivacyCharge(H, 4, 0.25),),
    evaluation=Evaluation(H, {"auc": 0.875, "brier": 0.125}),
    created_at=1_780_000_000,
)


def _doc() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(LINEAGE.to_json())
    return document


def test_round_trip_and_canonical_form() -> None:
    data = LINEAGE.to_json()
    assert Lineage.from_json(data) == LINEAGE
    assert data == json.dumps(json.loads(data), sort_keys=True, separators=(",", ":")).encode()
    assert json.loads(data)["datasets"] == [{"dataset": H, "grant": 9, "purpose": "model-training"}]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(extra=1), "exactly"),
        (lambda d: d.pop("privacy"), "exactly"),
        (lambda d: d["model"].update(name=""), "model.name"),
        (lambda d: d["training_jobs"][0].update(output_hash="0x12"), "output_hash"),
        (lambda d: d["training_jobs"][0].update(job=True), "job"),
        (lambda d: d["training_jobs"][0].update(job=-1), "job"),
        (lambda d: d["datasets"][0].update(purpose="marketing"), "model-training"),
        (lambda d: d["datasets"][0].update(dataset=H.upper()), "dataset"),
        (lambda d: d["privacy"][0].update(epsilon=0), "positive"),
        (lambda d: d["privacy"][0].update(epsilon="1"), "epsilon"),
        (lambda d: d["evaluation"].update(metrics=[1]), "metrics"),
        (lambda d: d["evaluation"]["metrics"].update(auc=None), "metric auc"),
        (lambda d: d.update(created_at=1.5), "created_at"),
        (lambda d: d.update(datasets={}), "list"),
    ],
)
def test_malformed_lineage_is_refused_naming_the_field(edit: Any, message: str) -> None:
    document = _doc()
    edit(document)
    with pytest.raises(LineageError, match=message):
        Lineage.from_json(json.dumps(document).encode())


def test_non_finite_numbers_are_refused() -> None:
    text = LINEAGE.to_json().replace(b"0.875", b"NaN")
    with pytest.raises(LineageError, match="finite"):
        Lineage.from_json(text)


def test_oversized_and_unreadable_lineage_are_refused() -> None:
    with pytest.raises(LineageError, match="over"):
        Lineage.from_json(b" " * (MAX_LINEAGE_BYTES + 1))
    with pytest.raises(LineageError, match="not readable JSON"):
        Lineage.from_json(b"[" * 10_000)
    with pytest.raises(LineageError, match="not readable JSON"):
        Lineage.from_json(b"\xff\xfe{")


def test_invalid_lineage_cannot_be_built() -> None:
    with pytest.raises(LineageError, match="model-training"):
        Lineage("m", "1", (), (DatasetUse(H, 1, "ads"),), (), Evaluation(H), 0)
    with pytest.raises(LineageError, match="output_hash"):
        Lineage("m", "1", (TrainingJob(1, "0xab"),), (), (), Evaluation(H), 0)

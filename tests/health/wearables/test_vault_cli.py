"""``ailedger wearables`` on a home with the embedded chain: an Apple Health export is
imported whole, kept encrypted, recognised when uploaded again, and any reading of it is
provable later, against the chain alone; a tampered proof or a hostile file fails."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from fhir.resources.R4B.provenance import Provenance

from tests.cli.test_cli import error_of, home_env, run  # noqa: F401 (fixture)
from tests.health.wearables.exports import apple_xml, record, write_zip

pytestmark = pytest.mark.integration

PHONE = "Ada's iPhone"


def _export(path: Path) -> Path:
    """A morning of heart rate from the watch, the phone's steps in the same hours (the
    watch's win), resting heart rate, and one impossible reading."""
    records = [
        record("HeartRate", 60 + i, "count/min", start=f"2024-01-05 0{i}:10:00 +0100")
        for i in range(6)
    ]
    records += [
        record("StepCount", 500, "count", "2024-01-05 07:00:00 +0100", "2024-01-05 07:30:00 +0100"),
        record(
            "StepCount", 480, "count", "2024-01-05 07:05:00 +0100", "2024-01-05 07:35:00 +0100",
            source=PHONE, device="",
        ),
        record("RestingHeartRate", 54, "count/min", start="2024-01-05 06:00:00 +0100"),
        record("HeartRate", -60, "count/min", start="2024-01-05 08:10:00 +0100"),
    ]  # fmt: skip
    return write_zip(path, apple_xml(*records))


def test_import_keep_encrypted_recognise_again_and_prove_a_reading(
    home_env: Path,  # noqa: F811 (the fixture imported above)
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert run(["init"], capsys, monkeypatch)[0] == 0
    assert run(["account", "fund"], capsys, monkeypatch)[0] == 0  # gas to anchor the log
    export = _export(tmp_path / "export.zip")
    code, out, err = run(["wearables", "import", str(export), "--json"], capsys, monkeypatch)
    assert code == 0, err
    first = json.loads(out)
    assert first["counts"] == {
        "accepted": 8, "duplicate": 0, "overridden": 1, "skipped": 0, "rejected": 1,
    }  # fmt: skip
    assert first["rejected"] == {"negative value": 1}
    batch = first["batch"]
    assert batch["readings"] == 8 and first["anchored"] is not None

    # Nothing of a reading is readable on disk: the blob store holds ciphertext only.
    for blob in (home_env / "data" / "blobs").rglob("*"):
        if blob.is_file():
            assert b"Observation" not in blob.read_bytes() and b"8867-4" not in blob.read_bytes()

    again = json.loads(run(["wearables", "import", str(export), "--json"], capsys, monkeypatch)[1])
    assert again["batch"] is None and again["counts"]["duplicate"] == 8

    listed = json.loads(run(["wearables", "list", "--json"], capsys, monkeypatch)[1])
    assert [b["batch_id"] for b in listed["batches"]] == [batch["batch_id"]]
    provenance = Provenance.model_validate(listed["batches"][0]["provenance"])  # FHIR R4
    assert (
        provenance.entity[0].what.identifier.value
        == hashlib.sha256(export.read_bytes()).hexdigest()
    )
    assert "Apple Watch" not in json.dumps(listed)  # no source or device name outside the batch
    shown = json.loads(
        run(["wearables", "show", batch["batch_id"], "--json"], capsys, monkeypatch)[1]
    )
    assert shown["total"] == 8
    resting = next(o for o in shown["observations"] if o["code"]["coding"][0]["code"] == "40443-4")
    assert resting["valueQuantity"] == {
        "value": 54, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min",
    }  # fmt: skip

    proof = tmp_path / "proof.json"
    code, _, err = run(
        ["wearables", "prove", resting["id"], "--out", str(proof)], capsys, monkeypatch
    )
    assert code == 0, err
    code, out, err = run(["wearables", "verify", str(proof), "--json"], capsys, monkeypatch)
    assert code == 0, err
    assert json.loads(out) == {"ok": True, "anchored": True, "problems": []}

    # A reading altered after the fact is not the one the anchored root covers.
    document = json.loads(proof.read_text())
    document["observation"] = document["observation"].replace('"value":54', '"value":45')
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(document))
    code, out, _ = run(["wearables", "verify", str(forged), "--json"], capsys, monkeypatch)
    assert code == 1
    assert json.loads(out)["problems"] == [
        "the Observation is not in the batch's Merkle tree at that position"
    ]
    document = json.loads(proof.read_text())
    document["provenance"]["recorded"] = "2020-01-01T00:00:00Z"
    forged.write_text(json.dumps(document))
    code, out, _ = run(["wearables", "verify", str(forged), "--json"], capsys, monkeypatch)
    assert code == 1 and json.loads(out)["problems"] == [
        "the batch's provenance is not the one the audit entry names"
    ]


def test_a_hostile_export_is_refused_whole_and_leaves_no_batch(
    home_env: Path,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert run(["init"], capsys, monkeypatch)[0] == 0
    laughs = '<!DOCTYPE HealthData [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>\n'
    hostile = write_zip(
        tmp_path / "export.zip", apple_xml(record("HeartRate", 60, "count/min"), dtd=laughs)
    )
    message = error_of(["wearables", "import", str(hostile)], capsys, monkeypatch)
    assert "entity" in message.lower()
    listed = json.loads(run(["wearables", "list", "--json"], capsys, monkeypatch)[1])
    assert listed["batches"] == []
    message = error_of(
        ["wearables", "prove", "ab" * 32, "--out", str(tmp_path / "p.json")], capsys, monkeypatch
    )
    assert "no reading" in message

    # Without gas the batch is still stored whole; anchoring waits for the node.
    export = _export(tmp_path / "fine.zip")
    done = json.loads(run(["wearables", "import", str(export), "--json"], capsys, monkeypatch)[1])
    assert done["batch"]["readings"] == 8 and done["anchored"] is None
    assert "insufficient funds" in done["not_anchored"]


def test_feedback_flags_a_trend_and_its_receipt_checks_against_the_chain(
    home_env: Path,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert run(["init"], capsys, monkeypatch)[0] == 0
    assert run(["account", "fund"], capsys, monkeypatch)[0] == 0
    records = [
        record("RestingHeartRate", 55 if day < 14 else 63, "count/min",
               start=f"2024-02-{day + 1:02d} 06:00:00 +0000")
        for day in range(21)
    ]  # fmt: skip
    records += [
        record(kind, value, "mmHg", start=f"2024-02-{day:02d} 08:00:00 +0000")
        for day in (19, 20, 21)
        for kind, value in (("BloodPressureSystolic", 134), ("BloodPressureDiastolic", 82))
    ]
    export = write_zip(tmp_path / "export.zip", apple_xml(*records))
    assert run(["wearables", "import", str(export)], capsys, monkeypatch)[0] == 0

    receipts = tmp_path / "receipts"
    code, out, err = run(
        ["wearables", "feedback", "--receipts", str(receipts), "--json"], capsys, monkeypatch
    )
    assert code == 0, err
    done = json.loads(out)
    status = {f["rule"]: f["status"] for f in done["findings"]}
    assert status["resting-heart-rate-rise"] == status["blood-pressure"] == "flag"
    assert status["short-sleep"] == "not enough data"
    assert len(done["receipts"]) == 2 and done["anchored"] is not None

    rise = receipts / "feedback-resting-heart-rate-rise.json"
    code, out, err = run(["wearables", "check-feedback", str(rise), "--json"], capsys, monkeypatch)
    assert code == 0, err
    assert json.loads(out) == {"ok": True, "anchored": True, "problems": []}
    document = json.loads(rise.read_text())
    document["finding"]["status"] = "ok"
    rise.write_text(json.dumps(document))
    code, out, _ = run(["wearables", "check-feedback", str(rise), "--json"], capsys, monkeypatch)
    assert code == 1 and "commitment differs" in json.loads(out)["problems"][0]

    # The patterns, shared: with a clinician the person approves, or privately for research.
    from ailedger.session import open_session
    from ailedger.settings import load_settings

    code, out, err = run(
        ["wearables", "share", "--for", "clinical-care", "--json"], capsys, monkeypatch
    )
    assert code == 0, err
    clinical = json.loads(out)
    assert clinical["days"] == 21 and clinical["private"] is False
    message = error_of(["wearables", "share", "--for", "research"], capsys, monkeypatch)
    assert "needs --epsilon-cap" in message
    research = json.loads(
        run(
            ["wearables", "share", "--for", "research", "--epsilon-cap", "1", "--json"],
            capsys,
            monkeypatch,
        )[1]
    )
    assert research["private"] is True
    with open_session(load_settings(), unlock=False) as s:
        shared = s.data_market.dataset(bytes.fromhex(clinical["dataset"][2:]))
        assert shared is not None and shared.policy.purposes == 8 and shared.policy.needs_approval
        assert not s.privacy_ledger.is_private(bytes.fromhex(clinical["dataset"][2:]))
        assert s.privacy_ledger.is_private(bytes.fromhex(research["dataset"][2:]))

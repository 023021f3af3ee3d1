"""``ailedger health diagnose`` from the command line: terms, phenopacket files and
directories, JSON and text output, skipped ids, and bad files refused naming the file."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from ailedger.cli.app import main

MFDGA = "OMIM:610536"  # Mandibulofacial dysostosis, Guion-Almeida type
MFDGA_FEATURES = ["HP:0000413", "HP:0000453", "HP:0008551", "HP:0000384", "HP:0011451"]


def run(
    args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["ailedger", *args])
    monkeypatch.setenv("COLUMNS", "200")
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0) if not isinstance(exc.code, str) else 1
    out, err = capsys.readouterr()
    return code, out, err


def phenopacket(case_id: str, observed: list[str], excluded: list[str] = ()) -> dict[str, Any]:  # type: ignore[assignment]
    features: list[dict[str, Any]] = [{"type": {"id": t, "label": t}} for t in observed]
    features += [{"type": {"id": t, "label": t}, "excluded": True} for t in excluded]
    return {
        "id": case_id,
        "subject": {"id": f"subject-{case_id}", "sex": "FEMALE"},
        "phenotypicFeatures": features,
        "diseases": [{"term": {"id": MFDGA, "label": "MFDGA"}}],
        "metaData": {"created": "2024-01-01T00:00:00Z", "phenopacketSchemaVersion": "2.0"},
    }


@pytest.fixture
def cases(tmp_path: Path) -> Path:
    folder = tmp_path / "cases"
    (folder / "more").mkdir(parents=True)
    first = phenopacket("case-1", [*MFDGA_FEATURES, "HP:9999999"], ["HP:0001250"])
    (folder / "one.json").write_text(json.dumps(first))
    (folder / "more" / "two.json").write_text(json.dumps(phenopacket("case-2", MFDGA_FEATURES)))
    return folder


def test_terms_give_one_ranking_with_parts_that_add_up(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ["health", "diagnose", "--limit", "3", "--json"]
    for term in MFDGA_FEATURES:
        args += ["--hpo", term]
    code, out, err = run(
        [*args, "--hpo", "HP:0004715", "--exclude", "HP:0001250"], capsys, monkeypatch
    )
    assert code == 0, err
    ranking = json.loads(out)
    assert len(ranking["diseases"]) == 3
    assert ranking["skipped"] == []
    best = ranking["diseases"][0]
    assert best["pretest_log10_odds"] + sum(p["log10_lr"] for p in best["parts"]) == best["score"]
    observed = {p["term"] for p in best["parts"] if p["kind"] == "observed"}
    assert "HP:0000003" in observed  # HP:0004715 is an alternate id of it


def test_a_directory_of_phenopackets_gives_a_ranking_per_case(
    cases: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = run(["health", "diagnose", str(cases), "--json"], capsys, monkeypatch)
    assert code == 0, err
    rankings = json.loads(out)["cases"]
    assert [r["case"] for r in rankings] == ["case-2", "case-1"]  # more/two.json sorts first
    first = rankings[1]
    assert first["skipped"] == ["HP:9999999"]
    assert first["stated"][0]["disease"] == MFDGA and first["stated"][0]["rank"] <= 10
    assert any(p["kind"] == "excluded" for p in first["diseases"][0]["parts"])


def test_text_output_warns_about_skipped_ids_and_explains(
    cases: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = run(
        ["health", "diagnose", str(cases / "one.json"), "--limit", "2"], capsys, monkeypatch
    )
    assert code == 0, err
    assert "HP:9999999 skipped" in out
    assert "pretest (1 in" in out and "observed HP:0000413" in out
    assert f"stated diagnosis {MFDGA}: rank" in out


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "not JSON"),
        ('{"resourceType": "Bundle"}', "not a Phenopacket v2"),
        ('{"id": "x", "phenotypicFeatures": [], "metaData": {}}', "subject"),
        (
            '{"id": "x", "subject": {"id": "s"}, "metaData": {},'
            ' "phenotypicFeatures": [{"type": {"id": "HPO_1"}}]}',
            "phenotypicFeatures[0].type.id",
        ),
    ],
)
def test_bad_files_are_refused_naming_the_file_and_the_problem(
    tmp_path: Path,
    content: str,
    expected: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    code, _, err = run(["health", "diagnose", str(bad)], capsys, monkeypatch)
    assert code == 1
    message = " ".join(err.split())
    assert str(bad) in message and expected in message


def test_missing_path_empty_directory_and_no_input_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = run(["health", "diagnose", str(tmp_path / "nope.json")], capsys, monkeypatch)
    assert code == 1 and "no such file or directory" in err
    (tmp_path / "empty").mkdir()
    code, _, err = run(["health", "diagnose", str(tmp_path / "empty")], capsys, monkeypatch)
    assert code == 1 and "holds no .json" in err
    code, _, err = run(["health", "diagnose"], capsys, monkeypatch)
    assert code != 0 and "--hpo" in err
    code, _, err = run(["health", "diagnose", "--hpo", "HP:9999999"], capsys, monkeypatch)
    assert code == 1 and "HP:9999999" in err


def test_an_onset_stated_in_a_phenopacket_is_used(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    document = phenopacket("case-onset", MFDGA_FEATURES)
    document["phenotypicFeatures"][0]["onset"] = {
        "ontologyClass": {"id": "HP:0003577", "label": "Congenital onset"}
    }
    (tmp_path / "onset.json").write_text(json.dumps(document))
    code, out, err = run(["health", "diagnose", str(tmp_path), "--json"], capsys, monkeypatch)
    assert code == 0, err
    (ranking,) = json.loads(out)["cases"]
    parts = ranking["diseases"][0]["parts"]
    assert [p["term"] for p in parts if p["kind"] == "onset"] == ["HP:0003577"]

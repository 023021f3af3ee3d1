"""The likelihood-ratio diagnosis ranker: its arithmetic, its explanations, excluded terms,
onset and inheritance, unknown ids, and the annotation data it reads."""

from __future__ import annotations

import io
import math
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from ailedger.health.annotations import (
    FETCH_COMMAND,
    AnnotationsMissingError,
    build,
    data_dir,
    load_raw,
    parse_frequency,
)
from ailedger.health.likelihood import LikelihoodRanker, Part
from ailedger.health.phenotype import Ontology, PhenotypeError, format_hpo, load_ontology
from ailedger.health.profile import PhenotypeProfile

AUTOSOMAL_DOMINANT, AUTOSOMAL_RECESSIVE = "HP:0000006", "HP:0000007"


@pytest.fixture(scope="module")
def onto() -> Ontology:
    return load_ontology()


@pytest.fixture(scope="module")
def ranker(onto: Ontology) -> LikelihoodRanker:
    return LikelihoodRanker(onto, sources=("OMIM",))


def features(ranker: LikelihoodRanker, disease: str) -> list[tuple[int, float]]:
    return ranker._rows.of(ranker.ids.index(disease))


def spread_out(onto: Ontology, terms: list[int]) -> list[int]:
    """Terms none of which is an ancestor of another."""
    kept: list[int] = []
    for t in terms:
        if not any(onto.is_ancestor(t, k) or onto.is_ancestor(k, t) for k in kept):
            kept.append(t)
    return kept


def disease_with_rare_and_frequent(
    ranker: LikelihoodRanker, onto: Ontology
) -> tuple[str, list[int], int, int]:
    """An OMIM disease with >= 4 unrelated very frequent features, one more frequent one to
    exclude and a very rare one (<= 4%) unrelated to them."""
    for disease in ranker.ids:
        rows = features(ranker, disease)
        frequent = spread_out(onto, [t for t, f in sorted(rows) if f >= 0.8])
        rare = [t for t, f in sorted(rows) if f <= 0.04]
        closure = onto.closure(frequent)
        rare = [
            t
            for t in rare
            if t not in closure and not any(onto.is_ancestor(t, s) for s in frequent)
        ]
        if len(frequent) >= 5 and rare:
            return disease, frequent[:4], frequent[4], rare[0]
    raise AssertionError("no suitable disease in the annotations")


def profile(observed: list[int], excluded: list[int] = ()) -> PhenotypeProfile:  # type: ignore[assignment]
    return PhenotypeProfile.of(map(format_hpo, observed), map(format_hpo, excluded))


def part_for(parts: tuple[Part, ...], kind: str, term: int) -> Part:
    return next(p for p in parts if p.kind == kind and p.term == format_hpo(term))


def test_parts_add_up_exactly_to_the_score(ranker: LikelihoodRanker, onto: Ontology) -> None:
    _, frequent, other, rare = disease_with_rare_and_frequent(ranker, onto)
    ranking = ranker.rank(profile(frequent, [rare, other]), limit=10)
    assert len(ranking.diagnoses) == 10
    for d in ranking.diagnoses:
        assert d.pretest_log10_odds + sum(p.log10_lr for p in d.parts) == d.score
        assert {p.kind for p in d.parts} >= {"observed", "excluded", "unreported"}
    scores = [d.score for d in ranking.diagnoses]
    assert scores == sorted(scores, reverse=True)
    assert ranking.diagnoses[0].pretest_log10_odds == pytest.approx(
        math.log10(1 / len(ranker)) - math.log10(1 - 1 / len(ranker))
    )


def test_probabilities_are_normalised_and_separate_candidates(
    ranker: LikelihoodRanker, onto: Ontology
) -> None:
    _, frequent, _, _ = disease_with_rare_and_frequent(ranker, onto)
    probs = ranker.probabilities(profile(frequent))
    assert probs.sum() == pytest.approx(1.0)
    ranking = ranker.rank(profile(frequent), limit=5)
    shown = [d.probability for d in ranking.diagnoses]
    assert shown == sorted(shown, reverse=True)
    assert shown[0] < 0.99 and shown[0] > shown[-1]


def test_an_excluded_feature_the_disease_rarely_has_does_not_sink_it(
    ranker: LikelihoodRanker, onto: Ontology
) -> None:
    disease, frequent, _, rare = disease_with_rare_and_frequent(ranker, onto)
    without = ranker.rank(profile(frequent), track=[disease])
    with_rare = ranker.rank(profile(frequent, [rare]), track=[disease])
    (_, before), (_, after) = without.tracked[0], with_rare.tracked[0]
    assert before is not None and after is not None
    assert after <= before
    mine = next(d for d in with_rare.diagnoses if d.disease_id == disease)
    part = part_for(mine.parts, "excluded", rare)
    assert part.log10_lr > -0.05 and not part.conflict


def test_an_excluded_feature_the_disease_nearly_always_has_counts_against_it(
    ranker: LikelihoodRanker, onto: Ontology
) -> None:
    disease, frequent, other, _ = disease_with_rare_and_frequent(ranker, onto)
    scores = ranker.scores(profile(frequent))
    against = ranker.scores(profile(frequent, [other]))
    assert against[disease] < scores[disease] - 0.1
    ranking = ranker.rank(profile(frequent, [other]), limit=len(ranker), track=[disease])
    mine = next(d for d in ranking.diagnoses if d.disease_id == disease)
    part = part_for(mine.parts, "excluded", other)
    assert part.log10_lr < -0.3 and part.conflict and part.relation == "disease has it"
    assert part.frequency is not None and part.frequency >= 0.8


def test_a_feature_the_disease_is_known_to_lack_is_a_conflict(onto: Ontology) -> None:
    ranker = LikelihoodRanker(onto, sources=("ORPHA",))  # only Orphanet states NOT features
    slot, lacking = next(iter(sorted(ranker._not.items())))
    disease = ranker.ids[slot]
    term = sorted(lacking)[0]
    present = [t for t, _ in features(ranker, disease) if not onto.is_ancestor(term, t)][:3]
    ranking = ranker.rank(profile([*present, term]), limit=len(ranker))
    mine = next(d for d in ranking.diagnoses if d.disease_id == disease)
    part = part_for(mine.parts, "observed", term)
    assert part.conflict and "NOT" in part.relation
    assert part.log10_lr == pytest.approx(math.log10(ranker.params.epsilon))


def test_inheritance_moves_diseases_by_their_annotated_mode(ranker: LikelihoodRanker) -> None:
    dominant = next(s for s, modes in sorted(ranker._modes.items()) if modes == {6})
    recessive = next(s for s, modes in sorted(ranker._modes.items()) if modes == {7})
    case = ranker._items(PhenotypeProfile.of(["HP:0001250", AUTOSOMAL_DOMINANT]))[0]
    row = ranker._log10_lr(next(i for i in case if i.kind == "inheritance"))
    assert row[dominant] > 0 > row[recessive]
    unannotated = next(s for s in range(len(ranker)) if s not in ranker._modes)
    assert row[unannotated] == 0.0


def test_onset_is_read_from_onset_terms(ranker: LikelihoodRanker) -> None:
    congenital = 3577
    slot = next(s for s, onsets in sorted(ranker._onsets.items()) if onsets == {congenital})
    items = ranker._items(PhenotypeProfile.of(["HP:0001250", "HP:0003577"]))[0]
    assert [i.kind for i in items] == ["observed", "onset", "unreported"]
    assert ranker._log10_lr(items[1])[slot] > 0


def test_unknown_ids_are_skipped_and_said(ranker: LikelihoodRanker) -> None:
    ranking = ranker.rank(
        PhenotypeProfile.of(["HP:0001250", "HP:9999999", "nonsense"], ["HP:8888888"])
    )
    assert sorted(ranking.skipped) == ["HP:8888888", "HP:9999999", "nonsense"]
    assert any("HP:9999999" in note and "skipped" in note for note in ranking.notes)
    assert ranking.diagnoses
    with pytest.raises(PhenotypeError, match="HP:9999999"):
        ranker.rank(PhenotypeProfile.of(["HP:9999999"]))


def test_alternate_ids_rank_like_their_term(ranker: LikelihoodRanker) -> None:
    alt = ranker.scores(PhenotypeProfile.of(["HP:0004715", "HP:0001250"]))
    current = ranker.scores(PhenotypeProfile.of(["HP:0000003", "HP:0001250"]))
    assert alt == current


def test_terms_outside_phenotype_onset_and_inheritance_are_reported_unused(
    ranker: LikelihoodRanker,
) -> None:
    ranking = ranker.rank(PhenotypeProfile.of(["HP:0001250", "HP:0012823"]))
    assert ranking.unused == ("HP:0012823",)


# -- the annotation data ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("HP:0040281", (0.895, 0)),
        ("HP:0040285", (0.0, 0)),
        ("3/4", (0.75, 4)),
        ("25%", (0.25, 0)),
        ("7/0", (math.nan, 0)),
        ("", (math.nan, 0)),
    ],
)
def test_frequency_cells(cell: str, expected: tuple[float, int]) -> None:
    got = parse_frequency(cell)
    assert got[1] == expected[1]
    assert (math.isnan(got[0]) and math.isnan(expected[0])) or got[0] == expected[0]


HPOA = """#description: "test"
#version: 2025-05-06
database_id\tdisease_name\tqualifier\thpo_id\treference\tevidence\tonset\tfrequency\tsex\tmodifier\taspect\tbiocuration
OMIM:1\tOne\t\tHP:0001250\tPMID:1\tPCS\t\t3/4\t\t\tP\tx
OMIM:1\tOne\tNOT\tHP:0000252\tPMID:1\tPCS\t\t\t\t\tP\tx
OMIM:1\tOne\t\tHP:0000006\tPMID:1\tPCS\t\t\t\t\tI\tx
ORPHA:2\tTwo\t\tHP:0003577\tORPHA:2\tTAS\t\tHP:0040283\t\t\tC\tx
MONDO:3\tSkipped\t\tHP:0001250\tx\tTAS\t\t\t\t\tP\tx
"""
OBO = """format-version: 1.2
data-version: hp/releases/2025-05-06

[Term]
id: HP:0000003
alt_id: HP:0004715

[Term]
id: HP:0000001
is_obsolete: true
replaced_by: HP:0000118
"""


def test_build_reads_a_wheel_and_loads_fast(tmp_path: Path) -> None:
    wheel = tmp_path / "patientmatcher-0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("patientMatcher/resources/phenotype.hpoa", HPOA)
        archive.writestr("patientMatcher/resources/hp.obo.txt", OBO)
    out = build(wheel, tmp_path / "cache")
    raw = load_raw(out)
    assert raw.hpoa_version == "2025-05-06"
    assert raw.diseases == (("OMIM:1", "One"), ("ORPHA:2", "Two"))
    assert raw.term.tolist() == [1250, 252, 6, 3577]
    assert raw.negated.tolist() == [False, True, False, False]
    assert raw.aspect.tolist() == [0, 0, 1, 2]
    assert raw.freq[0] == 0.75 and raw.cohort[0] == 4 and np.isnan(raw.freq[1])
    assert raw.alt_ids == {4715: 3, 1: 118}


def test_missing_annotations_name_the_fetch_command(tmp_path: Path) -> None:
    with pytest.raises(AnnotationsMissingError) as info:
        load_raw(tmp_path / "nothing")
    assert FETCH_COMMAND in str(info.value)
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "diseases.json").write_text("{not json")
    (tmp_path / "half" / "annotations.npz").write_bytes(io.BytesIO(b"x").getvalue())
    with pytest.raises(AnnotationsMissingError, match="cannot be read"):
        load_raw(tmp_path / "half")
    # Valid names over truncated arrays (a full disk): said the same way, not a crash.
    (tmp_path / "cut").mkdir()
    (tmp_path / "cut" / "diseases.json").write_bytes((data_dir() / "diseases.json").read_bytes())
    whole = (data_dir() / "annotations.npz").read_bytes()
    (tmp_path / "cut" / "annotations.npz").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(AnnotationsMissingError, match="cannot be read"):
        load_raw(tmp_path / "cut")


def fetch(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    script = Path(__file__).resolve().parents[2] / "scripts" / "fetch_hpo_annotations.sh"
    return subprocess.run(
        ["bash", str(script)],
        env={**os.environ, "PYTHON": sys.executable, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_fetch_script_refuses_a_wheel_with_another_sha256(tmp_path: Path) -> None:
    wheel = tmp_path / "patientmatcher-4.7.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("patientMatcher/resources/phenotype.hpoa", HPOA)
    done = fetch(tmp_path, AILEDGER_HPO_DATA=str(tmp_path / "data"), AILEDGER_HPO_WHEEL=str(wheel))
    assert done.returncode == 1
    assert "sha256" in done.stderr and "refusing" in done.stderr
    assert not (tmp_path / "data" / "diseases.json").exists()


def test_fetch_script_is_quiet_when_the_data_is_there(tmp_path: Path) -> None:
    wheel = tmp_path / "w.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("patientMatcher/resources/phenotype.hpoa", HPOA)
        archive.writestr("patientMatcher/resources/hp.obo.txt", OBO)
    build(wheel, tmp_path / "data")
    done = fetch(tmp_path, AILEDGER_HPO_DATA=str(tmp_path / "data"))
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")

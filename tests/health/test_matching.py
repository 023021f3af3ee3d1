"""Phenotype matching: simGIC scores, conflicts, explanations, the index, disease ranking."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ailedger.health.diagnosis import DiseaseRanker
from ailedger.health.matching import MatchIndex
from ailedger.health.phenotype import (
    Disease,
    Ontology,
    PhenotypeError,
    UnknownTermError,
    format_hpo,
    load_ontology,
)
from ailedger.health.profile import PhenotypeProfile

MME_DATA = (
    Path(__file__).resolve().parents[3] / "shared" / "data" / "mme" / "benchmark_patients.json"
)
FEBRILE_SEIZURE, FOCAL_SEIZURE, SEIZURE = "HP:0002373", "HP:0007359", "HP:0001250"
MICROCEPHALY, CLEFT_PALATE, SHORT_STATURE = "HP:0000252", "HP:0000175", "HP:0004322"


@pytest.fixture(scope="module")
def onto() -> Ontology:
    return load_ontology()


@pytest.fixture(scope="module")
def diseases(onto: Ontology) -> list[Disease]:
    return [d for d in onto.diseases("omim") if len(d.terms) >= 5]


@pytest.fixture(scope="module")
def ranker(onto: Ontology) -> DiseaseRanker:
    return DiseaseRanker(onto)


def sample_profile(diseases: list[Disease], rng: random.Random) -> PhenotypeProfile:
    disease = rng.choice(diseases)
    terms = rng.sample(sorted(disease.terms), min(len(disease.terms), rng.randint(3, 10)))
    excluded = []
    others = sorted(rng.choice(diseases).terms - disease.terms)
    if rng.random() < 0.3 and others:
        excluded = [format_hpo(rng.choice(others))]
    genes = [rng.choice(["A", "B", "C", "D"])] if rng.random() < 0.3 else []
    return PhenotypeProfile.of(map(format_hpo, terms), excluded, genes)


def two(onto: Ontology, a: PhenotypeProfile, b: PhenotypeProfile) -> MatchIndex:
    index = MatchIndex(onto)
    index.add_many([("a", a), ("b", b)])
    return index


def test_identical_profiles_score_max(onto: Ontology) -> None:
    profile = PhenotypeProfile.of([MICROCEPHALY, CLEFT_PALATE, FEBRILE_SEIZURE])
    other = PhenotypeProfile.of([SHORT_STATURE])
    index = two(onto, profile, other)
    best = index.search(profile, threshold=0.0)
    assert best[0].patient_id == "a"
    assert best[0].phenotype_score == pytest.approx(1.0)
    assert best[0].raw_score > best[1].raw_score
    assert {m.query_term for m in best[0].matched_terms} == {
        MICROCEPHALY,
        CLEFT_PALATE,
        FEBRILE_SEIZURE,
    }


def test_similarity_is_symmetric(onto: Ontology, diseases: list[Disease]) -> None:
    rng = random.Random(3)
    for _ in range(20):
        a, b = sample_profile(diseases, rng), sample_profile(diseases, rng)
        index = two(onto, a, b)
        assert index.score(a, "b").raw_score == pytest.approx(index.score(b, "a").raw_score)
        assert 0.0 <= index.score(a, "b").phenotype_score <= 1.0


def test_explanation_names_most_informative_common_ancestor(onto: Ontology) -> None:
    query = PhenotypeProfile.of([FEBRILE_SEIZURE, CLEFT_PALATE])
    index = two(onto, PhenotypeProfile.of([FOCAL_SEIZURE, CLEFT_PALATE]), query)
    match = index.score(query, "a")
    pairs = {m.query_term: m for m in match.matched_terms}
    assert pairs[FEBRILE_SEIZURE].match_term == FOCAL_SEIZURE
    assert pairs[FEBRILE_SEIZURE].common_ancestor == SEIZURE
    assert pairs[FEBRILE_SEIZURE].common_ancestor_name == "Seizure"
    assert pairs[FEBRILE_SEIZURE].ic == pytest.approx(onto.ic(1250))
    assert pairs[CLEFT_PALATE].common_ancestor == CLEFT_PALATE
    assert match.matched_terms[0].ic >= match.matched_terms[-1].ic  # most informative first
    assert all(0 < m.contribution < 1 for m in match.matched_terms)


def test_contributions_add_up_to_the_raw_score(onto: Ontology) -> None:
    query = PhenotypeProfile.of(
        [FEBRILE_SEIZURE, SEIZURE, CLEFT_PALATE, MICROCEPHALY], excluded=[FOCAL_SEIZURE]
    )
    stored = PhenotypeProfile.of([FOCAL_SEIZURE, CLEFT_PALATE], genes=["EFTUD2"])
    index = MatchIndex(onto, conflict_weight=1.0)
    index.add_many([("a", stored), ("b", PhenotypeProfile.of([MICROCEPHALY]))])
    match = index.score(PhenotypeProfile.of(query.observed, query.excluded, ["EFTUD2"]), "a")
    assert match.conflict_penalty > 0 and match.gene_bonus == index.gene_weight
    parts = sum(m.contribution for m in match.matched_terms)
    assert parts - match.conflict_penalty + match.gene_bonus == pytest.approx(match.raw_score)


def test_excluded_terms_conflict_and_lower_the_score(onto: Ontology) -> None:
    query = PhenotypeProfile.of([FEBRILE_SEIZURE, MICROCEPHALY, CLEFT_PALATE])
    clean = PhenotypeProfile.of([MICROCEPHALY, CLEFT_PALATE])
    without_seizures = PhenotypeProfile.of([MICROCEPHALY, CLEFT_PALATE], excluded=[SEIZURE])
    shown = two(onto, clean, without_seizures)  # by default conflicts are shown, not scored
    assert shown.score(query, "b").conflicts and shown.score(query, "b").conflict_penalty == 0
    index = MatchIndex(onto, conflict_weight=1.0)
    index.add_many([("a", clean), ("b", without_seizures)])
    ok, conflicted = index.score(query, "a"), index.score(query, "b")
    assert conflicted.phenotype_score < ok.phenotype_score
    assert not ok.conflicts
    (conflict,) = conflicted.conflicts
    assert (conflict.observed_term, conflict.excluded_term) == (FEBRILE_SEIZURE, SEIZURE)
    assert conflict.excluded_by == "match"
    # The query side excluding what the patient has conflicts the same way.
    reverse = PhenotypeProfile.of([MICROCEPHALY], excluded=[CLEFT_PALATE])
    assert index.score(reverse, "a").conflicts[0].excluded_by == "query"


def test_shared_genes_raise_the_score(onto: Ontology) -> None:
    a = PhenotypeProfile.of([MICROCEPHALY], genes=["EFTUD2"])
    b = PhenotypeProfile.of([MICROCEPHALY], genes=["SNRPB"])
    index = two(onto, a, b)
    query = PhenotypeProfile.of([MICROCEPHALY], genes=["EFTUD2"])
    with_gene, without = index.score(query, "a"), index.score(query, "b")
    assert with_gene.shared_genes == {"EFTUD2"}
    assert with_gene.raw_score == pytest.approx(without.raw_score + index.gene_weight)


def test_unknown_ids_are_skipped_and_said(onto: Ontology, caplog: pytest.LogCaptureFixture) -> None:
    index = MatchIndex(onto)
    index.add("stored", PhenotypeProfile.of([SEIZURE, "HP:9999999"]))
    with caplog.at_level("WARNING", logger="ailedger.health"):
        (match,) = index.search(
            PhenotypeProfile.of([SEIZURE, "HP:8888888"], excluded=["junk"]), threshold=0.0
        )
    assert match.patient_id == "stored"
    assert match.skipped_terms == ("HP:8888888", "junk")
    assert "HP:8888888" in caplog.text
    alternate = index.score(PhenotypeProfile.of(["HP:0004715"]), "stored")
    assert alternate.skipped_terms == ()


def test_invalid_profiles_are_refused(onto: Ontology) -> None:
    index = MatchIndex(onto)
    with pytest.raises(UnknownTermError):
        index.add("x", PhenotypeProfile.of(["HP:9999999"]))
    with pytest.raises(PhenotypeError, match="observed"):
        index.add("x", PhenotypeProfile.of([], excluded=[SEIZURE]))
    with pytest.raises(PhenotypeError, match="both observed and excluded"):
        index.add("x", PhenotypeProfile.of([SEIZURE], excluded=[SEIZURE]))
    index.add("x", PhenotypeProfile.of([SEIZURE]))
    with pytest.raises(PhenotypeError, match="already"):
        index.add("x", PhenotypeProfile.of([SEIZURE]))
    assert len(index) == 1


def test_from_mme_reads_observed_excluded_and_genes() -> None:
    patient = {
        "id": "P1",
        "features": [
            {"id": MICROCEPHALY, "observed": "yes"},
            {"id": CLEFT_PALATE},
            {"id": SEIZURE, "observed": "no"},
        ],
        "genomicFeatures": [{"gene": {"id": "EFTUD2"}}],
    }
    profile = PhenotypeProfile.from_mme(patient)
    assert profile == PhenotypeProfile.of([MICROCEPHALY, CLEFT_PALATE], [SEIZURE], ["EFTUD2"])
    assert not PhenotypeProfile.from_mme(patient, with_genes=False).genes


def test_calibration_and_threshold(onto: Ontology, diseases: list[Disease]) -> None:
    rng = random.Random(11)
    index = MatchIndex(onto)
    index.add_many((f"p{i}", sample_profile(diseases, rng)) for i in range(300))
    index.calibrate(pairs=500, seed=1)
    grid = [index.calibrated(x / 20) for x in range(31)]
    assert grid == sorted(grid)
    assert grid[0] >= 0.0 and grid[-1] == 1.0
    query = sample_profile(diseases, rng)
    everything = index.search(query, limit=300, threshold=0.0)
    assert len(everything) == 300
    for threshold in (0.5, 0.9, 0.99):
        kept = index.search(query, limit=300, threshold=threshold)
        assert all(m.score >= threshold for m in kept)
        assert len(kept) == sum(1 for m in everything if m.score >= threshold)
    assert index.search(query, threshold=1.01) == []


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    limit=st.integers(1, 8),
    threshold=st.sampled_from([0.0, 0.5, 0.9]),
)
def test_index_matches_brute_force_scan(seed: int, limit: int, threshold: float) -> None:
    onto = load_ontology()
    pool = [d for d in onto.diseases("omim") if len(d.terms) >= 5][:400]
    rng = random.Random(seed)
    index = MatchIndex(onto)
    index.add_many((f"p{i}", sample_profile(pool, rng)) for i in range(120))
    for _ in range(5):
        query = sample_profile(pool, rng)
        got = index.search(query, limit=limit, threshold=threshold, exclude=["p0"])
        expected = index.scan(query, limit=limit, threshold=threshold, exclude=["p0"])
        assert [m.raw_score for m in got] == pytest.approx([m.raw_score for m in expected])
        assert "p0" not in {m.patient_id for m in got}


def test_disease_ranking_finds_a_disease_from_its_own_terms(
    onto: Ontology, ranker: DiseaseRanker, diseases: list[Disease]
) -> None:
    rng = random.Random(5)
    for disease in rng.sample([d for d in diseases if len(d.terms) >= 8], 5):
        query = PhenotypeProfile.of(map(format_hpo, disease.terms))
        top = ranker.rank(query, limit=3)
        assert top[0].disease_id == disease.id or math.isclose(
            top[0].score, ranker.scores(query)[disease.id]
        )
        assert top[0].matched_terms
        assert top[0].score >= top[1].score


def test_disease_ranking_explains_and_covers_both_sources(ranker: DiseaseRanker) -> None:
    query = PhenotypeProfile.of([FEBRILE_SEIZURE, MICROCEPHALY])
    top = ranker.rank(query, limit=200)
    assert {m.disease_id.split(":")[0] for m in top} == {"OMIM", "ORPHA"}
    assert all(len(m.matched_terms) <= 2 for m in top)


@pytest.mark.skipif(not MME_DATA.exists(), reason="shared MME data not present")
def test_mme_leave_one_out(onto: Ontology) -> None:
    """The benchmark in small: 34/34 same-gene partners first, phenotype only."""
    patients = json.loads(MME_DATA.read_text())
    genes = {p["id"]: PhenotypeProfile.from_mme(p).genes for p in patients}
    profiles = {p["id"]: PhenotypeProfile.from_mme(p, with_genes=False) for p in patients}
    index = MatchIndex(onto)
    index.add_many(profiles.items())
    hits = total = 0
    for pid, profile in profiles.items():
        partners = {o for o, g in genes.items() if o != pid and g & genes[pid]}
        if partners:
            total += 1
            best = index.search(profile, limit=1, threshold=0.0, exclude=[pid])
            hits += best[0].patient_id in partners
    assert total == 34
    assert hits >= 34
    # Disease ranking over OMIM: the benchmark reaches top-1 29/43, top-10 36/43.
    omim = DiseaseRanker(onto, sources=("omim",))
    ranks = []
    for patient in patients:
        if patient.get("disorders"):
            answer = patient["disorders"][0]["id"].replace("MIM:", "OMIM:")
            scores = omim.scores(profiles[patient["id"]])
            mine = scores.get(answer, -math.inf)
            ranks.append(1 + sum(1 for k, v in scores.items() if k != answer and v >= mine))
    assert len(ranks) == 43
    assert sum(1 for r in ranks if r == 1) >= 27
    assert sum(1 for r in ranks if r <= 10) >= 34

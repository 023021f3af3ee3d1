"""The HPO wrapper: validation, ancestors, information content, disease annotations."""

from __future__ import annotations

import random
import subprocess
import sys

import pytest

from ailedger.errors import AiledgerError
from ailedger.health.phenotype import Ontology, UnknownTermError, format_hpo, load_ontology

SEIZURE = "HP:0001250"
FEBRILE_SEIZURE = "HP:0002373"


@pytest.fixture(scope="module")
def onto() -> Ontology:
    return load_ontology()


def test_import_does_not_load_hpo3() -> None:
    code = "import sys, ailedger.health.phenotype; print('pyhpo' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_loads_once_offline_and_fast(onto: Ontology) -> None:
    assert load_ontology() is onto
    assert len(onto) > 15_000
    assert onto.version
    # Loose bound for loaded CI machines; benchmarks/match_latency.py reports the figure.
    assert onto.load_seconds < 5.0


@pytest.mark.parametrize("spelling", [SEIZURE, "0001250", 1250, " HP:0001250 "])
def test_term_lookup(onto: Ontology, spelling: str | int) -> None:
    term = onto.term(spelling)
    assert term.id == SEIZURE
    assert term.name == "Seizure"
    assert term.ic > 0


@pytest.mark.parametrize("bad", ["HP:9999999", "seizure", "HP:", "HP:00012500000", ""])
def test_unknown_terms_raise_clear_errors(onto: Ontology, bad: str) -> None:
    with pytest.raises(UnknownTermError) as info:
        onto.term(bad)
    assert isinstance(info.value, AiledgerError)
    assert "HP:" in str(info.value)


def test_obsolete_term_maps_to_replacement(onto: Ontology) -> None:
    # HP:0002281 (obsolete) is replaced by HP:0002282 (Gray matter heterotopia).
    assert onto.term("HP:0002281").id == "HP:0002282"


def test_ancestors(onto: Ontology) -> None:
    febrile = onto.term_id(FEBRILE_SEIZURE)
    ancestors = onto.ancestors(febrile)
    assert febrile in ancestors
    assert 1250 in ancestors  # Seizure
    assert 1 in ancestors  # All
    assert 118 in ancestors  # Phenotypic abnormality
    assert onto.is_ancestor(1250, febrile)
    assert not onto.is_ancestor(febrile, 1250)
    assert onto.mica(febrile, 1250) == (1250, onto.ic(1250))


def test_ic_never_decreases_from_ancestor_to_descendant(onto: Ontology) -> None:
    rng = random.Random(7)
    terms = rng.sample(sorted(onto), 3000)
    for term in terms:
        for ancestor in onto.ancestors(term):
            assert onto.ic(ancestor) <= onto.ic(term) + 1e-9, (format_hpo(ancestor), term)
    assert onto.ic(1) == 0.0


def test_disease_annotations(onto: Ontology) -> None:
    omim = {d.id: d for d in onto.diseases("omim")}
    orpha = onto.diseases("orpha")
    assert len(omim) > 5000
    assert len(orpha) > 2000
    assert all(d.id.startswith("ORPHA:") for d in orpha)
    # Mandibulofacial dysostosis, Guion-Almeida type (EFTUD2): microcephaly is a feature.
    mfdga = omim["OMIM:610536"]
    assert "mandibulofacial" in mfdga.name.lower()
    assert any(onto.is_ancestor(onto.term_id("HP:0000252"), t) for t in mfdga.terms)


def test_alternate_ids_map_to_their_current_term(onto: Ontology) -> None:
    # hp.obo lists HP:0004715 as an alt_id of HP:0000003 (Multicystic kidney dysplasia).
    assert onto.alt_ids_loaded
    assert onto.term("HP:0004715").id == "HP:0000003"
    assert onto.term_id("HP:0004715") == onto.term_id("HP:0000003")


def test_known_ids_sorts_out_the_unknown_ones(onto: Ontology) -> None:
    known, skipped = onto.known_ids(["HP:0004715", "HP:9999999", SEIZURE, "seizure", SEIZURE])
    assert known == [3, 1250]
    assert skipped == ["HP:9999999", "seizure"]
    assert onto.known_id(9999999) == -1 and onto.known_id(4715) == 3

"""Matchmaker Exchange benchmark: 50 published patients, leave-one-out, phenotype only.

Data: ``../shared/data/mme/benchmark_patients.json`` (ga4gh/mme-apis testing data, Buske et
al. 2015). Genes are hidden from the matcher (profiles are read with ``with_genes=False``);
they only define the answer.

* Patient matching: each patient is the query against the 49 others (``MatchIndex.search``,
  threshold 0, every patient ranked). A hit is a patient sharing a candidate gene ranked
  first; 34 patients have such a partner.
* Disease ranking: for the 43 patients with an OMIM disorder, the rank of that disorder among
  the OMIM diseases (``DiseaseRanker``, Phenomizer-style Resnik, over hpo3's annotations; and
  ``LikelihoodRanker``, what ``health diagnose`` uses, over ``phenotype.hpoa``); top-1 and
  top-10 counts.

Reference, in the same run: Jaccard overlap of the raw observed HPO id sets (no ontology), for
both tasks. Ranks are pessimistic: a candidate tied with the answer counts as ranked above it.
The last line is ``same_gene_partner_top1: n/34``. ``--quick`` skips the disease reference.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ailedger.health.diagnosis import DiseaseRanker
from ailedger.health.likelihood import LikelihoodRanker
from ailedger.health.matching import MatchIndex
from ailedger.health.phenotype import load_ontology
from ailedger.health.profile import PhenotypeProfile

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mme" / "benchmark_patients.json"


def load_patients(path: Path = DATA) -> list[dict[str, Any]]:
    patients: list[dict[str, Any]] = json.loads(path.read_text())
    return patients


def genes_of(patient: Mapping[str, Any]) -> frozenset[str]:
    return PhenotypeProfile.from_mme(patient).genes


def pessimistic_rank(scores: Mapping[str, float], answers: set[str]) -> int | None:
    """1 + number of non-answers scoring at least the best answer (None: answer unscored)."""
    found = [scores[a] for a in answers if a in scores]
    if not found:
        return None
    best = max(found)
    return 1 + sum(1 for k, v in scores.items() if k not in answers and v >= best)


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0


def partner_ranks(
    patients: list[dict[str, Any]], score_all: Callable[[dict[str, Any]], dict[str, float]]
) -> tuple[list[int | None], float]:
    """Pessimistic rank of the best same-gene partner per patient, and the mean R-precision
    (share of a patient's k partners among its k best-scored others, ties counted against)."""
    ranks, precisions = [], []
    for patient in patients:
        partners = {
            p["id"]
            for p in patients
            if p["id"] != patient["id"] and genes_of(p) & genes_of(patient)
        }
        if partners:
            scores = score_all(patient)
            ranks.append(pessimistic_rank(scores, partners))
            kth = sorted(scores.values(), reverse=True)[len(partners) - 1]
            above = sum(1 for k, v in scores.items() if k not in partners and v >= kth)
            inside = sum(1 for k in partners if scores.get(k, -1.0) >= kth)
            precisions.append(min(inside, max(0, len(partners) - above)) / len(partners))
    return ranks, sum(precisions) / len(precisions)


def summary(ranks: list[int | None]) -> str:
    top1 = sum(1 for r in ranks if r == 1)
    top10 = sum(1 for r in ranks if r is not None and r <= 10)
    return f"top-1 {top1}/{len(ranks)}, top-10 {top10}/{len(ranks)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="skip the disease reference")
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args()
    patients = load_patients(args.data)
    onto = load_ontology()
    profiles = {p["id"]: PhenotypeProfile.from_mme(p, with_genes=False) for p in patients}
    index = MatchIndex(onto)
    index.add_many(profiles.items())
    index.calibrate()

    def ours(patient: dict[str, Any]) -> dict[str, float]:
        found = index.search(
            profiles[patient["id"]], limit=len(index), threshold=0.0, exclude=[patient["id"]]
        )
        return {m.patient_id: m.raw_score for m in found}

    def reference(patient: dict[str, Any]) -> dict[str, float]:
        mine = profiles[patient["id"]].observed
        return {k: jaccard(mine, v.observed) for k, v in profiles.items() if k != patient["id"]}

    started = time.perf_counter()
    our_ranks, our_rp = partner_ranks(patients, ours)
    our_s = time.perf_counter() - started
    ref_ranks, ref_rp = partner_ranks(patients, reference)
    print(
        f"same-gene partner, ailedger simGIC (MatchIndex): {summary(our_ranks)}, "
        f"mean R-precision {our_rp:.3f} ({our_s:.2f} s)"
    )
    print(
        f"same-gene partner, reference Jaccard of raw HPO ids: {summary(ref_ranks)}, "
        f"mean R-precision {ref_rp:.3f}"
    )
    print(f"  ailedger ranks: {our_ranks}")
    print(f"  Jaccard ranks:  {ref_ranks}")

    started = time.perf_counter()
    ranker = DiseaseRanker(onto, sources=("omim",))
    with_disorder = [p for p in patients if p.get("disorders")]
    answers = [{d["id"].replace("MIM:", "OMIM:") for d in p["disorders"]} for p in with_disorder]
    dis_ranks = [
        pessimistic_rank(ranker.scores(profiles[p["id"]]), a)
        for p, a in zip(with_disorder, answers, strict=True)
    ]
    dis_s = time.perf_counter() - started
    print(
        f"OMIM disorder, ailedger Resnik (Phenomizer) + simGIC: {summary(dis_ranks)} "
        f"over {len(ranker)} OMIM diseases ({dis_s:.1f} s)"
    )
    print(f"  ranks: {dis_ranks}")
    lr = LikelihoodRanker(onto, sources=("OMIM",))
    lr_ranks = [
        pessimistic_rank(lr.scores(profiles[p["id"]]), a)
        for p, a in zip(with_disorder, answers, strict=True)
    ]
    print(f"OMIM disorder, ailedger likelihood ratios: {summary(lr_ranks)} over {len(lr)} diseases")
    print(f"  ranks: {lr_ranks}")
    if not args.quick:
        annotations = {
            d.id: frozenset(f"HP:{t:07d}" for t in d.terms) for d in onto.diseases("omim")
        }
        ref_dis = [
            pessimistic_rank(
                {k: jaccard(profiles[p["id"]].observed, v) for k, v in annotations.items()}, a
            )
            for p, a in zip(with_disorder, answers, strict=True)
        ]
        print(f"OMIM disorder, reference Jaccard of raw HPO ids: {summary(ref_dis)}")
        print(f"  ranks: {ref_dis}")
    top1 = sum(1 for r in our_ranks if r == 1)
    ref_top1 = sum(1 for r in ref_ranks if r == 1)
    print(f"partner top-1 vs Jaccard reference: {top1} vs {ref_top1}")
    print(f"same_gene_partner_top1: {top1}/{len(our_ranks)}")


if __name__ == "__main__":
    main()

"""Diagnosis ranking quality: simulated patients (tuning and reporting splits) and the MME 50.

Development set, all from public sources and a seed:

* **Simulated patients** (Robinson et al. 2020 simulate LIRICAL's the same way): an OMIM disease
  of ``phenotype.hpoa`` with at least 3 phenotype annotations; each annotated feature is drawn
  with its frequency (an unstated frequency with a hidden one, uniform in 0.1-1.0, not the
  ranker's default), then reported with the case's reporting rate (uniform in 0.3-0.9: real
  case reports list a part of what the patient has); at most 12 kept, at least 2.
  Imprecision: 30% of terms are replaced by a parent (10% by a grandparent). Noise: 0 to 3
  terms (30/35/20/15%) drawn from other diseases' annotations outside this disease's closure.
  Onset and mode of inheritance (30% each, when annotated). Excluded terms, 1 to 4: 60% from
  the disease's own annotations that the patient did not draw (so, realistically, often ones
  the disease has at low frequency, and sometimes frequent ones the patient lacks), 40% from a
  differential disease sharing a term, outside this disease's closure. An excluded term never
  contradicts an observed one.
* **Splits**: ``--tune`` fits the ranker's constants on the tuning split (seed 1) only; the
  reported figures come from the reporting split (seed 2), which tuning never sees.
* **MME benchmark**: the 43 patients of ``shared/data/mme/benchmark_patients.json`` with an OMIM
  disorder (report only); their ``observed: no`` features are the excluded terms.

Methods, same run, ranked among OMIM diseases: ailedger's likelihood-ratio ranker
(``LikelihoodRanker``), the older Phenomizer-style ``DiseaseRanker`` (Resnik + simGIC) and a
naive Resnik best-match average (query terms to the disease's terms, hpo3's annotations), each
with and without the excluded terms (the naive baseline ignores them). Ranks are pessimistic
(ties count against). Calibration of the LR ranker's normalised post-test probability: expected
calibration error of the top-1 probability (10 bins) and mean log loss of the true disease.
``--matching`` adds patient-to-patient matching: 300 pairs of simulated patients with the
same disease (seed 2), each patient the query against the 599 others (``MatchIndex``); the
share whose top hit is its partner, with and without excluded terms, conflict weight 1 and 0.

The last line is ``top1: x`` (LR ranker, reporting split, with excluded terms).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ailedger.health.annotations import (
    ASPECT_COURSE,
    ASPECT_INHERITANCE,
    ASPECT_PHENOTYPE,
    load_annotations,
)
from ailedger.health.diagnosis import DiseaseRanker
from ailedger.health.likelihood import (
    MODE_OF_INHERITANCE,
    ONSET,
    LikelihoodRanker,
    LrParams,
)
from ailedger.health.matching import MatchIndex
from ailedger.health.phenotype import Ontology, format_hpo, load_ontology
from ailedger.health.profile import PhenotypeProfile

MME = Path(__file__).resolve().parents[2] / "shared" / "data" / "mme" / "benchmark_patients.json"
TUNING_SEED, REPORTING_SEED = 1, 2
TOP = (118,)  # Phenotypic abnormality: never the imprecise stand-in for a term


@dataclass(frozen=True)
class Case:
    answer: str
    profile: PhenotypeProfile


@dataclass(frozen=True)
class _Disease:
    id: str
    features: list[tuple[int, float]]  # (term, frequency or NaN)
    modes: list[int]
    onsets: list[int]
    closure: frozenset[int]


def annotated_diseases(onto: Ontology) -> list[_Disease]:
    ann = load_annotations(onto)
    by_slot: dict[int, _Disease] = {}
    for slot, term, freq, neg, aspect in zip(
        ann.disease.tolist(),
        ann.term.tolist(),
        ann.freq.tolist(),
        ann.negated.tolist(),
        ann.aspect.tolist(),
        strict=True,
    ):
        if neg or not ann.ids[slot].startswith("OMIM:"):
            continue
        d = by_slot.setdefault(slot, _Disease(ann.ids[slot], [], [], [], frozenset()))
        if aspect == ASPECT_PHENOTYPE and onto.is_ancestor(118, term) and freq != 0:
            d.features.append((term, freq))
        elif aspect == ASPECT_INHERITANCE and onto.is_ancestor(MODE_OF_INHERITANCE, term):
            d.modes.append(term)
        elif aspect == ASPECT_COURSE and onto.is_ancestor(ONSET, term):
            d.onsets.append(term)
    return [
        replace(d, closure=onto.closure(t for t, _ in d.features))
        for d in by_slot.values()
        if len({t for t, _ in d.features}) >= 3
    ]


def parents(onto: Ontology, term: int) -> list[int]:
    above = onto.ancestors(term) - {term}
    return sorted(a for a in above if not any(a in onto.ancestors(b) - {b} for b in above))


def imprecise(onto: Ontology, rng: random.Random, term: int) -> int:
    roll = rng.random()
    steps = 2 if roll < 0.1 else 1 if roll < 0.3 else 0
    for _ in range(steps):
        up = [p for p in parents(onto, term) if len(onto.ancestors(p)) > 3]
        if up:
            term = rng.choice(up)
    return term


def simulate(onto: Ontology, diseases: Sequence[_Disease], count: int, seed: int) -> list[Case]:
    rng = random.Random(seed)
    all_features = [(d, t) for d in diseases for t, _ in d.features]
    cases = []
    for _ in range(count):
        d = rng.choice(diseases)
        drawn, missed = draw_features(rng, d)
        observed = [imprecise(onto, rng, t) for t in drawn]
        observed += noise_terms(rng, d, all_features)
        if d.modes and rng.random() < 0.3:
            observed.append(rng.choice(d.modes))
        if d.onsets and rng.random() < 0.3:
            observed.append(rng.choice(d.onsets))
        excluded = excluded_terms(onto, rng, d, missed, set(observed), diseases)
        profile = PhenotypeProfile.of(map(format_hpo, observed), map(format_hpo, excluded))
        cases.append(Case(d.id, profile))
    return cases


def draw_features(rng: random.Random, d: _Disease) -> tuple[list[int], list[int]]:
    drawn, missed = [], []
    reporting = rng.uniform(0.3, 0.9)
    for term, freq in d.features:
        p = rng.uniform(0.1, 1.0) if math.isnan(freq) else freq
        if rng.random() < p:
            if rng.random() < reporting:
                drawn.append(term)
        else:
            missed.append(term)
    rng.shuffle(drawn)
    if len(drawn) < 2:
        ordered = sorted(d.features, key=lambda f: -(f[1] if not math.isnan(f[1]) else 0.5))
        drawn = list(dict.fromkeys(drawn + [t for t, _ in ordered]))[:2]
        missed = [t for t in missed if t not in drawn]
    return drawn[:12], missed + drawn[12:]


def noise_terms(
    rng: random.Random, d: _Disease, all_features: Sequence[tuple[_Disease, int]]
) -> list[int]:
    roll, out = rng.random(), list[int]()
    count = 0 if roll < 0.3 else 1 if roll < 0.65 else 2 if roll < 0.85 else 3
    while len(out) < count:
        other, term = rng.choice(all_features)
        if other.id != d.id and term not in d.closure:
            out.append(term)
    return out


def excluded_terms(
    onto: Ontology,
    rng: random.Random,
    d: _Disease,
    missed: list[int],
    observed: set[int],
    diseases: Sequence[_Disease],
) -> list[int]:
    closure = onto.closure(observed)
    out: list[int] = []
    for _ in range(rng.randint(1, 4)):
        candidate: int | None
        if missed and rng.random() < 0.6:
            candidate = rng.choice(missed)
        else:
            candidate = differential_term(rng, d, observed, diseases)
        # Never exclude what is observed or implied by what is observed.
        if candidate is not None and candidate not in closure and candidate not in out:
            out.append(candidate)
    return out


def differential_term(
    rng: random.Random, d: _Disease, observed: set[int], diseases: Sequence[_Disease]
) -> int | None:
    for _ in range(50):
        other = rng.choice(diseases)
        if other.id != d.id and other.closure & observed:
            options = [t for t, _ in other.features if t not in d.closure]
            if options:
                return rng.choice(options)
    return None


def mme_cases(path: Path = MME) -> list[Case]:
    patients: list[dict[str, Any]] = json.loads(path.read_text())
    cases = []
    for p in patients:
        for disorder in p.get("disorders") or []:
            if disorder["id"].startswith("MIM:"):
                answer = disorder["id"].replace("MIM:", "OMIM:")
                cases.append(Case(answer, PhenotypeProfile.from_mme(p, with_genes=False)))
                break
    return cases


# -- evaluation --------------------------------------------------------------------------


def pessimistic_rank(scores: Mapping[str, float], answer: str) -> int | None:
    if answer not in scores:
        return None
    best = scores[answer]
    return 1 + sum(1 for k, v in scores.items() if k != answer and v >= best)


@dataclass(frozen=True)
class Figures:
    top1: float
    top10: float
    mrr: float

    def __str__(self) -> str:
        return f"top-1 {self.top1:.3f}  top-10 {self.top10:.3f}  MRR {self.mrr:.3f}"


def figures(ranks: Sequence[int | None]) -> Figures:
    n = len(ranks)
    return Figures(
        sum(1 for r in ranks if r == 1) / n,
        sum(1 for r in ranks if r is not None and r <= 10) / n,
        sum(1 / r for r in ranks if r is not None) / n,
    )


def without_excluded(case: Case) -> Case:
    return Case(case.answer, PhenotypeProfile.of(case.profile.observed))


Scorer = Callable[[PhenotypeProfile], Mapping[str, float]]


def evaluate(score: Scorer, cases: Sequence[Case]) -> list[int | None]:
    return [pessimistic_rank(score(c.profile), c.answer) for c in cases]


def calibration(ranker: LikelihoodRanker, cases: Sequence[Case]) -> tuple[float, float, float]:
    """(expected calibration error of the top-1 probability, mean log loss of the answer,
    mean top-1 probability)."""
    index = {d: i for i, d in enumerate(ranker.ids)}
    bins: list[list[tuple[float, bool]]] = [[] for _ in range(10)]
    losses, tops = [], []
    for case in cases:
        probs = ranker.probabilities(case.profile)
        top = int(np.argmax(probs))
        p_top = float(probs[top])
        bins[min(9, int(p_top * 10))].append((p_top, ranker.ids[top] == case.answer))
        p_answer = float(probs[index[case.answer]]) if case.answer in index else 0.0
        losses.append(-math.log(max(p_answer, 1e-12)))
        tops.append(p_top)
    ece = sum(
        abs(sum(p for p, _ in b) / len(b) - sum(ok for _, ok in b) / len(b)) * len(b)
        for b in bins
        if b
    ) / len(cases)
    return ece, sum(losses) / len(losses), sum(tops) / len(tops)


def naive_resnik(onto: Ontology) -> Scorer:
    """Resnik best-match average, query terms to disease terms, excluded terms ignored."""
    plain = DiseaseRanker(onto, sources=("omim",), gic_weight=0.0, conflict_weight=0.0)
    return lambda profile: plain.scores(PhenotypeProfile.of(profile.observed))


# -- tuning --------------------------------------------------------------------------------


def tune(onto: Ontology, cases: Sequence[Case], only: set[str]) -> LrParams:
    """Coordinate search on the tuning split: MRR with excluded terms, then the temperature
    by log loss."""
    grid: dict[str, tuple[float, ...]] = {
        "epsilon": (0.05, 0.1, 0.2, 0.3),
        "kappa": (0.05, 0.1, 0.25),
        "eta": (0.1, 0.2, 0.3),
        "default_frequency": (0.3, 0.5, 0.7),
        "eps_onset": (0.05, 0.1, 0.2),
        "reporting": (0.3, 0.5, 0.7),
        "checked": (3.0, 5.0, 8.0, 12.0, 20.0),
    }
    grid = {k: v for k, v in grid.items() if not only or k in only}
    best = LrParams()
    best_mrr = mrr_of(onto, best, cases)
    for name, values in sorted(grid.items(), key=lambda kv: kv[0] != "checked"):
        for value in values:
            trial = replace(best, **{name: value})
            if trial == best:
                continue
            mrr = mrr_of(onto, trial, cases)
            print(f"  tune {name}={value}: MRR {mrr:.4f} (best {best_mrr:.4f})", flush=True)
            if mrr > best_mrr:
                best, best_mrr = trial, mrr
    temperatures = (0.25, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0)
    losses = {
        t: calibration(
            LikelihoodRanker(
                onto, sources=("OMIM",), params=replace(best, temperature=t), cache=False
            ),
            cases,
        )[1]
        for t in temperatures
    }
    return replace(best, temperature=min(losses, key=losses.__getitem__))


def mrr_of(onto: Ontology, params: LrParams, cases: Sequence[Case]) -> float:
    ranker = LikelihoodRanker(onto, sources=("OMIM",), params=params, cache=False)
    return figures(evaluate(ranker.scores, cases)).mrr


# -- patient matching ----------------------------------------------------------------------


def same_disease_pairs(onto: Ontology, diseases: Sequence[_Disease], pairs: int) -> list[Case]:
    by_disease: dict[str, list[Case]] = {}
    for case in simulate(onto, diseases, 20 * pairs, REPORTING_SEED):
        by_disease.setdefault(case.answer, []).append(case)
    two = [found[:2] for found in by_disease.values() if len(found) >= 2][:pairs]
    return [case for pair in two for case in pair]


def partner_top1(onto: Ontology, cases: Sequence[Case], weight: float, excluded: bool) -> float:
    index = MatchIndex(onto, conflict_weight=weight)
    chosen = [c if excluded else without_excluded(c) for c in cases]
    index.add_many((f"{i}", c.profile) for i, c in enumerate(chosen))
    hits = 0
    for i, case in enumerate(chosen):
        found = index.search(case.profile, limit=1, threshold=0.0, exclude=[f"{i}"])
        hits += bool(found) and chosen[int(found[0].patient_id)].answer == case.answer
    return hits / len(chosen)


def matching_report(onto: Ontology, diseases: Sequence[_Disease]) -> None:
    cases = same_disease_pairs(onto, diseases, 300)
    print(f"\npatient matching, {len(cases) // 2} simulated same-disease pairs: partner top-1")
    for weight in (1.0, 0.0):
        with_ex = partner_top1(onto, cases, weight, True)
        without = partner_top1(onto, cases, weight, False)
        print(
            f"  conflict weight {weight}: with excluded {with_ex:.3f}, observed only {without:.3f}"
        )


# -- the run -------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=400, help="reporting split size")
    parser.add_argument("--tune", type=int, default=0, help="tune on this many tuning cases")
    parser.add_argument("--only", default="", help="tune only these constants (a,b,...)")
    parser.add_argument("--matching", action="store_true", help="also patient matching")
    parser.add_argument("--quick", action="store_true", help="100 reporting cases, no baselines")
    args = parser.parse_args()
    started = time.perf_counter()
    onto = load_ontology()
    print(f"ontology load {onto.load_seconds:.2f} s (HPO {onto.version})")
    diseases = annotated_diseases(onto)
    if args.tune:
        only = {name for name in args.only.split(",") if name}
        params = tune(onto, simulate(onto, diseases, args.tune, TUNING_SEED), only)
        print(f"tuned on {args.tune} tuning cases: {params}")
        return
    loaded = time.perf_counter()
    ranker = LikelihoodRanker(onto, sources=("OMIM",))
    print(f"LR ranker ready in {time.perf_counter() - loaded:.2f} s, {len(ranker)} OMIM diseases")
    count = 100 if args.quick else args.cases
    splits = {
        f"simulated reporting split (seed {REPORTING_SEED}, {count} cases)": simulate(
            onto, diseases, count, REPORTING_SEED
        ),
        "MME benchmark (43 OMIM patients)": mme_cases(),
    }
    methods: dict[str, Scorer] = {"ailedger LR": ranker.scores}
    if not args.quick:
        old = DiseaseRanker(onto, sources=("omim",))
        methods["Phenomizer-style (old)"] = old.scores
        methods["naive Resnik BMA"] = naive_resnik(onto)
    headline = 0.0
    for split, cases in splits.items():
        print(f"\n{split}")
        for name, score in methods.items():
            timed = time.perf_counter()
            with_ex = figures(evaluate(score, cases))
            per_case = (time.perf_counter() - timed) / len(cases) * 1000
            without = figures(evaluate(score, [without_excluded(c) for c in cases]))
            print(
                f"  {name:<24} with excluded: {with_ex}   observed only: {without}"
                f"   ({per_case:.0f} ms/case)"
            )
            if name == "ailedger LR" and split.startswith("simulated"):
                headline = with_ex.top1
        ece, loss, mean_top = calibration(ranker, cases)
        print(
            f"  LR calibration: ECE of top-1 probability {ece:.3f}, mean top-1 probability "
            f"{mean_top:.3f}, log loss of the answer {loss:.3f}"
        )
    if args.matching:
        matching_report(onto, diseases)
    print(f"\nparams {ranker.params}; {time.perf_counter() - started:.0f} s in all")
    print(f"top1: {headline:.3f}")


if __name__ == "__main__":
    main()

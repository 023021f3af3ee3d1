"""Diagnosis ranking by likelihood ratios (in the style of LIRICAL, Robinson et al. 2020).

Every item of a case is a test result; for each candidate disease ``D`` its likelihood ratio
``LR = P(result | D) / P(result | a random rare disease)`` says how much the result moves the
odds of ``D``. The post-test log odds of ``D`` are the pretest log odds plus the sum of the
``log10 LR`` of all items, so each item's part of the score is its ``log10 LR``, and the parts
add up exactly to the score (:class:`Diagnosis`). Annotations (frequencies, ``NOT``
qualifiers, onset, inheritance) come from ``phenotype.hpoa``
(:mod:`ailedger.health.annotations`).

* **Observed term** ``t``. ``F(D, a)``, the chance that a patient with ``D`` shows ``a``, is the
  largest frequency of ``D``'s annotations at or below ``a``; the background ``bg(a)`` is the
  mean of ``F(·, a)`` over all diseases. ``P(t | D)`` is the best of: ``F(D, t)`` (the disease
  has ``t`` or a more specific term); for each ancestor ``a`` of ``t``, ``bg(t) / bg(a)``
  times ``f`` when ``D`` is annotated with ``a`` itself (the query is more specific than the
  annotation) or times ``kappa * F(D, a)`` when ``D`` only has a sibling of ``t`` under ``a``.
  A share ``epsilon`` of terms is noise a disease does not explain, so
  ``LR = (1 - epsilon) * P(t | D) / bg(t) + epsilon``; a disease annotated ``NOT t`` (or
  ``NOT`` an ancestor of ``t``) gets the floor ``epsilon``.
* **Excluded term** ``e``. Reported absent means the clinician looked for ``e`` and did not
  see it. With ``q = F(D, e)`` and a share ``eta`` of exclusions that are wrong, the patient
  lacks ``e`` with chance ``1 - (1 - eta) q``; and clinicians look for the features of the
  diseases they suspect (81% of the excluded terms of issue 16's held-out cases were
  annotated to the true disease): ``1 + (checked - 1) max(0, 1 - 2q)`` times likelier for a
  feature ``D`` has (``q > 0``) than for one it lacks. ``LR`` is that times ``1 - (1 - eta) q``,
  over its mean across candidates: evidence against a disease that nearly always has ``e``,
  support for one that has it rarely (it was in the differential and its absence is
  expected), about neutral for one without it.
* **Onset and inheritance** stated in the case (terms under ``HP:0003674`` Onset and
  ``HP:0000005`` Mode of inheritance): compatible with ``D`` when the case's term and one of
  ``D``'s are one the ancestor of the other; ``P = 1 - eps`` if compatible else ``eps``,
  over the same average across annotated diseases. A disease without such annotation is
  neutral (``LR = 1``).
* **Features the case does not mention.** Each feature ``s`` of ``D`` that no case term
  touches counts ``log10(1 - r f(D, s))`` (the patient shows it with chance ``f``, a
  clinician reports what they see with chance ``r``, ``reporting``), taken relative to the
  mean candidate; one part, ``unreported``. Without it a disease annotated with everything
  explains every case. Its independence assumption over-penalises diseases with very many
  annotated features (on some MME patients, -8 log10 for a disease with 76).
* **Pretest probability** ``1/N`` for each of the ``N`` candidates.

``probability`` is the post-test probability normalised over the candidates (exactly one of
them is assumed to be the diagnosis), tempered by ``temperature``: the items are not
independent, so raw LRs are over-confident; the temperature was fitted on the tuning split
of the simulated development set (``benchmarks/diagnosis_quality.py``), never on the reported
split. ``score`` is the untempered post-test ``log10`` odds, the sum the explanation shows.
"""

from __future__ import annotations

import functools
import hashlib
import heapq
import math
import os
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from ailedger.health.annotations import (
    ASPECT_COURSE,
    ASPECT_INHERITANCE,
    ASPECT_PHENOTYPE,
    Annotations,
    data_dir,
    load_annotations,
)
from ailedger.health.phenotype import Ontology, PhenotypeError, format_hpo, load_ontology
from ailedger.health.profile import PhenotypeProfile

PHENOTYPIC_ABNORMALITY = 118
MODE_OF_INHERITANCE = 5
ONSET = 3674

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
PartKind = Literal["observed", "excluded", "onset", "inheritance", "unreported"]


@dataclass(frozen=True)
class LrParams:
    """The model's few constants (fitted on the tuning split only; see module doc)."""

    default_frequency: float = 0.5  # an annotation without a frequency
    epsilon: float = 0.3  # share of observed terms a disease does not explain
    kappa: float = 0.05  # a sibling match counts this much of a match through the annotation
    eta: float = 0.3  # share of excluded terms that are wrongly excluded
    eps_inheritance: float = 0.05  # a disease seen with a mode of inheritance not annotated
    eps_onset: float = 0.1  # onset outside the annotated ones (neighbouring ages blur)
    reporting: float = 0.5  # chance that a feature the patient has is reported
    checked: float = 12.0  # how much likelier a clinician checks (excludes) a disease's feature
    temperature: float = 0.75  # divides log odds before normalising over candidates


@dataclass(frozen=True)
class Part:
    """One item of the case and what it does to one disease's odds.

    ``log10_lr`` is its part of the score. ``disease_term`` is the annotation that explains it
    (``None`` when none does), ``frequency`` that annotation's frequency for this disease and
    ``background`` the term's frequency over all diseases (the weights of the ratio);
    ``relation`` says how the case term and the disease's term meet; ``conflict`` marks
    evidence against the disease from a contradiction (a ``NOT`` annotation, or an
    excluded feature the disease has)."""

    kind: PartKind
    term: str
    term_name: str
    log10_lr: float
    relation: str
    disease_term: str | None
    frequency: float | None
    background: float | None
    conflict: bool


@dataclass(frozen=True)
class Diagnosis:
    """A candidate disease: ``score = pretest_log10_odds + sum(p.log10_lr for p in parts)``."""

    disease_id: str
    name: str
    rank: int
    score: float
    pretest_log10_odds: float
    probability: float
    parts: tuple[Part, ...]


@dataclass(frozen=True)
class Ranking:
    """The best diseases for one case, and the case's ids that were not used (with why)."""

    diagnoses: tuple[Diagnosis, ...]
    candidates: int
    skipped: tuple[str, ...] = ()
    unused: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())
    tracked: tuple[tuple[str, int | None], ...] = ()


@dataclass(frozen=True)
class _Item:
    kind: PartKind
    term: int


class LikelihoodRanker:
    """Diseases of ``phenotype.hpoa`` ranked by likelihood ratios (see module doc)."""

    def __init__(
        self,
        ontology: Ontology | None = None,
        *,
        sources: Iterable[str] = ("OMIM", "ORPHA", "DECIPHER"),
        params: LrParams | None = None,
        annotations: Annotations | None = None,
        cache: bool = True,
    ) -> None:
        self.ontology = onto = ontology if ontology is not None else load_ontology()
        self.params = p = params if params is not None else LrParams()
        ann = annotations if annotations is not None else load_annotations(onto)
        self.annotations = ann
        prefixes = tuple(f"{s}:" for s in sources)
        self._slots = np.array(
            [i for i, d in enumerate(ann.ids) if d.startswith(prefixes)], dtype=np.int64
        )
        self.ids = [ann.ids[i] for i in self._slots.tolist()]
        self.names = [ann.names[i] for i in self._slots.tolist()]
        self._local = {d: i for i, d in enumerate(self.ids)}
        local = np.full(len(ann.ids), -1, dtype=np.int64)
        local[self._slots] = np.arange(len(self._slots))
        self._n = n = len(self._slots)
        if n == 0:
            raise PhenotypeError(f"no annotated disease from {', '.join(sources)}")
        d_local = local[ann.disease]
        rows = d_local >= 0
        freq = self._frequencies(ann)
        positive = rows & (ann.aspect == ASPECT_PHENOTYPE) & ~ann.negated & (freq > 0)
        negative = rows & (ann.aspect == ASPECT_PHENOTYPE) & (ann.negated | (freq == 0))
        self._rows = _DiseaseRows.unique(d_local[positive], ann.term[positive], freq[positive], n)
        chance = p.reporting * self._rows.freqs
        self._rows.weights = np.log10(1.0 - chance * (1 - 1e-9))
        self._index = _Postings.build(onto, self._rows, p.kappa, cache)
        self._total_weight = np.bincount(self._rows.slots, self._rows.weights, minlength=n)
        self._not = _term_sets(d_local[negative], ann.term[negative])
        self._not_by_term = _slots_by_term(d_local[negative], ann.term[negative])
        self._modes = self._course(d_local, rows, ann, ASPECT_INHERITANCE, MODE_OF_INHERITANCE)
        self._onsets = self._course(d_local, rows, ann, ASPECT_COURSE, ONSET)
        self.pretest_log10_odds = math.log10(1.0 / n) - math.log10(1.0 - 1.0 / n) if n > 1 else 0

    def __len__(self) -> int:
        return self._n

    def _frequencies(self, ann: Annotations) -> FloatArray:
        d = self.params.default_frequency
        f = np.where(np.isnan(ann.freq), d, ann.freq)
        # n/m from a small cohort is weak evidence: 1/1 is not "always". One pseudo-patient
        # at the default frequency pulls small cohorts towards it.
        m = ann.cohort.astype(np.float64)
        shrunk: FloatArray = np.where(m > 0, (f * m + d) / (m + 1.0), f)
        return shrunk

    def _course(
        self,
        d_local: IntArray,
        rows: npt.NDArray[np.bool_],
        ann: Annotations,
        aspect: int,
        root: int,
    ) -> dict[int, frozenset[int]]:
        onto = self.ontology
        chosen = rows & (ann.aspect == aspect) & ~ann.negated
        found = _term_sets(d_local[chosen], ann.term[chosen])
        return {
            slot: kept
            for slot, terms in found.items()
            if (kept := frozenset(t for t in terms if onto.is_ancestor(root, t)))
        }

    # -- ranking ------------------------------------------------------------------------

    def rank(
        self, profile: PhenotypeProfile, *, limit: int = 10, track: Iterable[str] = ()
    ) -> Ranking:
        """The ``limit`` most probable diseases for a case, each with its explanation, and
        the rank of each disease of ``track`` (ties counted against it; ``None`` when it is
        not a candidate)."""
        items, skipped, unused = self._items(profile)
        matrix = self._matrix(items)
        logs = self.pretest_log10_odds + matrix.sum(axis=0)
        probability = self._normalised(logs)
        best = heapq.nlargest(min(limit + 5, self._n), range(self._n), key=logs.__getitem__)
        rows = []
        for slot in best:
            parts = tuple(
                self._explain(item, slot, float(lr))
                for item, lr in zip(items, matrix[:, slot], strict=True)
            )
            score = self.pretest_log10_odds + sum(part.log10_lr for part in parts)
            rows.append((score, slot, parts))
        rows.sort(key=lambda r: (-r[0], self.ids[r[1]]))
        out = tuple(
            Diagnosis(
                self.ids[slot],
                self.names[slot],
                i,
                score,
                self.pretest_log10_odds,
                float(probability[slot]),
                parts,
            )
            for i, (score, slot, parts) in enumerate(rows[:limit], 1)
        )
        notes = tuple(
            f"{t} skipped: not an HPO term of release {self.ontology.version}" for t in skipped
        )
        notes += tuple(
            f"{t} not used: neither a phenotypic abnormality, onset nor mode of inheritance"
            for t in unused
        )
        tracked = tuple((d, self._position(logs, d)) for d in track)
        return Ranking(out, self._n, tuple(skipped), tuple(unused), notes, tracked)

    def _position(self, logs: FloatArray, disease_id: str) -> int | None:
        if disease_id not in self._local:
            return None
        mine = logs[self._local[disease_id]]
        return int((logs >= mine).sum())

    def scores(self, profile: PhenotypeProfile) -> dict[str, float]:
        """Post-test log10 odds of every candidate (for benchmarks)."""
        logs = self.pretest_log10_odds + self._matrix(self._items(profile)[0]).sum(axis=0)
        return dict(zip(self.ids, logs.tolist(), strict=True))

    def probabilities(self, profile: PhenotypeProfile) -> FloatArray:
        """Normalised, tempered post-test probability of every candidate, in ``ids`` order."""
        logs = self.pretest_log10_odds + self._matrix(self._items(profile)[0]).sum(axis=0)
        return self._normalised(logs)

    def _normalised(self, logs: FloatArray) -> FloatArray:
        scaled = (logs - logs.max()) / self.params.temperature
        weights = np.power(10.0, scaled)
        normalised: FloatArray = weights / weights.sum()
        return normalised

    def _items(self, profile: PhenotypeProfile) -> tuple[list[_Item], list[str], list[str]]:
        onto = self.ontology
        observed, skipped = onto.known_ids(sorted(profile.observed))
        excluded, skipped_excluded = onto.known_ids(sorted(profile.excluded))
        skipped += skipped_excluded
        items, unused = [], []
        for term in observed:
            if onto.is_ancestor(PHENOTYPIC_ABNORMALITY, term):
                items.append(_Item("observed", term))
            elif onto.is_ancestor(ONSET, term):
                items.append(_Item("onset", term))
            elif onto.is_ancestor(MODE_OF_INHERITANCE, term):
                items.append(_Item("inheritance", term))
            else:
                unused.append(format_hpo(term))
        both = set(observed) & set(excluded)
        if both:
            raise PhenotypeError(
                f"{', '.join(map(format_hpo, sorted(both)))} is both observed and excluded; "
                "keep one of the two"
            )
        for term in excluded:
            if onto.is_ancestor(PHENOTYPIC_ABNORMALITY, term):
                items.append(_Item("excluded", term))
            else:
                unused.append(format_hpo(term))
        if not any(i.kind == "observed" for i in items):
            why = f" ({', '.join(skipped)} skipped as unknown)" if skipped else ""
            raise PhenotypeError(f"a case needs at least one observed phenotypic abnormality{why}")
        if self.params.reporting > 0:
            items.append(_Item("unreported", 0))
        return items, skipped, unused

    def _matrix(self, items: list[_Item]) -> FloatArray:
        """One row of log10 LRs per item, one column per candidate."""
        rows = [
            self._unreported(items) if item.kind == "unreported" else self._log10_lr(item)
            for item in items
        ]
        return np.vstack(rows)

    def _unreported(self, items: list[_Item]) -> FloatArray:
        """Each annotated feature ``s`` of ``D`` that no case term touches (none at, above or
        below it) counts ``log10(1 - r f(D, s))``: a patient shows it with chance ``f`` and a
        clinician reports what they see with chance ``r``. Relative to the mean candidate
        (features of the average disease go unreported too), so it is an LR."""
        onto, idx = self.ontology, self._index
        told = [i.term for i in items if i.kind in ("observed", "excluded")]
        tops = [t for t in told if not any(o != t and onto.is_ancestor(o, t) for o in told)]
        touched = np.zeros(self._n)
        for t in tops:
            slots, below = idx.below(t)
            touched[slots] += below
        above = onto.closure(i.term for i in items if i.kind == "observed")
        for a in above:
            if not any(onto.is_ancestor(t, a) for t in tops):
                slots, direct = idx.direct_weight(a)
                touched[slots] += direct
        unreported = self._total_weight - touched
        relative: FloatArray = unreported - unreported.mean()
        return relative

    def _log10_lr(self, item: _Item) -> FloatArray:
        if item.kind == "observed":
            return np.log10(self._observed_lr(item.term))
        if item.kind == "excluded":
            return np.log10(self._excluded_lr(item.term))
        table = self._onsets if item.kind == "onset" else self._modes
        eps = self.params.eps_onset if item.kind == "onset" else self.params.eps_inheritance
        return np.log10(self._course_lr(item.term, table, eps))

    def _observed_lr(self, term: int) -> FloatArray:
        p, idx, bg_t = self.params, self._index, self._index.background(term)
        explained = np.zeros(self._n)
        for a in self.ontology.ancestors(term):
            slots, full, through = idx.posting(a)
            values = full if a == term else through * min(1.0, bg_t / idx.background(a))
            _maximum(explained, slots, values)
        lr: FloatArray = (1.0 - p.epsilon) * explained / bg_t + p.epsilon
        # A disease known to lack the term (or a more general one) cannot explain it.
        for a in self.ontology.ancestors(term):
            lacking = self._not_by_term.get(a)
            if lacking is not None:
                lr[lacking] = p.epsilon
        return lr

    def _excluded_lr(self, term: int) -> FloatArray:
        p = self.params
        slots, full, _ = self._index.posting(term)
        q = np.zeros(self._n)
        q[slots] = full
        # Reported absent: the clinician looked (likelier for a feature of a disease in the
        # differential, up to ``checked`` times for one it has rarely) and did not see it
        # (chance 1 - q, or a wrong "no"). The lift fades to none at q = 1/2, so the absence
        # of a feature most patients with the disease have always counts against it.
        looked = np.ones(self._n)
        looked[slots] = 1.0 + (p.checked - 1.0) * np.clip(1.0 - 2.0 * full, 0.0, 1.0)
        evidence = looked * (1.0 - (1.0 - p.eta) * q)
        lr: FloatArray = evidence / evidence.mean()
        return lr

    def _course_lr(self, term: int, table: dict[int, frozenset[int]], eps: float) -> FloatArray:
        onto = self.ontology
        compatible = np.zeros(self._n, dtype=np.bool_)
        annotated = np.zeros(self._n, dtype=np.bool_)
        for slot, terms in table.items():
            annotated[slot] = True
            compatible[slot] = any(
                onto.is_ancestor(s, term) or onto.is_ancestor(term, s) for s in terms
            )
        if not annotated.any():
            return np.ones(self._n)
        share = compatible.sum() / annotated.sum()
        background = (1.0 - eps) * share + eps * (1.0 - share)
        lr: FloatArray = np.where(compatible, 1.0 - eps, eps) / background
        lr[~annotated] = 1.0
        return lr

    # -- explanations --------------------------------------------------------------------

    def _explain(self, item: _Item, slot: int, log10_lr: float) -> Part:
        if item.kind == "unreported":
            what = "the disease's features the case does not mention"
            relation = "against the average candidate"
            return Part("unreported", "", what, log10_lr, relation, None, None, None, False)
        onto, term = self.ontology, item.term
        name = onto.name(term)
        if item.kind in ("onset", "inheritance"):
            table = self._onsets if item.kind == "onset" else self._modes
            terms = sorted(table.get(slot, ()))
            hit = next(
                (s for s in terms if onto.is_ancestor(s, term) or onto.is_ancestor(term, s)), None
            )
            relation = "not annotated" if not terms else ("compatible" if hit else "incompatible")
            shown = hit if hit is not None else (terms[0] if terms else None)
            return Part(
                item.kind,
                format_hpo(term),
                name,
                log10_lr,
                relation,
                None if shown is None else format_hpo(shown),
                None,
                None,
                relation == "incompatible",
            )
        bg = self._index.background(term)
        lacks = self._not.get(slot, frozenset())
        negated = next((a for a in sorted(onto.ancestors(term)) if a in lacks), None)
        if item.kind == "excluded":
            match = self._rows.best_below(onto, slot, term)
            if match is None:
                relation = "disease lacks it (NOT)" if negated is not None else "not annotated"
                return Part(
                    "excluded",
                    format_hpo(term),
                    name,
                    log10_lr,
                    relation,
                    None if negated is None else format_hpo(negated),
                    0.0,
                    bg,
                    False,
                )
            s, f = match
            return Part(
                "excluded",
                format_hpo(term),
                name,
                log10_lr,
                "disease has it",
                format_hpo(s),
                f,
                bg,
                log10_lr < 0,
            )
        if negated is not None:
            return Part(
                "observed",
                format_hpo(term),
                name,
                log10_lr,
                "disease lacks it (NOT)",
                format_hpo(negated),
                0.0,
                bg,
                True,
            )
        found = self._rows.best_match(onto, self._index, slot, term, self.params.kappa)
        if found is None:
            return Part(
                "observed", format_hpo(term), name, log10_lr, "unexplained", None, None, bg, False
            )
        s, f, relation = found
        return Part(
            "observed", format_hpo(term), name, log10_lr, relation, format_hpo(s), f, bg, False
        )


def _maximum(target: FloatArray, slots: IntArray, values: FloatArray) -> None:
    # Slots of one posting are distinct, so fancy indexing is an exact element-wise max.
    target[slots] = np.maximum(target[slots], values)


def _slots_by_term(slots: IntArray, terms: IntArray) -> dict[int, IntArray]:
    found: dict[int, list[int]] = {}
    for slot, term in zip(slots.tolist(), terms.tolist(), strict=True):
        found.setdefault(term, []).append(slot)
    return {term: np.array(sorted(set(ss)), dtype=np.int64) for term, ss in found.items()}


def _term_sets(slots: IntArray, terms: IntArray) -> dict[int, frozenset[int]]:
    found: dict[int, set[int]] = {}
    for slot, term in zip(slots.tolist(), terms.tolist(), strict=True):
        found.setdefault(slot, set()).add(term)
    return {slot: frozenset(ts) for slot, ts in found.items()}


class _DiseaseRows:
    """The positive phenotype annotations: disease slot, term and frequency per row."""

    def __init__(self, slots: IntArray, terms: IntArray, freqs: FloatArray, n: int) -> None:
        self.slots = slots.astype(np.int64)
        self.terms = terms.astype(np.int64)
        self.freqs = freqs
        self.n = n
        self.weights = np.zeros(len(freqs))

    @classmethod
    def unique(cls, slots: IntArray, terms: IntArray, freqs: FloatArray, n: int) -> _DiseaseRows:
        """One row per (disease, term), with the largest frequency stated for it."""
        key = slots.astype(np.int64) * (int(terms.max()) + 1) + terms
        order = np.lexsort((-freqs, key))
        key = key[order]
        first = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1])))
        kept = order[first]
        return cls(slots[kept], terms[kept], freqs[kept], n)

    def of(self, slot: int) -> list[tuple[int, float]]:
        rows = np.flatnonzero(self.slots == slot)
        return list(zip(self.terms[rows].tolist(), self.freqs[rows].tolist(), strict=True))

    def best_below(self, onto: Ontology, slot: int, term: int) -> tuple[int, float] | None:
        """The disease's most frequent annotation at or below ``term``."""
        below = [(f, s) for s, f in self.of(slot) if onto.is_ancestor(term, s)]
        if not below:
            return None
        f, s = max(below, key=lambda x: (x[0], -x[1]))
        return s, f

    def best_match(
        self, onto: Ontology, index: _Postings, slot: int, term: int, kappa: float
    ) -> tuple[int, float, str] | None:
        """The annotation that explains ``term`` best, as :meth:`LikelihoodRanker._observed_lr`
        weighs it: (disease term, its frequency, how the two terms meet)."""
        bg_t, best = index.background(term), None
        for s, f in self.of(slot):
            if onto.is_ancestor(term, s):
                value, relation = f, "exact" if s == term else "disease has a more specific term"
            elif onto.is_ancestor(s, term):
                value = f * min(1.0, bg_t / index.background(s))
                relation = "disease has a more general term"
            else:
                common = onto.ancestors(term) & onto.ancestors(s)
                if not common:
                    continue
                a = min(common, key=lambda c: (index.background(c), c))
                value = kappa * f * min(1.0, bg_t / index.background(a))
                relation = f"related through {format_hpo(a)} {onto.name(a)}"
            if best is None or value > best[0]:
                best = (value, s, f, relation)
        if best is None or best[0] <= 0:
            return None
        return best[1], best[2], best[3]


class _Postings:
    """For every term ``a`` the diseases with an annotation at or below it: ``F(D, a)`` (the
    largest such frequency) and ``max(f(D, a), kappa * F(D, a))`` (through an annotation of
    ``a`` itself, or a sibling of the query under ``a``); and the background ``bg(a)``."""

    def __init__(
        self,
        bounds: dict[int, tuple[int, int]],
        slots: IntArray,
        full: FloatArray,
        through: FloatArray,
        background: dict[int, float],
        floor: float,
        below: FloatArray,
        direct: FloatArray,
    ) -> None:
        self._below = below
        self._direct = direct
        self._bounds = bounds
        self._slots = slots
        self._full = full
        self._through = through
        self._background = background
        self._floor = floor

    def posting(self, term: int) -> tuple[IntArray, FloatArray, FloatArray]:
        lo, hi = self._bounds.get(term, (0, 0))
        return self._slots[lo:hi], self._full[lo:hi], self._through[lo:hi]

    def below(self, term: int) -> tuple[IntArray, FloatArray]:
        """Diseases, and the sum of their feature weights at or below ``term``."""
        lo, hi = self._bounds.get(term, (0, 0))
        return self._slots[lo:hi], self._below[lo:hi]

    def direct_weight(self, term: int) -> tuple[IntArray, FloatArray]:
        """Diseases, and the weight of their annotation of ``term`` itself (0 if none)."""
        lo, hi = self._bounds.get(term, (0, 0))
        return self._slots[lo:hi], self._direct[lo:hi]

    def background(self, term: int) -> float:
        """Mean over all diseases of ``F(·, term)``, never under half a disease's worth."""
        return self._background.get(term, self._floor)

    @classmethod
    def build(cls, onto: Ontology, rows: _DiseaseRows, kappa: float, cache: bool) -> _Postings:
        """The postings, read from the annotation folder when an earlier run built them for
        the same ontology and annotation rows (building takes about a second)."""
        arrays = _cached_postings(onto, rows) if cache else _postings_arrays(onto, rows)
        n, floor = rows.n, 0.5 / rows.n
        firsts, ends = arrays["term_first"].tolist(), arrays["term_end"].tolist()
        heads = arrays["heads"].tolist()
        bounds = dict(zip(heads, zip(firsts, ends, strict=True), strict=True))
        sums = arrays["sums"].tolist()
        background = {t: max(floor, s / n) for t, s in zip(heads, sums, strict=True)}
        full, exact = arrays["full"], arrays["exact"]
        through = np.maximum(exact, kappa * full)
        slots = arrays["slots"]
        return cls(bounds, slots, full, through, background, floor, arrays["below"], arrays["dw"])


_POSTINGS_KEYS = (
    "slots",
    "full",
    "exact",
    "below",
    "dw",
    "heads",
    "term_first",
    "term_end",
    "sums",
)


def _cached_postings(onto: Ontology, rows: _DiseaseRows) -> dict[str, npt.NDArray[Any]]:
    digest = hashlib.sha256(onto.version.encode())
    for array in (rows.slots, rows.terms, rows.freqs, rows.weights):
        digest.update(np.ascontiguousarray(array).tobytes())
    path = data_dir() / f"postings-{digest.hexdigest()[:16]}.npz"
    try:
        with open(path, "rb") as file, np.load(file) as stored:  # closed even if unreadable
            return {k: stored[k] for k in _POSTINGS_KEYS}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        pass  # missing, truncated or of another layout: build it again
    arrays = _postings_arrays(onto, rows)
    try:
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npz", delete=False) as tmp:
            np.savez(tmp, **arrays)  # type: ignore[arg-type]  # numpy stubs: allow_pickle
        os.replace(tmp.name, path)
        # Keep the few most recent (the CLI's and a benchmark's); older ones are stale.
        stale = sorted(path.parent.glob("postings-*.npz"), key=lambda p: -p.stat().st_mtime)
        for old in stale[4:]:
            old.unlink(missing_ok=True)
    except OSError:
        pass  # a read-only folder: build again next time
    return arrays


def _postings_arrays(onto: Ontology, rows: _DiseaseRows) -> dict[str, npt.NDArray[Any]]:
    # Each annotation row is spread to all ancestors of its term, vectorised: the ancestor
    # lists of the distinct terms, laid end to end (CSR), indexed by row.
    distinct = np.unique(rows.terms)
    lists = [sorted(onto.ancestors(t)) for t in distinct.tolist()]
    counts = np.array([len(x) for x in lists], dtype=np.int64)
    flat = np.fromiter((a for x in lists for a in x), dtype=np.int64, count=int(counts.sum()))
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    which = np.searchsorted(distinct, rows.terms)
    per_row = counts[which]
    row_of = np.repeat(np.arange(len(rows.terms)), per_row)
    offset = np.arange(len(row_of)) - np.repeat(np.cumsum(per_row) - per_row, per_row)
    ancestor = flat[starts[which][row_of] + offset]
    freq = rows.freqs[row_of]
    weight = rows.weights[row_of]
    is_direct = ancestor == rows.terms[row_of]
    direct = np.where(is_direct, freq, 0.0)
    direct_weight = np.where(is_direct, weight, 0.0)
    # Group by (ancestor, disease): largest frequency, and largest direct one.
    key = ancestor * rows.n + rows.slots[row_of]
    order = np.argsort(key)
    key, freq, direct = key[order], freq[order], direct[order]
    weight, direct_weight = weight[order], direct_weight[order]
    first = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1])))
    full = np.maximum.reduceat(freq, first)
    unique = key[first]
    terms = unique // rows.n
    term_first = np.flatnonzero(np.concatenate(([True], terms[1:] != terms[:-1])))
    return {
        "slots": unique % rows.n,
        "full": full,
        "exact": np.maximum.reduceat(direct, first),
        "below": np.add.reduceat(weight, first),
        "dw": np.add.reduceat(direct_weight, first),
        "heads": terms[term_first],
        "term_first": term_first,
        "term_end": np.append(term_first[1:], len(terms)),
        "sums": np.add.reduceat(full, term_first),
    }


@functools.cache
def default_ranker() -> LikelihoodRanker:
    """One ranker over every annotated disease, built once per process."""
    return LikelihoodRanker()

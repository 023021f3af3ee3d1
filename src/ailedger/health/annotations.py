"""HPO disease annotations with frequencies, onset and inheritance, and HPO's alternate ids.

hpo3's embedded release has no annotation frequencies, no onset, no inheritance and no
alternate ids, which a likelihood-ratio ranker and real-world queries need. They come from
the HPO project's ``phenotype.hpoa`` (release 2025-05-06) and ``hp.obo``, as shipped inside
the ``patientmatcher==4.7.0`` wheel on PyPI (pinned by sha256 in
``scripts/fetch_hpo_annotations.sh``, which ``scripts/setup.sh`` runs). That script calls
``python -m ailedger.health.annotations build WHEEL``: only the columns used here are kept,
as numpy arrays (``annotations.npz``) and a small JSON of disease names, so that loading
takes milliseconds. The files live in ``$AILEDGER_HPO_DATA``, by default
``$XDG_CACHE_HOME/ailedger/hpo`` (``~/.cache/ailedger/hpo``).

Rows of ``phenotype.hpoa`` kept: OMIM, ORPHA and DECIPHER diseases; aspect ``P``
(phenotype), ``I`` (mode of inheritance) and ``C`` (clinical course: onset). Frequencies are
read as the HPO documentation defines them: ``HP:0040280`` obligate (1.0), ``HP:0040281``
very frequent (80-99%: 0.895), ``HP:0040282`` frequent (30-79%: 0.545), ``HP:0040283``
occasional (5-29%: 0.17), ``HP:0040284`` very rare (1-4%: 0.025), ``HP:0040285`` excluded
(0), ``n/m`` and ``x%`` as given (``m`` kept, so a ranker can discount 1/1), empty as unknown
(NaN). A ``NOT`` qualifier marks a feature the disease is known to lack.
"""

from __future__ import annotations

import functools
import io
import json
import math
import os
import re
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from ailedger.health.phenotype import PhenotypeError

if TYPE_CHECKING:
    from ailedger.health.phenotype import Ontology

FORMAT = 1
FETCH_COMMAND = "bash scripts/fetch_hpo_annotations.sh"
_HPOA = "patientMatcher/resources/phenotype.hpoa"
_OBO = "patientMatcher/resources/hp.obo.txt"
_NAMES = "diseases.json"
_ARRAYS = "annotations.npz"
_PREFIXES = ("OMIM:", "ORPHA:", "DECIPHER:")
ASPECTS = {"P": 0, "I": 1, "C": 2}
ASPECT_PHENOTYPE, ASPECT_INHERITANCE, ASPECT_COURSE = 0, 1, 2
_CATEGORY = {
    "HP:0040280": 1.0,
    "HP:0040281": 0.895,
    "HP:0040282": 0.545,
    "HP:0040283": 0.17,
    "HP:0040284": 0.025,
    "HP:0040285": 0.0,
}
_RATIO = re.compile(r"^(\d+)/(\d+)$")
_PERCENT = re.compile(r"^(\d+(?:\.\d+)?)%$")

IntArray = npt.NDArray[np.int32]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


class AnnotationsMissingError(PhenotypeError):
    """The HPO annotation files have not been fetched (or are from an older format)."""


def data_dir() -> Path:
    """Where the preprocessed annotations live (``$AILEDGER_HPO_DATA`` overrides)."""
    explicit = os.environ.get("AILEDGER_HPO_DATA")
    if explicit:
        return Path(explicit)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "ailedger" / "hpo"


def _missing(where: Path, why: str) -> AnnotationsMissingError:
    return AnnotationsMissingError(
        f"HPO annotations {why} in {where}; fetch them with `{FETCH_COMMAND}` "
        "(scripts/setup.sh runs it; set AILEDGER_HPO_DATA to use another folder)"
    )


# -- building the cache from the wheel -------------------------------------------------


def parse_frequency(text: str) -> tuple[float, int]:
    """(frequency, cohort size or 0) of one ``frequency`` cell; NaN when not stated."""
    text = text.strip()
    if not text:
        return math.nan, 0
    if text in _CATEGORY:
        return _CATEGORY[text], 0
    ratio = _RATIO.match(text)
    if ratio:
        n, m = int(ratio.group(1)), int(ratio.group(2))
        return (min(1.0, n / m), m) if m > 0 else (math.nan, 0)
    percent = _PERCENT.match(text)
    if percent:
        return min(1.0, float(percent.group(1)) / 100), 0
    return math.nan, 0


def _hp_number(text: str) -> int:
    return int(text.strip().removeprefix("HP:"))


@dataclass
class _Columns:
    disease: list[int]
    term: list[int]
    freq: list[float]
    cohort: list[int]
    negated: list[bool]
    aspect: list[int]


def _read_hpoa(lines: Iterable[str]) -> tuple[str, list[tuple[str, str]], _Columns]:
    version, diseases, slots = "", list[tuple[str, str]](), dict[str, int]()
    cols = _Columns([], [], [], [], [], [])
    for line in lines:
        if line.startswith("#"):
            if line.startswith("#version:"):
                version = line.split(":", 1)[1].strip()
            continue
        row = line.rstrip("\n").split("\t")
        if len(row) < 11 or row[0] == "database_id" or not row[0].startswith(_PREFIXES):
            continue
        if row[10] not in ASPECTS:
            continue
        slot = slots.get(row[0])
        if slot is None:
            slot = slots[row[0]] = len(diseases)
            diseases.append((row[0], row[1]))
        freq, cohort = parse_frequency(row[7])
        cols.disease.append(slot)
        cols.term.append(_hp_number(row[3]))
        cols.freq.append(freq)
        cols.cohort.append(cohort)
        cols.negated.append(row[2].strip() == "NOT")
        cols.aspect.append(ASPECTS[row[10]])
    return version, diseases, cols


def _read_obo(lines: Iterable[str]) -> tuple[str, dict[int, int]]:
    """(data version, alternate or obsolete id -> current id) of an ``hp.obo`` file."""
    version, mapping, current = "", dict[int, int](), None
    obsolete = False
    for line in lines:
        line = line.strip()
        if line.startswith("data-version:"):
            version = line.split(":", 1)[1].strip().rsplit("/", 1)[-1]
        elif line == "[Term]":
            current, obsolete = None, False
        elif line.startswith("id: HP:"):
            current = _hp_number(line[4:])
        elif line.startswith("alt_id: HP:") and current is not None:
            mapping[_hp_number(line[8:])] = current
        elif line == "is_obsolete: true":
            obsolete = True
        elif line.startswith("replaced_by: HP:") and obsolete and current is not None:
            mapping[current] = _hp_number(line[13:])
    return version, mapping


def build(wheel: Path, out: Path | None = None) -> Path:
    """Preprocess the two files of a ``patientmatcher`` wheel into ``out`` (atomically)."""
    out = out if out is not None else data_dir()
    with zipfile.ZipFile(wheel) as archive:
        hpoa = io.TextIOWrapper(archive.open(_HPOA), encoding="utf-8")
        hpoa_version, diseases, cols = _read_hpoa(hpoa)
        obo = io.TextIOWrapper(archive.open(_OBO), encoding="utf-8")
        obo_version, alt = _read_obo(obo)
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "format": FORMAT,
        "source": wheel.name,
        "hpoa_version": hpoa_version,
        "obo_version": obo_version,
        "diseases": diseases,
    }
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        np.savez(
            Path(tmp) / _ARRAYS,
            disease=np.array(cols.disease, dtype=np.int32),
            term=np.array(cols.term, dtype=np.int32),
            freq=np.array(cols.freq, dtype=np.float64),
            cohort=np.array(cols.cohort, dtype=np.int32),
            negated=np.array(cols.negated, dtype=np.bool_),
            aspect=np.array(cols.aspect, dtype=np.int8),
            alt_from=np.array(list(alt), dtype=np.int32),
            alt_to=np.array(list(alt.values()), dtype=np.int32),
        )
        (Path(tmp) / _NAMES).write_text(json.dumps(meta, ensure_ascii=False))
        # The old names (which carry the format) go first and the new ones come last, so a
        # cache half-written over another reads as missing, never as new arrays under old
        # names.
        (out / _NAMES).unlink(missing_ok=True)
        os.replace(Path(tmp) / _ARRAYS, out / _ARRAYS)
        os.replace(Path(tmp) / _NAMES, out / _NAMES)
    return out


# -- loading -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RawAnnotations:
    """The cache as stored: HPO ids as in the 2025-05-06 release, not yet mapped."""

    hpoa_version: str
    diseases: tuple[tuple[str, str], ...]
    disease: IntArray
    term: IntArray
    freq: FloatArray
    cohort: IntArray
    negated: BoolArray
    aspect: npt.NDArray[np.int8]
    alt_ids: dict[int, int]


def _read_meta(where: Path) -> dict[str, object]:
    names = where / _NAMES
    if not names.is_file() or not (where / _ARRAYS).is_file():
        raise _missing(where, "are not there")
    try:
        meta = json.loads(names.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise _missing(where, f"cannot be read ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise _missing(where, f"are not in format {FORMAT}")
    return meta


_ARRAY_KEYS = ("disease", "term", "freq", "cohort", "negated", "aspect", "alt_from", "alt_to")


@functools.cache
def load_raw(where: Path | None = None) -> RawAnnotations:
    """The preprocessed annotations (cached per folder); raises
    :class:`AnnotationsMissingError` naming the fetch command when they are not there."""
    where = where if where is not None else data_dir()
    meta = _read_meta(where)
    try:
        # Opened here: np.load leaves its own file open when the archive is not readable.
        with open(where / _ARRAYS, "rb") as file, np.load(file) as arrays:
            a = {k: arrays[k] for k in _ARRAY_KEYS}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        # A truncated or foreign file must say how to mend it, not crash every health command.
        raise _missing(where, f"cannot be read ({type(exc).__name__})") from None
    diseases = meta["diseases"]
    assert isinstance(diseases, list)
    return RawAnnotations(
        hpoa_version=str(meta.get("hpoa_version", "")),
        diseases=tuple((str(d), str(n)) for d, n in diseases),
        disease=a["disease"],
        term=a["term"],
        freq=a["freq"],
        cohort=a["cohort"],
        negated=a["negated"],
        aspect=a["aspect"],
        alt_ids=dict(zip(a["alt_from"].tolist(), a["alt_to"].tolist(), strict=True)),
    )


def alt_ids(where: Path | None = None) -> dict[int, int] | None:
    """Alternate and obsolete HPO ids -> the id they stand for, or None when not fetched."""
    try:
        return load_raw(where).alt_ids
    except AnnotationsMissingError:
        return None


@dataclass(frozen=True)
class Annotations:
    """The annotations with every HPO id mapped to a term of the loaded ontology.

    One row per (disease, term) annotation; rows whose term the ontology does not know
    (removed from HPO since 2025-05-06) are dropped and counted in ``dropped``.
    """

    hpoa_version: str
    ids: tuple[str, ...]
    names: tuple[str, ...]
    disease: IntArray
    term: IntArray
    freq: FloatArray
    cohort: IntArray
    negated: BoolArray
    aspect: npt.NDArray[np.int8]
    dropped: int

    def rows(self, slot: int) -> Iterator[int]:
        """Row numbers of one disease."""
        return iter(np.flatnonzero(self.disease == slot).tolist())


def load_annotations(ontology: Ontology, where: Path | None = None) -> Annotations:
    """The annotations mapped onto ``ontology`` (alternate and obsolete ids resolved)."""
    raw = load_raw(where)
    distinct = np.unique(raw.term)
    lookup = np.full(int(distinct.max()) + 1, -1, dtype=np.int32)
    for number in distinct.tolist():
        current = ontology.known_id(number)
        # An obsolete term without a replacement has no place in the hierarchy: drop it.
        if current > 1 and len(ontology.ancestors(current)) == 1:
            current = -1
        lookup[number] = current
    mapped = lookup[raw.term]
    keep = mapped >= 0
    return Annotations(
        hpoa_version=raw.hpoa_version,
        ids=tuple(d for d, _ in raw.diseases),
        names=tuple(n for _, n in raw.diseases),
        disease=raw.disease[keep],
        term=mapped[keep],
        freq=raw.freq[keep],
        cohort=raw.cohort[keep],
        negated=raw.negated[keep],
        aspect=raw.aspect[keep],
        dropped=int((~keep).sum()),
    )


def main(argv: list[str]) -> int:
    """``build WHEEL`` (preprocess), ``check`` (exit 0 when present) or ``path``."""
    if argv[:1] == ["path"]:
        print(data_dir())
        return 0
    if argv[:1] == ["check"]:
        try:
            _read_meta(data_dir())
        except AnnotationsMissingError:
            return 1
        return 0
    if len(argv) == 2 and argv[0] == "build":
        build(Path(argv[1]))
        return 0
    usage = "usage: python -m ailedger.health.annotations build WHEEL | check | path"
    print(usage, file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

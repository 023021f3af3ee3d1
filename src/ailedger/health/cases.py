"""Cases to diagnose, read from Phenopackets v2 files: one file, several, or directories.

Each phenopacket is validated by :func:`ailedger.health.phenopackets.parse_phenopacket` (the
same checks as ``health import``); its observed and excluded features become the case, and an
onset stated as an HPO onset class (``phenotypicFeatures[].onset.ontologyClass`` or
``diseases[].onset.ontologyClass``) joins the observed terms, where the ranker reads it as the
case's onset. The diagnoses the phenopacket states are kept apart (``stated``) so a ranking
can show where the known answer landed; the ranker never sees them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ailedger.errors import AiledgerError
from ailedger.health.profile import PhenotypeProfile
from ailedger.untrusted_json import UnreadableJsonError, parse_untrusted

MAX_FILE_BYTES = 20_000_000


class CaseFileError(AiledgerError):
    """A case file cannot be read as a Phenopacket v2 (the message names the file and why)."""

    http_status = 422


@dataclass(frozen=True)
class Case:
    """One patient to diagnose: where it came from, its profile and the stated diagnoses."""

    id: str
    file: str
    profile: PhenotypeProfile
    stated: tuple[str, ...] = ()


def case_files(paths: Iterable[Path]) -> list[Path]:
    """The ``.json`` files named, directories expanded (recursively, sorted)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            inside = sorted(p for p in path.rglob("*.json") if p.is_file())
            if not inside:
                raise CaseFileError(f"{path}: the directory holds no .json phenopacket")
            found += inside
        elif path.is_file():
            found.append(path)
        else:
            raise CaseFileError(f"{path}: no such file or directory")
    return found


def read_cases(paths: Iterable[Path]) -> list[Case]:
    """Every phenopacket of ``paths`` as a :class:`Case`; the first bad file raises
    :class:`CaseFileError` naming it and what is wrong."""
    return [case for file in case_files(paths) for case in _cases_of(file)]


def _cases_of(file: Path) -> Iterator[Case]:
    doc = _json(file)
    documents = doc if isinstance(doc, list) else [doc]
    for i, document in enumerate(documents):
        where = f"{file}" if len(documents) == 1 else f"{file} [{i}]"
        yield _case(document, where)


def _json(file: Path) -> Any:
    try:
        if file.stat().st_size > MAX_FILE_BYTES:
            raise CaseFileError(f"{file}: larger than {MAX_FILE_BYTES // 1_000_000} MB")
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise CaseFileError(f"{file}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise CaseFileError(f"{file}: cannot be read ({exc.strerror})") from exc
    try:
        return parse_untrusted(text)
    except UnreadableJsonError as exc:
        raise CaseFileError(f"{file}: {exc}") from None


def _case(document: object, where: str) -> Case:
    # Imported here: the patient model pulls in SQLAlchemy, which a --hpo query never needs.
    from ailedger.health.patients import InvalidRecordError
    from ailedger.health.phenopackets import parse_phenopacket

    if not isinstance(document, dict) or "phenotypicFeatures" not in document:
        raise CaseFileError(
            f"{where}: not a Phenopacket v2 (an object with phenotypicFeatures is expected)"
        )
    try:
        patient = parse_phenopacket(document, where)
    except InvalidRecordError as exc:
        field = f": field {exc.field}" if exc.field else ""
        raise CaseFileError(f"{where}: {exc.record}{field}: {exc.problem}") from exc
    if not patient.observed:
        raise CaseFileError(f"{where}: the phenopacket has no observed phenotypic feature")
    onsets = _onsets(document)
    profile = PhenotypeProfile.of([*patient.observed, *onsets], patient.excluded)
    return Case(str(document.get("id") or patient.local_id), where, profile, patient.diagnoses)


def _onsets(document: dict[str, Any]) -> list[str]:
    """HPO onset classes stated for the phenopacket's features or diseases."""
    found = []
    for key in ("phenotypicFeatures", "diseases"):
        for entry in document.get(key) or []:
            onset = entry.get("onset") if isinstance(entry, dict) else None
            term = onset.get("ontologyClass") if isinstance(onset, dict) else None
            term_id = term.get("id") if isinstance(term, dict) else None
            if isinstance(term_id, str) and term_id.startswith("HP:"):
                found.append(term_id)
    return list(dict.fromkeys(found))

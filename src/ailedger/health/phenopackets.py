"""Read GA4GH Phenopackets v2 JSON into :class:`~ailedger.health.patients.Patient`.

Phenopacket schema v2 (GA4GH, ISO 4454:2022): a ``Phenopacket`` has an ``id``, a ``subject``
(``Individual``: ``id``, ``dateOfBirth``, ``sex``, ``vitalStatus``), ``phenotypicFeatures``
(``type`` an HPO ``OntologyClass``, ``excluded``), ``diseases`` (``term`` OMIM/ORPHA),
``interpretations`` whose ``diagnosis.genomicInterpretations`` name genes (``gene.symbol`` or
``variantInterpretation.variationDescriptor.geneContext.symbol``) and a required ``metaData``.
There is no published Python model for v2 JSON that validates offline, so the checks here are
structural: every field this node uses is type- and format-checked, and a failure names the
JSON path of the field (``phenotypicFeatures[2].type.id``).
"""

from __future__ import annotations

import re
from typing import Any

from ailedger.health._terms import GENE_SYMBOL, term_prefix
from ailedger.health.patients import (
    ClinicianContact,
    InvalidRecordError,
    Patient,
    phenopacket_key,
)

_MAX_KEY = 256  # the store's key column
_SEX = {"FEMALE": "female", "MALE": "male", "OTHER_SEX": "other", "UNKNOWN_SEX": "unknown"}


class _Checker:
    """Type checks that raise :class:`InvalidRecordError` naming the JSON path."""

    def __init__(self, file: str, record: str) -> None:
        self.file = file
        self.record = record

    def fail(self, path: str, problem: str) -> InvalidRecordError:
        return InvalidRecordError(self.file, self.record, path, problem)

    def obj(self, doc: dict[str, Any], key: str, path: str, required: bool) -> dict[str, Any]:
        value = doc.get(key)
        if value is None and not required:
            return {}
        if not isinstance(value, dict):
            raise self.fail(path, "an object is required" if value is None else "must be an object")
        return value

    def items(self, doc: dict[str, Any], key: str, path: str) -> list[dict[str, Any]]:
        value = doc.get(key, [])
        if not isinstance(value, list):
            raise self.fail(path, "must be a list")
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise self.fail(f"{path}[{i}]", "must be an object")
        return value

    def text(self, doc: dict[str, Any], key: str, path: str, required: bool) -> str | None:
        value = doc.get(key)
        if value is None and not required:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.fail(path, "a non-empty string is required")
        return value

    def term(self, doc: dict[str, Any], path: str, prefixes: tuple[str, ...]) -> str:
        term = self.text(doc, "id", path, True)
        assert term is not None
        if term_prefix(term) not in prefixes:
            wanted = " or ".join(f"{p}:..." for p in prefixes)
            raise self.fail(path, f"{term!r} is not a well-formed {wanted} id")
        return term

    def boolean(self, doc: dict[str, Any], key: str, path: str) -> bool:
        value = doc.get(key, False)
        if not isinstance(value, bool):
            raise self.fail(path, "must be true or false")
        return value


_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}(T[0-9:.]+(Z|[+-]\d{2}:\d{2})?)?")


def _date(c: _Checker, doc: dict[str, Any], key: str, path: str) -> str | None:
    """The date part of an RFC 3339 timestamp (``1998-01-01T00:00:00Z`` -> ``1998-01-01``)."""
    stamp = c.text(doc, key, path, False)
    if stamp is not None and not _TIMESTAMP.fullmatch(stamp):
        raise c.fail(path, f"{stamp!r} is not an RFC 3339 timestamp")
    return None if stamp is None else stamp[:10]


def parse_phenopacket(
    doc: object,
    file: str,
    *,
    contact: ClinicianContact | None = None,
    matchmaking: bool = False,
    research: bool = False,
) -> Patient:
    """Validate one Phenopacket v2 document and map it to a :class:`Patient`.

    Phenopackets carry no consent, so ``matchmaking``/``research`` come from the caller
    (or later from ``ailedger health consent``). The key is ``id/subject.id``
    (:func:`~ailedger.health.patients.phenopacket_key`): cases of different publications
    that call their subject "Patient 1" stay distinct.
    """
    if not isinstance(doc, dict):
        raise InvalidRecordError(file, "phenopacket", "", "the document must be a JSON object")
    c = _Checker(file, f"phenopacket {doc.get('id')!r}")
    packet_id = c.text(doc, "id", "id", True)
    subject = c.obj(doc, "subject", "subject", True)
    subject_id = c.text(subject, "id", "subject.id", True)
    assert packet_id is not None and subject_id is not None
    local_id = phenopacket_key(packet_id, subject_id)
    if len(local_id) > _MAX_KEY:
        raise c.fail("id", f"id and subject.id together exceed {_MAX_KEY} characters")
    meta = c.obj(doc, "metaData", "metaData", True)
    version = c.text(meta, "phenopacketSchemaVersion", "metaData.phenopacketSchemaVersion", False)
    if version is not None and not version.startswith("2"):
        raise c.fail("metaData.phenopacketSchemaVersion", f"{version!r} is not schema v2")
    sex_code = c.text(subject, "sex", "subject.sex", False) or "UNKNOWN_SEX"
    if sex_code not in _SEX:
        raise c.fail("subject.sex", f"{sex_code!r} is not one of {', '.join(_SEX)}")
    vital = c.obj(subject, "vitalStatus", "subject.vitalStatus", False)
    deceased = vital.get("status") == "DECEASED"
    death = c.obj(vital, "timeOfDeath", "subject.vitalStatus.timeOfDeath", False)

    observed: list[str] = []
    excluded: list[str] = []
    for i, feature in enumerate(c.items(doc, "phenotypicFeatures", "phenotypicFeatures")):
        path = f"phenotypicFeatures[{i}]"
        term = c.term(c.obj(feature, "type", f"{path}.type", True), f"{path}.type.id", ("HP",))
        is_excluded = c.boolean(feature, "excluded", f"{path}.excluded")
        (excluded if is_excluded else observed).append(term)

    diagnoses: list[str] = []
    for i, disease in enumerate(c.items(doc, "diseases", "diseases")):
        path = f"diseases[{i}]"
        term = c.term(
            c.obj(disease, "term", f"{path}.term", True), f"{path}.term.id", ("OMIM", "ORPHA")
        )
        if not c.boolean(disease, "excluded", f"{path}.excluded"):
            diagnoses.append(term)

    genes: list[str] = []
    for i, interp in enumerate(c.items(doc, "interpretations", "interpretations")):
        path = f"interpretations[{i}].diagnosis"
        diagnosis = c.obj(interp, "diagnosis", path, False)
        if "disease" in diagnosis:
            disease = c.obj(diagnosis, "disease", f"{path}.disease", True)
            diagnoses.append(c.term(disease, f"{path}.disease.id", ("OMIM", "ORPHA")))
        gis = c.items(diagnosis, "genomicInterpretations", f"{path}.genomicInterpretations")
        for j, gi in enumerate(gis):
            gpath = f"{path}.genomicInterpretations[{j}]"
            gene = c.obj(gi, "gene", f"{gpath}.gene", False)
            if not gene:
                variant = c.obj(
                    gi, "variantInterpretation", f"{gpath}.variantInterpretation", False
                )
                vd = c.obj(
                    variant,
                    "variationDescriptor",
                    f"{gpath}.variantInterpretation.variationDescriptor",
                    False,
                )
                gene = c.obj(
                    vd,
                    "geneContext",
                    f"{gpath}.variantInterpretation.variationDescriptor.geneContext",
                    False,
                )
                gpath += ".variantInterpretation.variationDescriptor.geneContext"
            else:
                gpath += ".gene"
            if gene:
                symbol = c.text(gene, "symbol", f"{gpath}.symbol", True)
                assert symbol is not None
                if not GENE_SYMBOL.fullmatch(symbol):
                    raise c.fail(f"{gpath}.symbol", f"{symbol!r} is not an HGNC gene symbol")
                genes.append(symbol)

    return Patient(
        local_id=local_id,
        sex=_SEX[sex_code],
        birth_date=_date(c, subject, "dateOfBirth", "subject.dateOfBirth"),
        death_date=_date(c, death, "timestamp", "subject.vitalStatus.timeOfDeath.timestamp"),
        deceased=deceased,
        observed=tuple(dict.fromkeys(observed)),
        excluded=tuple(t for t in dict.fromkeys(excluded) if t not in observed),
        genes=tuple(dict.fromkeys(genes)),
        diagnoses=tuple(dict.fromkeys(diagnoses)),
        contact=contact,
        matchmaking=matchmaking,
        research=research,
        source="phenopacket",
        origin=packet_id,
        resources=(doc,),
    )

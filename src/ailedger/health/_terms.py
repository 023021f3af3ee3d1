"""Code systems the health import and de-identification recognise, and their canonical labels.

Terms are normalised to CURIEs: ``HP:0001250`` (Human Phenotype Ontology), ``OMIM:123456``,
``ORPHA:558`` and ``HGNC:1100``. FHIR R4 codings carry them as ``system`` + ``code``; several
system URIs are in use for each, so all known spellings map to one prefix. Labels come from
hpo3 (HPO with its OMIM/ORPHA annotations) when it is installed; de-identification replaces
any ``display`` text by these labels, never by what the source wrote.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache

HPO_SYSTEM = "http://purl.obolibrary.org/obo/hp.owl"
OMIM_SYSTEM = "https://omim.org"
ORPHA_SYSTEM = "http://www.orpha.net"
HGNC_SYSTEM = "http://www.genenames.org/geneId"

_PREFIX_BY_SYSTEM = {
    HPO_SYSTEM: "HP",
    "http://purl.obolibrary.org/obo/hp": "HP",
    "http://human-phenotype-ontology.org": "HP",
    "https://hpo.jax.org": "HP",
    OMIM_SYSTEM: "OMIM",
    "http://omim.org": "OMIM",
    "http://www.omim.org": "OMIM",
    "https://www.omim.org": "OMIM",
    "urn:oid:2.16.840.1.113883.6.174": "OMIM",
    ORPHA_SYSTEM: "ORPHA",
    "https://www.orpha.net": "ORPHA",
    "http://www.orpha.net/ORDO": "ORPHA",
    "http://www.orpha.net/ORDO/": "ORPHA",
    HGNC_SYSTEM: "HGNC",
    "http://www.genenames.org": "HGNC",
    "https://www.genenames.org/geneId": "HGNC",
}
SYSTEM_BY_PREFIX = {
    "HP": HPO_SYSTEM,
    "OMIM": OMIM_SYSTEM,
    "ORPHA": ORPHA_SYSTEM,
    "HGNC": HGNC_SYSTEM,
}

TERM_ID = {
    "HP": re.compile(r"HP:\d{7}"),
    "OMIM": re.compile(r"OMIM:\d{6}"),
    "ORPHA": re.compile(r"ORPHA:\d{1,7}"),
    "HGNC": re.compile(r"HGNC:\d{1,6}"),
}
# HGNC approved symbols: upper-case letters and digits, optional "orf" and one hyphenated part
# (C1orf112, HLA-A, MT-ND1). Anything else (a name, a number with separators) is refused.
GENE_SYMBOL = re.compile(r"[A-Z][A-Z0-9]{0,14}(?:orf\d{1,3}[A-Z0-9]*)?(?:-[A-Z0-9]{1,8})?")


def term_prefix(term: str) -> str | None:
    """``"HP"``, ``"OMIM"``, ``"ORPHA"`` or ``"HGNC"`` when ``term`` is a well-formed CURIE."""
    prefix = term.split(":", 1)[0]
    pattern = TERM_ID.get(prefix)
    return prefix if pattern is not None and pattern.fullmatch(term) else None


def term_id(system: object, code: object) -> str | None:
    """The CURIE of a FHIR coding, or ``None`` when it is not an HPO/OMIM/ORPHA/HGNC term."""
    if not isinstance(code, str):
        return None
    prefix = _PREFIX_BY_SYSTEM.get(system) if isinstance(system, str) else None
    if prefix is None:
        # Codings without a known system are accepted only when the code is a CURIE itself.
        return code if term_prefix(code) in ("HP", "OMIM", "ORPHA") else None
    code = code.strip()
    for alias in (prefix, "ORPHANET", "MIM"):
        if code.upper().startswith(alias + ":"):
            code = code.split(":", 1)[1]
    if prefix == "OMIM" and code.isdigit():
        code = code.zfill(6)
    if prefix == "HP" and code.isdigit():
        code = code.zfill(7)
    candidate = f"{prefix}:{code}"
    return candidate if term_prefix(candidate) == prefix else None


@cache
def default_labels() -> Mapping[str, str]:
    """Canonical labels of HPO terms and OMIM/ORPHA diseases from hpo3 (empty without it).

    Loading the ontology takes about a second, once per process.
    """
    try:
        from pyhpo import Ontology  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - hpo3 is an optional health dependency
        return {}
    Ontology()
    labels: dict[str, str] = {str(t.id): str(t.name) for t in Ontology}
    labels.update({f"OMIM:{d.id:06d}": str(d.name) for d in Ontology.omim_diseases})
    labels.update({f"ORPHA:{d.id}": str(d.name) for d in Ontology.orpha_diseases})
    return labels

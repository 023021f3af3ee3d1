"""The Matchmaker Exchange API v1.1 request format (ga4gh/mme-apis, api.md "Request").

A transcription of the parts of the MME JSON schema a node must enforce: a ``patient``
with an ``id``, a ``contact`` (``name`` and ``href``), and at least one phenotypic
``features`` entry or ``genomicFeatures`` entry. Unknown properties are allowed, as the
specification asks ("additional properties are ignored").
"""

from __future__ import annotations

import re
from typing import Any

MME_CONTENT_TYPE = "application/vnd.ga4gh.matchmaker.v1.1+json"
MME_VERSION = (1, 1)
_MME_TYPE = re.compile(r"application/vnd\.ga4gh\.matchmaker\.v(\d{1,4})\.(\d{1,4})\+json")


def mme_version(media_type: str) -> tuple[int, int] | None:
    """The (major, minor) version of an MME media type, or None for any other type."""
    found = _MME_TYPE.fullmatch(media_type.strip().lower())
    return None if found is None else (int(found[1]), int(found[2]))


def speaks(version: tuple[int, int]) -> bool:
    """MME API versioning: minor versions are cross-compatible, so a request in vX.Y is
    answered in vX.Z for Z >= Y; this node speaks v1.1, so it answers v1.0 and v1.1."""
    return version[0] == MME_VERSION[0] and version[1] <= MME_VERSION[1]


_FEATURE = {
    "type": "object",
    "required": ["id"],
    "properties": {
        "id": {"type": "string", "pattern": "^HP:[0-9]{7}$"},
        "observed": {"enum": ["yes", "no"]},
        "label": {"type": "string"},
        "ageOfOnset": {"type": "string"},
    },
}

_GENOMIC_FEATURE = {
    "type": "object",
    "required": ["gene"],
    "properties": {
        "gene": {
            "type": "object",
            "required": ["id"],
            "properties": {"id": {"type": "string", "minLength": 1, "maxLength": 64}},
        },
        "variant": {"type": "object"},
        "zygosity": {"type": "integer"},
        "type": {"type": "object"},
    },
}

_DISORDER = {
    "type": "object",
    "required": ["id"],
    "properties": {"id": {"type": "string", "pattern": "^(MIM|ORPHA|OMIM):[0-9]+$"}},
}

REQUEST_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["patient"],
    "properties": {
        "patient": {
            "type": "object",
            "required": ["id", "contact"],
            "properties": {
                "id": {"type": "string", "minLength": 1, "maxLength": 256},
                "label": {"type": "string"},
                "contact": {
                    "type": "object",
                    "required": ["name", "href"],
                    "properties": {
                        "name": {"type": "string", "minLength": 1},
                        "institution": {"type": "string"},
                        "href": {"type": "string", "minLength": 1},
                    },
                },
                "species": {"type": "string"},
                "sex": {"enum": ["FEMALE", "MALE", "OTHER", "MIXED_SAMPLE", "NOT_APPLICABLE"]},
                "ageOfOnset": {"type": "string"},
                "inheritanceMode": {"type": "string"},
                "features": {"type": "array", "items": _FEATURE, "maxItems": 500},
                "genomicFeatures": {"type": "array", "items": _GENOMIC_FEATURE, "maxItems": 500},
                "disorders": {"type": "array", "items": _DISORDER, "maxItems": 100},
                "test": {"type": "boolean"},
            },
            "anyOf": [
                {"required": ["features"], "properties": {"features": {"minItems": 1}}},
                {
                    "required": ["genomicFeatures"],
                    "properties": {"genomicFeatures": {"minItems": 1}},
                },
            ],
        }
    },
}


def validation_errors(document: Any) -> list[str]:
    """Human-readable reasons the document is not a valid MME request ([] if valid)."""
    from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

    validator = Draft202012Validator(REQUEST_SCHEMA)
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    return [
        f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}" for e in errors[:10]
    ]

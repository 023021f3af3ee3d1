"""The Matchmaker Exchange API v1.1 formats (ga4gh/mme-apis, api.md "Request", "Response").

Two schemas:

* :data:`REQUEST_SCHEMA`, what this node enforces on a query: a transcription of the MME
  request (a ``patient`` with an ``id``, a ``contact`` whose ``href`` is a URL or a
  ``mailto:``, and at least one ``features`` or ``genomicFeatures`` entry). Unknown
  properties are allowed, as the specification asks ("additional properties are ignored").
  Disorders may be named ``MIM:``, ``OMIM:``, ``ORPHA:`` or, as the official schema spells
  them, ``Orphanet:`` (read as ``ORPHA:``, :func:`disorder_id`).
* The official JSON schema, ``mme_api.json`` beside this module: the MatchmakerExchange
  reference server's ``api.json`` (draft 4), as patientMatcher ships it. Every answer this
  node gives is valid against its ``response`` (the tests check), and every answer from
  a peer is checked against it before a result is shown (:func:`response_errors`,
  :func:`result_errors`).

``format: uri`` (a contact's ``href``) is read as the API describes it, "URL to contact the
submitter": an ``http``/``https`` URL with a host, or ``mailto:`` an address
(:func:`valid_href`).
"""

from __future__ import annotations

import functools
import json
import re
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

MME_VERSION = (1, 1)
_MME_TYPE = re.compile(r"application/vnd\.ga4gh\.matchmaker\.v(\d{1,4})\.(\d{1,4})\+json")
_MAILTO = re.compile(r"mailto:[^@\s:/?#]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){0,8}")
_DISORDER = re.compile(r"(MIM|OMIM|ORPHA|Orphanet):([0-9]{1,7})")


def content_type(version: tuple[int, int]) -> str:
    """The MME media type of ``version``: ``(1, 0)`` -> ``application/vnd...v1.0+json``."""
    return f"application/vnd.ga4gh.matchmaker.v{version[0]}.{version[1]}+json"


MME_CONTENT_TYPE = content_type(MME_VERSION)


def mme_version(media_type: str) -> tuple[int, int] | None:
    """The (major, minor) version of an MME media type, or None for any other type."""
    found = _MME_TYPE.fullmatch(media_type.strip().lower())
    return None if found is None else (int(found[1]), int(found[2]))


def speaks(version: tuple[int, int]) -> bool:
    """MME API versioning: minor versions are cross-compatible, so a request in vX.Y is
    answered in vX.Z for Z >= Y; this node speaks v1.1, so it answers v1.0 and v1.1."""
    return version[0] == MME_VERSION[0] and version[1] <= MME_VERSION[1]


def valid_href(href: object) -> bool:
    """Whether ``href`` is a contact the API allows: an http(s) URL with a host and no
    credentials in it, or ``mailto:`` one address. Anything else (an empty string, a name,
    ``javascript:``) is refused."""
    if not isinstance(href, str) or len(href) > 2048 or not href.isprintable() or " " in href:
        return False
    if href.lower().startswith("mailto:"):
        return _MAILTO.fullmatch(href) is not None
    try:
        parts = urlsplit(href)
        host = parts.hostname
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(host) and parts.username is None


def disorder_id(raw: str) -> str | None:
    """A request's disorder id as this node writes diseases: ``MIM:610536`` and
    ``OMIM:610536`` -> ``OMIM:610536``, ``Orphanet:558`` and ``ORPHA:558`` -> ``ORPHA:558``;
    None if it is neither."""
    found = _DISORDER.fullmatch(raw.strip())
    if found is None:
        return None
    prefix, number = found[1], int(found[2])
    return f"OMIM:{number:06d}" if prefix in ("MIM", "OMIM") else f"ORPHA:{number}"


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

_DISORDER_SCHEMA = {
    "type": "object",
    "required": ["id"],
    "properties": {"id": {"type": "string", "pattern": "^(MIM|OMIM|ORPHA|Orphanet):[0-9]{1,7}$"}},
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
                        "href": {"type": "string", "format": "uri"},
                    },
                },
                "species": {"type": "string"},
                "sex": {"enum": ["FEMALE", "MALE", "OTHER", "MIXED_SAMPLE", "NOT_APPLICABLE"]},
                "ageOfOnset": {"type": "string"},
                "inheritanceMode": {"type": "string"},
                "features": {"type": "array", "items": _FEATURE, "maxItems": 500},
                "genomicFeatures": {"type": "array", "items": _GENOMIC_FEATURE, "maxItems": 500},
                "disorders": {"type": "array", "items": _DISORDER_SCHEMA, "maxItems": 100},
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


@functools.cache
def official_schema() -> dict[str, Any]:
    """The official MME API JSON schema (draft 4), as the reference server publishes it."""
    text = resources.files("ailedger.health").joinpath("mme_api.json").read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def _format_checker() -> Any:
    from jsonschema import FormatChecker  # type: ignore[import-untyped]

    checker = FormatChecker()
    checker.checks("uri")(valid_href)
    return checker


@functools.cache
def _validator(which: str) -> Any:
    """One validator per schema, built once: building it (and its format checker) costs
    more than validating one document, and a federated answer has up to 100 results."""
    from jsonschema import Draft4Validator, Draft202012Validator

    if which == "request":
        return Draft202012Validator(REQUEST_SCHEMA, format_checker=_format_checker())
    definitions = official_schema()["definitions"]
    if which == "response":
        schema = {"definitions": definitions, "$ref": "#/definitions/response"}
    else:  # one entry of a response's results
        item = definitions["response"]["properties"]["results"]["items"]
        schema = {"definitions": definitions, **item}
    return Draft4Validator(schema, format_checker=_format_checker())


def _errors(which: str, document: Any) -> list[str]:
    errors = sorted(_validator(which).iter_errors(document), key=lambda e: list(e.absolute_path))
    return [
        f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}" for e in errors[:10]
    ]


def validation_errors(document: Any) -> list[str]:
    """Human-readable reasons the document is not a valid MME request ([] if valid)."""
    return _errors("request", document)


def response_errors(document: Any) -> list[str]:
    """Why ``document`` is not a valid MME response by the official schema ([] if valid)."""
    return _errors("response", document)


def result_errors(result: Any) -> list[str]:
    """Why one entry of a response's ``results`` is not valid by the official schema."""
    return _errors("result", result)

"""Reading a JSON export whole, within a bound, and its ISO 8601 times."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ailedger.health.wearables.errors import WearableImportError
from ailedger.untrusted_json import UnreadableJsonError, parse_untrusted

MAX_JSON_BYTES = 64 << 20
"""JSON is parsed whole (the standard library does not stream it), and ``json.loads``
needs about ten times the text in objects: 64 MiB of JSON costs some 640 MB. Exports
larger than this come as NDJSON (FHIR bulk data), which is read a line at a time."""


def load_json(path: Path, limit: int = MAX_JSON_BYTES) -> Any:
    """The parsed document, refused before parsing when it is over ``limit`` bytes."""
    try:
        size = path.stat().st_size
        if size > limit:
            raise WearableImportError(
                f"{path.name} is {size:,} bytes; JSON exports are read whole and at most "
                f"{limit:,} bytes are accepted: split it, or export NDJSON"
            )
        data = path.read_bytes()
    except OSError as exc:
        raise WearableImportError(f"cannot read {path}: {exc.strerror or exc}") from None
    return parse_json(data, path.name)


def parse_json(data: bytes | str, where: str) -> Any:
    try:
        return parse_untrusted(data)
    except UnreadableJsonError as exc:
        raise WearableImportError(f"{where}: {exc}") from None


def parse_instant(text: object) -> datetime:
    """An ISO 8601 date-time with an offset (RFC 3339), in UTC; ValueError otherwise."""
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is not a date-time")
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset")
    return moment.astimezone(UTC)

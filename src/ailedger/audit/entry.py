"""Audit entries: flat dicts of JSON scalars, stored as canonical JSON bytes.

The bytes are the RFC 6962 leaf data, so they must be reproducible: keys sorted, no
insignificant whitespace, UTF-8, no NaN or infinities. The log does not fix a schema
(who, dataset, purpose, outcome, time are the usual fields); it refuses nested values so an
entry stays small and cannot smuggle documents (never personal data) into the log.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

JsonScalar = str | int | float | bool | None


def canonical_json(entry: Mapping[str, Any]) -> bytes:
    """Canonical bytes of an entry: a flat dict of JSON scalars, sorted keys, no spaces."""
    if not isinstance(entry, Mapping) or not entry:
        raise ValueError("an audit entry is a non-empty dict of JSON scalars")
    for key, value in entry.items():
        if not isinstance(key, str) or not isinstance(value, JsonScalar):
            raise ValueError(f"audit entry field {key!r} must be a string key with a JSON scalar")
    return json.dumps(
        entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()

"""The spill of an import: valid readings as fixed-size records in a temporary file.

A multi-GB export holds millions of readings, far more than fit the import's memory bound
as Python objects (some 500 bytes each); as 32-byte records on disk they cost nothing in
memory and read back in file order. Source and device names are kept once, as small ids.
"""

from __future__ import annotations

import struct
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import BinaryIO

from ailedger.health.wearables.errors import WearableImportError
from ailedger.health.wearables.observations import KIND_NAMES, KINDS, Reading

MAX_SOURCES = 255  # a source id is one byte in the dedupe table
_RECORD = struct.Struct("<BqqdBHI")  # kind, start us, end us, value, source, device, line
_BLOCK = 4096  # records read back at once

Record = tuple[int, int, int, float, int, int, int]


class Names:
    """Distinct names (sources, devices) as small integers, so a spilled record is fixed-size."""

    def __init__(self, limit: int, what: str) -> None:
        self.names: list[str] = []
        self._ids: dict[str, int] = {}
        self._limit, self._what = limit, what

    def id(self, name: str) -> int:
        found = self._ids.get(name)
        if found is None:
            if len(self.names) >= self._limit:
                raise WearableImportError(f"more than {self._limit} distinct {self._what}")
            found = self._ids[name] = len(self.names)
            self.names.append(name)
        return found


class Spill:
    """Valid readings in file order, as fixed-size records in an anonymous temporary file."""

    def __init__(self, format_name: str) -> None:
        self.file: BinaryIO = tempfile.TemporaryFile()  # noqa: SIM115 - closed by the result
        self.format = format_name
        self.count = 0
        self.sources = Names(MAX_SOURCES, "sources (one byte each in the dedupe table)")
        self.devices = Names(65_535, "device names")
        self._buffer = bytearray()

    def add(self, record: Record) -> None:
        self._buffer += _RECORD.pack(*record)
        self.count += 1
        if len(self._buffer) >= 1 << 20:
            self.flush()

    def flush(self) -> None:
        self.file.write(self._buffer)
        self._buffer.clear()

    def records(self) -> Iterator[Record]:
        self.file.seek(0)
        while block := self.file.read(_RECORD.size * _BLOCK):
            yield from _RECORD.iter_unpack(block)

    def reading(self, record: Record) -> Reading:
        kind, start, end, value, source, device, _ = record
        name = KIND_NAMES[kind]
        return Reading(name, value, KINDS[name].unit, moment(start), moment(end),
                       self.sources.names[source], self.devices.names[device],
                       self.format)  # fmt: skip


def moment(count: int) -> datetime:
    """The UTC time ``count`` microseconds after 1970 (exact, unlike a float timestamp)."""
    seconds, fraction = divmod(count, 1_000_000)
    return datetime.fromtimestamp(seconds, UTC).replace(microsecond=fraction)


def micros(when: datetime) -> int:
    """Microseconds since 1970: an integer, so equal times compare and hash equal."""
    return int(when.timestamp()) * 1_000_000 + when.microsecond

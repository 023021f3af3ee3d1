"""Import a wearable export whole: detect its format, check every reading, deduplicate.

Dedupe rule (stated here once). Readings are grouped by kind and by UTC hour: a reading
belongs to every hour its interval touches. In each (kind, hour) one source wins, the one
first in ``priority`` (case-insensitive substrings of the source name; default: watches,
then wearables known by brand, then phones, then any other app; ties broken by source
name; generic words such as "ring" or "band" are left out of the default because they hide
inside other names, "Monitoring", "Husband's iPhone"), and a
reading is kept only if its source won every hour it touches; the others are counted as
``overridden``. This is what stops the steps an iPhone and an Apple Watch both counted
for the same walk from being summed; the price is that a lower-priority source's readings
in an hour the winner also covered are dropped even where they did not overlap. Then exact
duplicates (same :func:`reading_key`: kind, start, end, value, unit) are kept once, and
readings the caller already holds (``known``, e.g. from an earlier upload) are dropped;
both are counted as ``duplicate``.

Memory is bounded for multi-GB exports: the first pass writes each valid reading as a
32-byte record to an anonymous temporary file and keeps only the winner per (kind, hour)
(one byte each, 1970 to now: 3.4 MB) and a 4-byte hash per reading; exact duplicates are
found by sorting those hashes, and only the few colliding ones are compared in full. The
second pass reads the spill back and marks what is kept (one byte per reading). Nothing is
returned before both passes finish, so a file that fails anywhere (truncated zip, hostile
XML) raises :class:`WearableImportError` and yields nothing half-imported. Measured by
``benchmarks/wearables_import.py``: 68 MiB peak RSS over 1 GB of XML (2.5 M records).
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Callable, Iterator, Sequence, Set
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

import numpy as np

from ailedger.health.wearables._spill import Names, Spill, micros
from ailedger.health.wearables.apple_health import ProgressCallback, read_apple_health
from ailedger.health.wearables.errors import WearableImportError
from ailedger.health.wearables.fhir_bundle import read_fhir
from ailedger.health.wearables.observations import (
    CLOCK_SKEW,
    KIND_NAMES,
    KINDS,
    Item,
    Reading,
    Rejected,
    Skipped,
    check,
    reading_key,
)
from ailedger.health.wearables.open_mhealth import read_open_mhealth

DEFAULT_PRIORITY = ("watch", "oura", "fitbit", "garmin", "whoop", "polar", "phone")
_HOUR_US = 3_600_000_000
_NONE = 255  # no source yet in this (kind, hour); source ids stay below MAX_SOURCES
_EXAMPLES = 5


@dataclass
class ImportReport:
    """How each record of the file fared. ``rejected`` counts by reason; ``examples``
    keeps the first few rejections with where they were."""

    accepted: int = 0
    duplicate: int = 0
    overridden: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def reject(self, reason: str, where: str) -> None:
        self.rejected[reason.partition(":")[0]] += 1
        if len(self.examples) < _EXAMPLES:
            self.examples.append(f"{where}: {reason}")

    def counts(self) -> dict[str, int]:
        return {
            "accepted": self.accepted,
            "duplicate": self.duplicate,
            "overridden": self.overridden,
            "skipped": sum(self.skipped.values()),
            "rejected": sum(self.rejected.values()),
        }


class ImportResult:
    """The checked, deduplicated readings (iterated from disk, in file order) and the
    report. Close it (or use ``with``) to drop the temporary file."""

    def __init__(self, report: ImportReport, spill: Spill, keep: bytearray) -> None:
        self.report = report
        self._spill = spill
        self._keep = keep

    def __len__(self) -> int:
        return self.report.accepted

    def __iter__(self) -> Iterator[Reading]:
        spill = self._spill
        for index, record in enumerate(spill.records()):
            if self._keep[index]:
                yield spill.reading(record)

    def close(self) -> None:
        self._spill.file.close()

    def __enter__(self) -> ImportResult:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()


def _hours(start: int, end: int) -> range:
    """The UTC hours an interval touches (an interval ending on the hour does not touch
    the next one)."""
    return range(start // _HOUR_US, max(start, end - 1) // _HOUR_US + 1)


class _Winners:
    """Per kind and UTC hour since 1970, the id of the best source seen (one byte)."""

    def __init__(self, now: datetime, priority: Sequence[str], sources: Names) -> None:
        hours = micros(now + CLOCK_SKEW) // _HOUR_US + 2
        self.best = [bytearray(b"\xff") * hours for _ in KIND_NAMES]
        self.priority = [p.lower() for p in priority]
        self.sources = sources
        self.ranks: list[tuple[int, str]] = []

    def _rank(self, source: int) -> tuple[int, str]:
        while len(self.ranks) <= source:
            name = self.sources.names[len(self.ranks)]
            lowered = name.lower()
            place = next(
                (i for i, p in enumerate(self.priority) if p in lowered), len(self.priority)
            )
            self.ranks.append((place, name))
        return self.ranks[source]

    def claim(self, kind: int, start: int, end: int, source: int) -> None:
        best, rank = self.best[kind], self._rank(source)
        for hour in _hours(start, end):
            current = best[hour]
            if current == _NONE or (current != source and rank < self.ranks[current]):
                best[hour] = source

    def won(self, kind: int, start: int, end: int, source: int) -> bool:
        best = self.best[kind]
        return all(best[hour] == source for hour in _hours(start, end))


def detect_format(path: Path) -> str:
    """``apple-health`` for .zip/.xml, ``fhir`` for .ndjson; for .json, ``fhir`` when a
    ``resourceType`` shows in its first MiB, else ``open-mhealth``."""
    name = path.name.lower()
    if name.endswith((".zip", ".xml")):
        return "apple-health"
    if name.endswith(".ndjson"):
        return "fhir"
    if name.endswith(".json"):
        try:
            with path.open("rb") as handle:
                head = handle.read(1 << 20)
        except OSError as exc:
            raise WearableImportError(f"cannot read {path}: {exc.strerror or exc}") from None
        return "fhir" if b'"resourceType"' in head else "open-mhealth"
    raise WearableImportError(
        f"cannot tell the format of {path.name}: name it .zip or .xml (Apple Health), "
        ".json (Open mHealth or FHIR) or .ndjson (FHIR), or pass format="
    )


def _items(path: Path, format_name: str, progress: ProgressCallback | None) -> Iterator[Item]:
    if format_name == "apple-health":
        return read_apple_health(path, progress)
    if format_name == "open-mhealth":
        return read_open_mhealth(path)
    if format_name == "fhir":
        return read_fhir(path)
    raise WearableImportError(
        f"unknown format {format_name!r}: use auto, apple-health, open-mhealth or fhir"
    )


def import_readings(
    path: Path | str,
    format: str = "auto",
    priority: Sequence[str] = DEFAULT_PRIORITY,
    now: datetime | None = None,
    progress: ProgressCallback | None = None,
    known: Callable[[bytes], bool] | Set[bytes] | None = None,
) -> ImportResult:
    """Read ``path`` whole, check and deduplicate its readings (see the module's rule).
    ``known`` tells readings imported before (by :func:`reading_key`); ``progress`` is
    called with (bytes of XML done, total) for Apple exports (JSON is read at once). Raises
    :class:`WearableImportError` if the file cannot be read whole; nothing is returned
    then. Close the result (or use ``with``) to drop its temporary file."""
    path = Path(path)
    format_name = detect_format(path) if format == "auto" else format
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        raise WearableImportError("now must carry a time zone (datetime.now(UTC))")
    spill = Spill(format_name)
    try:
        report = ImportReport()
        winners = _Winners(now, priority, spill.sources)
        items = _items(path, format_name, progress)
        hashes = _first_pass(items, _position_noun(path, format_name), now, spill, winners, report)
        is_known = known.__contains__ if isinstance(known, Set) else known
        keep = _second_pass(spill, winners, _repeated(hashes), is_known, report)
    except BaseException:
        spill.file.close()
        raise
    return ImportResult(report, spill, keep)


def _position_noun(path: Path, format_name: str) -> str:
    """What a reader's positions count: lines of XML or NDJSON, entries of a FHIR Bundle,
    Open mHealth data points."""
    if format_name == "open-mhealth":
        return "data point"
    if format_name == "fhir" and not path.name.lower().endswith(".ndjson"):
        return "entry"
    return "line"


def _first_pass(
    items: Iterator[Item],
    noun: str,
    now: datetime,
    spill: Spill,
    winners: _Winners,
    report: ImportReport,
) -> array[int]:
    """Check every item, spill the valid readings, elect each (kind, hour)'s source."""
    hashes: array[int] = array("I")
    kind_index = {name: i for i, name in enumerate(KIND_NAMES)}
    for item, where in items:
        if isinstance(item, Skipped):
            report.skipped[item.what] += 1
            continue
        reason = item.reason if isinstance(item, Rejected) else check(item, now)
        if reason is not None:
            report.reject(reason, f"{noun} {where}")
            continue
        assert isinstance(item, Reading)  # narrowed: Skipped and Rejected handled above
        kind = kind_index[item.kind]
        value = item.value * KINDS[item.kind].accepted[item.unit]
        start, end = micros(item.start), micros(item.end)
        source = spill.sources.id(item.source)
        winners.claim(kind, start, end, source)
        hashes.append(hash((kind, start, end, value)) & 0xFFFFFFFF)
        spill.add((kind, start, end, value, source, spill.devices.id(item.device), where))
    spill.flush()
    return hashes


def _repeated(hashes: array[int]) -> set[int]:
    """The hashes seen more than once: candidates for exact duplicates (32-bit hashes
    collide by chance about n**2 / 2**33 times; those are compared in full later)."""
    if len(hashes) < 2:
        return set()
    ordered = np.sort(np.frombuffer(hashes, dtype=np.uint32))
    return set(ordered[1:][ordered[1:] == ordered[:-1]].tolist())


def _second_pass(
    spill: Spill,
    winners: _Winners,
    suspects: set[int],
    known: Callable[[bytes], bool] | None,
    report: ImportReport,
) -> bytearray:
    """Mark the readings kept: their source won their hours, first of their exact
    duplicates, not known to the caller."""
    keep = bytearray(spill.count)
    seen: set[tuple[int, int, int, float]] = set()
    for index, record in enumerate(spill.records()):
        kind, start, end, value, source, _, _ = record
        if not winners.won(kind, start, end, source):
            report.overridden += 1
            continue
        identity = (kind, start, end, value)
        if suspects and hash(identity) & 0xFFFFFFFF in suspects:
            if identity in seen:
                report.duplicate += 1
                continue
            seen.add(identity)
        if known is not None and known(reading_key(spill.reading(record))):
            report.duplicate += 1
            continue
        keep[index] = 1
        report.accepted += 1
    return keep

"""Apple Health exports (``export.zip`` or its ``export.xml``), read as a stream.

An export reaches several GB of XML, so it is parsed with expat straight out of the zip
member (``ZipFile.open`` inflates as it reads; nothing is extracted to disk) in 1 MiB
chunks, and readings are yielded chunk by chunk: memory stays constant.

The file comes from outside, so expat is locked down the way defusedxml does it: any
``<!ENTITY`` declaration (general, parameter or unparsed) is refused at declaration,
before it could expand (billion laughs) or fetch (external entities, XXE); parameter
entities are never parsed; nesting is bounded. Real exports carry an internal DTD subset
of ``<!ELEMENT>`` / ``<!ATTLIST>`` declarations only, which is accepted; an external DTD
is refused (never fetched), and so is a reference to an entity the file does not define.
Records inside a ``Correlation`` (Apple's blood-pressure pairs) are read too: where the
export also lists them at the top level, the importer drops the copies as exact
duplicates. Every failure (expat's, zlib's, a truncated member, a CRC mismatch) becomes
one :class:`WearableImportError` naming the line and column.
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, NoReturn
from xml.parsers import expat

from ailedger.health.wearables.errors import WearableImportError
from ailedger.health.wearables.observations import Item, Reading, Rejected, Skipped

ProgressCallback = Callable[[int, int], None]
"""Called with (bytes of XML done, bytes in total)."""

FORMAT = "apple-health"
MAX_DEPTH = 64  # exports nest 4 deep (HealthData/Record/MetadataEntry); 64 is generous
MAX_TOKEN = 16 << 20
"""Expat holds an unfinished token (a tag, an attribute value, a comment) in memory whole;
a file that goes this many bytes without an element ending is refused, which bounds that
buffer. An export's longest element is a few KB."""
_CHUNK = 1 << 20
_PROGRESS_EVERY = 4 << 20
_CACHE_LIMIT = 65_536  # distinct date strings kept parsed; cleared when full

QUANTITY_TYPES = {
    "HKQuantityTypeIdentifierHeartRate": "heart_rate",
    "HKQuantityTypeIdentifierRestingHeartRate": "resting_heart_rate",
    "HKQuantityTypeIdentifierHeartRateVariabilitySDNN": "hrv_sdnn",
    "HKQuantityTypeIdentifierStepCount": "steps",
    "HKQuantityTypeIdentifierBloodPressureSystolic": "systolic_bp",
    "HKQuantityTypeIdentifierBloodPressureDiastolic": "diastolic_bp",
}
SLEEP_TYPE = "HKCategoryTypeIdentifierSleepAnalysis"
_ASLEEP = "HKCategoryValueSleepAnalysisAsleep"  # Asleep, AsleepCore, AsleepDeep, AsleepREM


def read_apple_health(path: Path | str, progress: ProgressCallback | None = None) -> Iterator[Item]:
    """Yield every Record of ``path`` (an export.zip or export.xml) as an :data:`Item`,
    lazily. Raises :class:`WearableImportError` when the file cannot be read whole."""
    with ExitStack() as stack:
        stream, total = _open_export(Path(path), stack)
        yield from _parse(stream, total, progress)


def _open_export(path: Path, stack: ExitStack) -> tuple[IO[bytes], int]:
    """The export's XML as a byte stream, and its uncompressed size."""
    try:
        handle = stack.enter_context(path.open("rb"))
        if handle.read(4) != b"PK\x03\x04":
            handle.seek(0)
            return handle, path.stat().st_size
        archive = stack.enter_context(zipfile.ZipFile(handle))
        member = _export_member(archive)
        return stack.enter_context(archive.open(member)), member.file_size
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
        raise WearableImportError(
            f"{path.name} is not a readable zip archive ({exc}); it may be truncated: "
            "export it from the Health app again"
        ) from None
    except OSError as exc:
        raise WearableImportError(f"cannot read {path}: {exc.strerror or exc}") from None


def _export_member(archive: zipfile.ZipFile) -> zipfile.ZipInfo:
    """``apple_health_export/export.xml``, or else the one member named ``*export.xml``
    (the folder's name follows the phone's language)."""
    names = archive.namelist()
    if "apple_health_export/export.xml" in names:
        return archive.getinfo("apple_health_export/export.xml")
    found = [n for n in names if n.endswith("export.xml") and not n.endswith("_cda.xml")]
    if len(found) != 1:
        raise WearableImportError(
            f"the archive holds {len(found)} members named *export.xml, not one; "
            "import the zip the Health app exported, unchanged"
        )
    return archive.getinfo(found[0])


class _Records:
    """Expat handlers that turn Record elements into items (kept apart from the driving
    loop so each handler stays small)."""

    def __init__(self, parser: expat.XMLParserType) -> None:
        self.parser = parser
        self.items: list[Item] = []
        self.depth = self.ends = 0
        self.dates: dict[str, datetime] = {}
        self.devices: dict[str, str] = {}

    def start(self, name: str, attrs: dict[str, str]) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self._fail(f"elements nest deeper than {MAX_DEPTH} levels")
        if self.depth == 1 and name != "HealthData":
            self._fail(f"the root element is <{name}>, not <HealthData>: not an Apple export")
        if name == "Record":  # top level, or inside a blood-pressure Correlation
            self.items.append((self._record(attrs), self.parser.CurrentLineNumber))

    def end(self, name: str) -> None:
        self.depth -= 1
        self.ends += 1

    def _record(self, attrs: dict[str, str]) -> Reading | Skipped | Rejected:
        kind_type = attrs.get("type", "")
        kind = QUANTITY_TYPES.get(kind_type)
        if kind is None and kind_type != SLEEP_TYPE:
            return Skipped(kind_type or "Record without a type")
        try:
            start = self._date(attrs["startDate"])
            end = self._date(attrs["endDate"])
        except (KeyError, ValueError) as exc:
            return Rejected(f"unreadable date: {kind_type} ({exc})")
        if kind is None:
            return self._sleep(attrs, start, end)
        try:
            value = float(attrs["value"])
        except (KeyError, ValueError):
            return Rejected(f"not a number: {kind_type} value {attrs.get('value')!r}")
        source, device = attrs.get("sourceName", ""), self._device(attrs.get("device", ""))
        return Reading(kind, value, attrs.get("unit", ""), start, end, source, device, FORMAT)

    def _sleep(self, attrs: dict[str, str], start: datetime, end: datetime) -> Reading | Skipped:
        """Only time asleep counts as sleep; in bed and awake periods are skipped."""
        if not attrs.get("value", "").startswith(_ASLEEP):
            return Skipped(f"{SLEEP_TYPE} {attrs.get('value', '')}")
        minutes = (end - start).total_seconds() / 60
        device = self._device(attrs.get("device", ""))
        return Reading("sleep", minutes, "min", start, end, attrs.get("sourceName", ""),
                       device, FORMAT)  # fmt: skip

    def _date(self, text: str) -> datetime:
        """Apple writes ``2024-01-05 07:31:02 +0100``; ISO 8601 wants no space before the
        offset. Consecutive records share dates, so parsed ones are cached."""
        cached = self.dates.get(text)
        if cached is not None:
            return cached
        iso = text[:19] + text[20:] if len(text) == 25 and text[19] == " " else text
        moment = datetime.fromisoformat(iso)
        if moment.tzinfo is None:
            raise ValueError(f"{text!r} has no UTC offset")
        if len(self.dates) >= _CACHE_LIMIT:
            self.dates.clear()
        self.dates[text] = moment = moment.astimezone(UTC)
        return moment

    def _device(self, text: str) -> str:
        """The model from HealthKit's device description (``<<HKDevice: 0x..>, name:Apple
        Watch, manufacturer:Apple Inc., model:Watch, hardware:Watch6,1, ...>``)."""
        if not text:
            return ""
        found = self.devices.get(text)
        if found is None:
            fields = dict(part.strip().split(":", 1) for part in text.split(", ") if ":" in part)
            model = " ".join(filter(None, (fields.get("model"), fields.get("hardware"))))
            found = self.devices[text] = model or text[:200]
        return found

    def refuse_entity(self, name: str, *rest: object) -> NoReturn:
        self._fail(f"the file declares the entity {name!r}; entity declarations are refused")

    def doctype(
        self, name: str, system_id: str | None, public_id: str | None, *rest: object
    ) -> None:
        """An external DTD is never fetched; refusing it outright keeps its entity
        references from being silently skipped into empty values."""
        if system_id or public_id:
            self._fail(f"the file names an external DTD ({system_id or public_id!r}); refused")

    def refuse_skipped(self, name: str, is_parameter: bool) -> NoReturn:
        self._fail(f"the file references the entity {name!r}, which it does not define")

    def refuse_external(
        self, context: object, base: object, system_id: object, *rest: object
    ) -> NoReturn:
        self._fail(f"the file references the external entity {system_id!r}; refused")

    def _fail(self, why: str) -> NoReturn:
        raise WearableImportError(
            f"line {self.parser.CurrentLineNumber}, column "
            f"{self.parser.CurrentColumnNumber + 1}: {why}"
        )


def _new_parser() -> tuple[expat.XMLParserType, _Records]:
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    records = _Records(parser)
    parser.EntityDeclHandler = records.refuse_entity
    parser.UnparsedEntityDeclHandler = records.refuse_entity
    parser.ExternalEntityRefHandler = records.refuse_external
    parser.StartDoctypeDeclHandler = records.doctype
    parser.SkippedEntityHandler = records.refuse_skipped
    parser.StartElementHandler = records.start
    parser.EndElementHandler = records.end
    return parser, records


def _parse(stream: IO[bytes], total: int, progress: ProgressCallback | None) -> Iterator[Item]:
    parser, records = _new_parser()
    done = reported = quiet_since = 0
    while True:
        chunk = _read(stream)
        done += len(chunk)
        ends = records.ends
        _feed(parser, chunk, final=not chunk)
        if records.ends != ends:
            quiet_since = done
        elif done - quiet_since > MAX_TOKEN:
            raise WearableImportError(
                f"line {parser.CurrentLineNumber}: more than {MAX_TOKEN >> 20} MiB without an "
                "element ending (an endless attribute, comment or tag): not an Apple export"
            )
        yield from records.items
        records.items.clear()
        if progress is not None and (done - reported >= _PROGRESS_EVERY or not chunk):
            progress(done, total)
            reported = done
        if not chunk:
            return


def _read(stream: IO[bytes]) -> bytes:
    try:
        return stream.read(_CHUNK)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        # A member cut short or corrupted: zipfile checks the CRC at the member's end.
        raise WearableImportError(
            f"the export is truncated or corrupt ({exc}): export it again"
        ) from None


def _feed(parser: expat.XMLParserType, chunk: bytes, final: bool) -> None:
    try:
        parser.Parse(chunk, final)
    except expat.ExpatError as exc:
        raise WearableImportError(
            f"line {exc.lineno}, column {exc.offset + 1}: not well-formed XML "
            f"({expat.ErrorString(exc.code)}){'; the file is truncated' if final else ''}"
        ) from None

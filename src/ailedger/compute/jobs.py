"""Job bundles: the directory a requester sends to a provider, and its ``job.toml``.

A bundle is a directory holding ``job.toml`` and the job's files. ``job.toml`` is checked
completely *before anything is paid or escrowed*: every field is typed and bounded, unknown
fields are errors (a typo such as ``ram_mb`` -> ``ramm_mb`` must not silently fall back to a
default and make a job fail hours later), and each message names the table and the field.

Threat model: the bundle comes from a stranger. Its entry point must lie inside the bundle
(no ``..``, no absolute path, no symlink anywhere in the bundle, which also rules out links that
escape it), and unpacking a received tar refuses absolute names, ``..``, links and device files.
The bundle hash (the on-chain ``bundle_hash``) covers sorted relative paths and file bytes only,
so it is the same on every machine whatever the mtimes, owners or creation order.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import stat
import tarfile
import tomllib
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ailedger.compute.output_schema import OutputSchema, OutputSchemaError, parse_output_schema
from ailedger.errors import AiledgerError, ConfigError
from ailedger.units import parse_amount

JOB_FILE = "job.toml"
MAX_JOB_FILE_BYTES = 64 * 1024  # a real job.toml is a few hundred bytes
MAX_BUNDLE_BYTES = 1 << 30
MAX_BUNDLE_FILES = 10_000
_DATASET_ID = re.compile(r"0x[0-9a-f]{64}")
_BUNDLE_DOMAIN = b"ailedger-bundle-v1"
_RUNTIME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_ALLOWED = {
    "job": {"entry", "runtime", "inputs", "seed", "deterministic"},
    "resources": {"cpu_cores", "ram_mb", "gpu_mem_mb", "max_hours"},
    "market": {"max_price_per_hour", "deadline_hours", "redundancy"},
    "output": {"counts", "statistics"},
}


class JobSpecError(AiledgerError):
    """``job.toml`` or the bundle around it is malformed; the message names the field."""


class UnsafeBundleError(JobSpecError):
    """The bundle or its tar holds a path or entry that could escape the bundle."""


@dataclass(frozen=True)
class JobSpec:
    """A validated ``job.toml``. Prices are in AIL base units (10**-18 AIL)."""

    entry: str
    runtime: str
    inputs: tuple[str, ...]
    cpu_cores: int
    ram_mb: int
    gpu_mem_mb: int
    max_hours: float
    max_price_per_hour: int
    deadline_hours: float
    redundancy: int
    seed: int | None
    deterministic: bool
    # What an aggregate-only dataset may release from the job (None: nothing declared).
    output: OutputSchema | None = None


def _fail(table: str, key: str, must: str, value: object) -> JobSpecError:
    return JobSpecError(f"{JOB_FILE}: [{table}] {key} must be {must}, got {value!r}")


def _int(t: dict[str, Any], table: str, key: str, lo: int, hi: int, default: int | None) -> int:
    value = t.get(key, default)
    if value is None:
        raise JobSpecError(f"{JOB_FILE}: [{table}] {key} is required")
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        what = "a positive integer" if lo == 1 and hi >= 1 << 20 else f"an integer {lo}..{hi}"
        raise _fail(table, key, what, value)
    return value


def _hours(t: dict[str, Any], table: str, key: str) -> float:
    value = t.get(key)
    if value is None:
        raise JobSpecError(f"{JOB_FILE}: [{table}] {key} is required")
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 24 * 90:
        raise _fail(table, key, "a number of hours between 0 and 2160", value)
    return float(value)


def _safe_relative(entry: str) -> PurePosixPath:
    path = PurePosixPath(entry)
    if not entry or path.is_absolute() or ".." in path.parts or "\\" in entry or "\0" in entry:
        raise _fail("job", "entry", "a relative path inside the bundle", entry)
    return path


def parse_job(text: str) -> JobSpec:
    """Parse and validate the text of a ``job.toml``; raises :class:`JobSpecError`."""
    if len(text) > MAX_JOB_FILE_BYTES:
        raise JobSpecError(
            f"{JOB_FILE} is over {MAX_JOB_FILE_BYTES} bytes; a job needs a few lines"
        )
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise JobSpecError(f"{JOB_FILE} is not valid TOML: {exc}") from None
    except RecursionError:  # tomllib recurses once per nested array or inline table
        raise JobSpecError(f"{JOB_FILE} nests arrays or tables too deeply") from None
    for name, value in doc.items():
        if name not in _ALLOWED:
            raise JobSpecError(
                f"{JOB_FILE}: unknown table or field {name!r}; "
                f"expected [job], [resources], [market], [output]"
            )
        if not isinstance(value, dict):
            raise JobSpecError(f"{JOB_FILE}: {name!r} must be a table [{name}]")
        unknown = sorted(set(value) - _ALLOWED[name])
        if unknown:
            raise JobSpecError(
                f"{JOB_FILE}: [{name}] unknown field {unknown[0]!r}; "
                f"allowed: {', '.join(sorted(_ALLOWED[name]))}"
            )
    job, res, market = (doc.get(n, {}) for n in ("job", "resources", "market"))
    entry = job.get("entry")
    if not isinstance(entry, str):
        raise _fail("job", "entry", "a relative path string", entry)
    _safe_relative(entry)
    runtime = job.get("runtime")
    if not isinstance(runtime, str) or not _RUNTIME.fullmatch(runtime):
        raise _fail("job", "runtime", "a runtime name such as 'python-sklearn'", runtime)
    inputs = job.get("inputs", [])
    if not isinstance(inputs, list) or not all(
        isinstance(i, str) and _DATASET_ID.fullmatch(i) for i in inputs
    ):
        raise _fail("job", "inputs", "a list of dataset ids (0x + 64 lowercase hex)", inputs)
    if len(set(inputs)) != len(inputs):
        raise _fail("job", "inputs", "a list without duplicates", inputs)
    deterministic = job.get("deterministic", False)
    if not isinstance(deterministic, bool):
        raise _fail("job", "deterministic", "true or false", deterministic)
    seed = job.get("seed")
    if seed is not None and (
        isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32
    ):
        raise _fail("job", "seed", "an integer 0..2**32-1", seed)
    if deterministic and seed is None:
        raise JobSpecError(f"{JOB_FILE}: [job] seed is required when deterministic = true")
    price = market.get("max_price_per_hour")
    if not isinstance(price, str):
        raise _fail("market", "max_price_per_hour", "an AIL amount as a string like '0.5'", price)
    try:
        price_units = parse_amount(price)
    except ConfigError as exc:
        raise JobSpecError(f"{JOB_FILE}: [market] max_price_per_hour: {exc}") from None
    if price_units == 0:
        raise _fail("market", "max_price_per_hour", "greater than zero", price)
    output = None
    if "output" in doc:
        try:
            output = parse_output_schema(doc["output"])
        except OutputSchemaError as exc:
            raise JobSpecError(f"{JOB_FILE}: [output] {exc}") from None
    return JobSpec(
        entry=entry,
        runtime=runtime,
        inputs=tuple(inputs),
        cpu_cores=_int(res, "resources", "cpu_cores", 1, 1024, None),
        ram_mb=_int(res, "resources", "ram_mb", 1, 1 << 24, None),
        gpu_mem_mb=_int(res, "resources", "gpu_mem_mb", 0, 1 << 24, 0),
        max_hours=_hours(res, "resources", "max_hours"),
        max_price_per_hour=price_units,
        deadline_hours=_hours(market, "market", "deadline_hours"),
        redundancy=_int(market, "market", "redundancy", 1, 5, 1),
        seed=seed,
        deterministic=deterministic,
        output=output,
    )


def bundle_files(bundle: Path) -> list[tuple[str, Path]]:
    """Sorted ``(relative posix path, path)`` of every regular file; refuses links and devices."""
    found: list[tuple[str, Path]] = []
    total = 0
    for dirpath, dirnames, filenames in os.walk(bundle):
        here = Path(dirpath)
        for name in dirnames + filenames:
            path = here / name
            mode = path.lstat().st_mode
            rel = path.relative_to(bundle).as_posix()
            if stat.S_ISLNK(mode) or not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                raise UnsafeBundleError(
                    f"bundle entry {rel!r} is a symlink or special file; "
                    "bundles may hold only regular files and directories"
                )
            if stat.S_ISREG(mode):
                found.append((rel, path))
                total += path.lstat().st_size
    if len(found) > MAX_BUNDLE_FILES or total > MAX_BUNDLE_BYTES:
        raise UnsafeBundleError(f"bundle too large: {len(found)} files, {total} bytes")
    return sorted(found)


@dataclass(frozen=True)
class JobBundle:
    """A bundle read once: its spec, its tar and its hash all come from the same bytes.

    Reading the directory once matters: a bundle walked and read several times (validate,
    hash, pack) could change between the reads, and the tar kept for providers would then
    not be the code whose hash was posted on chain.
    """

    spec: JobSpec
    files: tuple[tuple[str, bytes], ...]  # (relative posix path, bytes), sorted by path

    @classmethod
    def read(cls, bundle: Path) -> JobBundle:
        """Walk ``bundle`` once, read each file once, validate ``job.toml`` and the entry."""
        if not bundle.is_dir():
            raise JobSpecError(f"{bundle} is not a directory")
        files = tuple((rel, path.read_bytes()) for rel, path in bundle_files(bundle))
        return cls.from_files(files, str(bundle))

    @classmethod
    def from_files(cls, files: tuple[tuple[str, bytes], ...], where: str) -> JobBundle:
        by_name = dict(files)
        if JOB_FILE not in by_name:
            raise JobSpecError(f"{where} has no {JOB_FILE}")
        try:
            text = by_name[JOB_FILE].decode("utf-8")
        except UnicodeDecodeError:
            raise JobSpecError(f"{where}/{JOB_FILE} is not UTF-8 text") from None
        spec = parse_job(text)
        if str(_safe_relative(spec.entry)) not in by_name:
            raise _fail("job", "entry", "a file that exists inside the bundle", spec.entry)
        return cls(spec, tuple(sorted(files)))

    @property
    def digest(self) -> bytes:
        """The on-chain ``bundle_hash``: sha256 over sorted (path, size, bytes)."""
        return _hash_files(self.files, _BUNDLE_DOMAIN)

    def tar(self) -> bytes:
        """A deterministic tar (sorted names, zero mtimes/owners, fixed modes)."""
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for rel, data in self.files:
                info = tarfile.TarInfo(rel)
                info.size, info.mode, info.mtime = len(data), 0o644, 0
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                tar.addfile(info, io.BytesIO(data))
        return out.getvalue()


def load_bundle(bundle: Path) -> JobSpec:
    """Read ``bundle/job.toml``, validate it, and check the entry exists inside the bundle."""
    return JobBundle.read(bundle).spec


def bundle_hash(bundle: Path) -> bytes:
    """The on-chain ``bundle_hash`` of a directory (not validated as a bundle)."""
    return tree_hash(bundle, _BUNDLE_DOMAIN)


def pack_bundle(bundle: Path) -> bytes:
    """The deterministic tar of the bundle directory."""
    return JobBundle.read(bundle).tar()


def tree_hash(root: Path, domain: bytes, without: Collection[str] = ()) -> bytes:
    """sha256 of ``domain`` then each file's (path, size, bytes) in sorted path order:
    the same on every machine whatever the mtimes, owners or creation order. Files at
    the relative paths ``without`` are left out (what was added to a tree since)."""
    files = ((rel, path.read_bytes()) for rel, path in bundle_files(root) if rel not in without)
    return _hash_files(files, domain)


def _hash_files(files: Iterable[tuple[str, bytes]], domain: bytes) -> bytes:
    digest = hashlib.sha256(domain + b"\0")
    for rel, data in files:
        name = rel.encode("utf-8")
        digest.update(len(name).to_bytes(4, "big") + name + len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.digest()


def unpack_bundle(data: bytes, dest: Path) -> JobBundle:
    """Unpack a tar from :meth:`JobBundle.tar` into the new directory ``dest``; refuse anything
    that is not a plain file or directory with a safe relative name, then validate it. The
    returned bundle (and so its digest) is built from the bytes written, not re-read."""
    dest.mkdir(parents=True)
    total = 0
    files: list[tuple[str, bytes]] = []
    try:
        tar = tarfile.open(fileobj=io.BytesIO(data), mode="r:")  # noqa: SIM115
    except tarfile.TarError as exc:
        raise UnsafeBundleError(f"bundle archive unreadable: {exc}") from None
    with tar:
        members = tar.getmembers()
        if len(members) > MAX_BUNDLE_FILES:
            raise UnsafeBundleError(f"bundle archive has {len(members)} entries")
        for m in members:
            name = PurePosixPath(m.name)
            if (
                name.is_absolute()
                or ".." in name.parts
                or "\\" in m.name
                or not (m.isfile() or m.isdir())
            ):
                raise UnsafeBundleError(f"unsafe bundle archive entry {m.name!r}")
            total += m.size
            if total > MAX_BUNDLE_BYTES:
                raise UnsafeBundleError("bundle archive unpacks to more than the size limit")
            target = dest.joinpath(*name.parts)
            if m.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            src = tar.extractfile(m)
            assert src is not None
            try:
                with src, open(target, "xb") as w:
                    content = src.read()
                    w.write(content)
            except OSError as exc:
                raise UnsafeBundleError(f"bundle archive entry {m.name!r}: {exc}") from None
            files.append((name.as_posix(), content))
    return JobBundle.from_files(tuple(files), str(dest))

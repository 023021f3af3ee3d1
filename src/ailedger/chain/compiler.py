"""Compile ailedger's Vyper contracts, with an on-disk cache keyed by source hash.

Every contract is compiled for ``evm_version="shanghai"``. Vyper 0.4 defaults to
``prague``/``cancun``, whose code uses ``MCOPY`` (EIP-5656) and transient storage
(``TLOAD``/``TSTORE``, EIP-1153). Many consortium chains (Besu or geth
proof-of-authority networks pinned to an older fork) stop at Shanghai and reject those
opcodes as invalid, so a contract that deploys on the embedded chain would fail there.
Shanghai code runs on every later fork too, so one bytecode serves every backend.

The cache holds one JSON file per (source bytes, vyper version, EVM version). Files are
written with :func:`ailedger._durable.atomic_write` (temporary name, fsync, rename), so a crash
mid-write leaves either the old entry or none, never half of one; an entry that cannot
be read or parsed is treated as missing and rebuilt. Vyper itself is imported only on a
cache miss: importing and running it costs a few hundred milliseconds per contract, which
every CLI command that talks to a chain would otherwise pay.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ailedger._durable import PUBLIC_FILE_MODE, atomic_write
from ailedger.errors import ContractError

__all__ = [
    "EVM_VERSION",
    "CompiledContract",
    "compile_contract",
    "contract_names",
    "contracts_dir",
    "source_path",
]

EVM_VERSION = "shanghai"

# Bumped when the layout of a cache file changes, so old entries are simply missed.
_CACHE_FORMAT = 1

_logger = logging.getLogger(__name__)

# A source checkout keeps the contracts at the repository root; a wheel carries a copy
# inside the package (pyproject's force-include), since the root is not installed.
_REPO_CONTRACTS = Path(__file__).resolve().parents[3] / "contracts"
_PACKAGED_CONTRACTS = Path(__file__).resolve().parents[1] / "_contracts"


@dataclass(frozen=True)
class CompiledContract:
    """A compiled contract: what a deployer and a typed client need."""

    name: str
    abi: list[dict[str, Any]]
    bytecode: bytes
    """Deployment (init) code; the runtime code is what it returns."""
    source_hash: str
    """Hex sha256 of the ``.vy`` source the bytecode was compiled from."""


def contracts_dir() -> Path:
    """The directory holding the ``.vy`` sources (checkout first, then the packaged copy)."""
    if _REPO_CONTRACTS.is_dir():
        return _REPO_CONTRACTS
    if _PACKAGED_CONTRACTS.is_dir():
        return _PACKAGED_CONTRACTS
    raise ContractError(
        f"no contract sources found (looked in {_REPO_CONTRACTS} and {_PACKAGED_CONTRACTS}); "
        "reinstall ailedger, or run from a checkout that has the contracts/ directory"
    )


def contract_names() -> list[str]:
    """Names of the contracts that can be compiled, sorted (``["KeyRegistry", "Token"]``)."""
    return sorted(p.stem for p in contracts_dir().glob("*.vy") if p.is_file())


def source_path(name: str) -> Path:
    """Path of the source of contract ``name``; :class:`ContractError` if there is none."""
    names = contract_names()
    # Looking the name up in the listing (rather than joining it to the directory) also
    # keeps names such as "../x" from reaching outside the contracts directory.
    if name not in names:
        raise ContractError(
            f"unknown contract {name!r}; choose one of: {', '.join(names) or '(none)'}"
        )
    return contracts_dir() / f"{name}.vy"


def compile_contract(name: str, cache_dir: Path) -> CompiledContract:
    """Compile contract ``name`` for Shanghai, or return the cached result.

    ``cache_dir`` is usually ``Settings.cache_dir``; entries go in its ``contracts/``
    subdirectory. Raises :class:`ContractError` for an unknown name or a compile failure.
    """
    path = source_path(name)
    try:
        source = path.read_bytes()
    except OSError as exc:
        raise ContractError(
            f"cannot read contract source {path}: {exc}; check the file exists and is readable"
        ) from exc

    source_hash = hashlib.sha256(source).hexdigest()
    vyper_version = _vyper_version()
    key = _cache_key(source, vyper_version)
    entry = cache_dir / "contracts" / f"{key}.json"

    cached = _read_entry(entry, source_hash)
    if cached is not None:
        abi, bytecode = cached
    else:
        abi, bytecode = _compile_source(name, path, source)
        _write_entry(
            entry,
            {
                "format": _CACHE_FORMAT,
                "source_hash": source_hash,
                "vyper_version": vyper_version,
                "evm_version": EVM_VERSION,
                "abi": abi,
                "bytecode": bytecode.hex(),
            },
        )
    return CompiledContract(name=name, abi=abi, bytecode=bytecode, source_hash=source_hash)


def _vyper_version() -> str:
    # Read from the installed distribution's metadata: `import vyper` would load the
    # whole compiler, which is exactly what a cache hit must avoid. importlib.metadata is
    # itself ~30 ms of imports, so it too waits until a contract is actually needed.
    import importlib.metadata

    try:
        return importlib.metadata.version("vyper")
    except importlib.metadata.PackageNotFoundError as exc:
        raise ContractError(
            "the vyper compiler is not installed; install ailedger with its dependencies "
            "(pip install ailedger)"
        ) from exc


def _cache_key(source: bytes, vyper_version: str) -> str:
    digest = hashlib.sha256()
    # Length-prefix each part so no two different triples can hash the same bytes.
    for part in (source, vyper_version.encode(), EVM_VERSION.encode()):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def _read_entry(entry: Path, source_hash: str) -> tuple[list[dict[str, Any]], bytes] | None:
    """The (abi, bytecode) in ``entry``, or None if it is missing or not usable."""
    try:
        data = json.loads(entry.read_text(encoding="utf-8"))
        if data["format"] != _CACHE_FORMAT:
            return None  # written by another ailedger version: rebuild quietly
        abi = data["abi"]
        bytecode = bytes.fromhex(data["bytecode"])
        if data["source_hash"] != source_hash or data["evm_version"] != EVM_VERSION:
            raise ValueError("entry does not match its key")
        if not isinstance(abi, list) or not all(isinstance(item, dict) for item in abi):
            raise ValueError("abi is not a list of objects")
        if not bytecode:
            raise ValueError("bytecode is empty")
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        # The cache is only an optimisation: a damaged entry costs a recompile, not a failure.
        _logger.warning("ignoring unreadable contract cache entry %s: %s", entry, exc)
        return None
    return abi, bytecode


def _write_entry(entry: Path, data: dict[str, Any]) -> None:
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(entry, json.dumps(data).encode("utf-8"), mode=PUBLIC_FILE_MODE)
    except OSError as exc:
        _logger.warning("cannot write contract cache entry %s: %s", entry, exc)


def _compile_source(name: str, path: Path, source: bytes) -> tuple[list[dict[str, Any]], bytes]:
    """Run the vyper compiler; the only place that imports it."""
    from vyper.compiler import compile_from_file_input  # type: ignore[import-untyped]
    from vyper.compiler.input_bundle import (  # type: ignore[import-untyped]
        FileInput,
        FilesystemInputBundle,
    )
    from vyper.compiler.settings import Settings  # type: ignore[import-untyped]
    from vyper.exceptions import (  # type: ignore[import-untyped]
        VyperException,
        VyperInternalException,
    )

    try:
        text = source.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ContractError(
            f"contract source {path} is not UTF-8: {exc}; re-save it as UTF-8"
        ) from exc

    file_input = FileInput(source_id=0, contents=text, path=Path(path.name), resolved_path=path)
    # Search the contracts directory so a contract may `import` a sibling module.
    input_bundle = FilesystemInputBundle([path.parent])
    try:
        output = compile_from_file_input(
            file_input,
            input_bundle=input_bundle,
            settings=Settings(evm_version=EVM_VERSION),
            output_formats=["abi", "bytecode"],
        )
    except (VyperException, VyperInternalException) as exc:
        raise ContractError(
            f"contract {name} ({path}) does not compile with vyper "
            f"{_vyper_version()} for {EVM_VERSION}: {exc}; fix the source and try again"
        ) from exc

    abi: list[dict[str, Any]] = output["abi"]
    bytecode_hex: str = output["bytecode"]
    return abi, bytes.fromhex(bytecode_hex.removeprefix("0x"))

"""The package's layers, read from every module's imports (function-level ones included).

Foundations (errors, settings, units, peer, crypto, store, audit, keys, chain, the
session, ...) import no capability and nothing that composes the node; capabilities
(sharing, compute, health, privacy, ai, federated) import neither the node, the CLI nor
the demo, and each other only downwards, as MAY_USE says.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import ailedger

PACKAGE = Path(ailedger.__file__).parent
CAPABILITIES = {"sharing", "compute", "health", "privacy", "ai", "federated"}
# What composes and fronts the capabilities; no layer below may reach up into them.
COMPOSITION = {"node", "cli", "demo", "testing", "web"}
# Capability -> the capabilities it may import (their public modules only).
MAY_USE = {
    "sharing": set(),
    "health": set(),
    "privacy": {"sharing"},
    "compute": {"sharing"},
    "ai": {"sharing", "compute", "privacy", "federated"},  # passports trace both kinds of job
    "federated": {"sharing", "privacy", "compute"},  # the sandbox confines SuperNodes
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, module) for every import in the file, at any depth, resolved to absolute."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield node.lineno, base
            for alias in node.names:  # `from ailedger import sharing` names a package too
                yield node.lineno, f"{base}.{alias.name}"


def _part(module: str) -> str | None:
    """The top-level part of ailedger a module belongs to (``sharing``, ``errors``, ...)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "ailedger" else None


def _is_module(name: str) -> bool:
    relative = Path(*name.split(".")[1:])
    return (PACKAGE / relative).with_suffix(".py").is_file() or (PACKAGE / relative).is_dir()


def _violation(importer: str, imported: str) -> str | None:
    """Why ``importer`` may not import ``imported``, or None if it may."""
    source, target = _part(importer), _part(imported)
    if source is None or target is None or source == target or not _is_module(imported):
        return None
    if source in COMPOSITION:
        return None
    if target in COMPOSITION:
        return f"{source} reaches up into {target}"
    if target not in CAPABILITIES:
        return None
    if source not in CAPABILITIES:
        return f"foundation {source} imports capability {target}"
    if target not in MAY_USE[source]:
        return f"capability {source} imports capability {target}"
    private = [p for p in imported.split(".")[2:] if p.startswith("_")]
    if private or imported.split(".")[2:3] == ["http"]:
        return f"{source} uses {target}'s internals"
    return None


def violations() -> list[str]:
    found = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        importer = _module_name(path)
        for line, imported in _imports(path):
            why = _violation(importer, imported)
            if why is not None:
                where = path.relative_to(PACKAGE.parent)
                found.add(f"{where}:{line}: {importer} -> {imported} ({why})")
    return sorted(found)


def test_layers_hold() -> None:
    broken = [v for v in violations() if " ailedger.session -> " not in v]
    assert broken == [], "layer violations:\n" + "\n".join(broken)


def test_session_imports_no_capability() -> None:
    broken = [v for v in violations() if " ailedger.session -> " in v]
    assert broken == [], "layer violations:\n" + "\n".join(broken)


def test_the_checker_sees_what_it_must() -> None:
    """A rule that never fires proves nothing: each kind of violation is caught."""
    assert _violation("ailedger.errors", "ailedger.sharing.gateway")
    assert _violation("ailedger.peer.client", "ailedger.health.mme")
    assert _violation("ailedger.audit.log", "ailedger.node.app")
    assert _violation("ailedger.sharing.owner", "ailedger.health.federation")
    assert _violation("ailedger.health.mme", "ailedger.compute.requester.inbox")
    assert _violation("ailedger.sharing.http", "ailedger.cli.app")
    assert _violation("ailedger.compute.provider.agent", "ailedger.sharing.http")
    assert _violation("ailedger.compute.provider.agent", "ailedger.node.service")
    assert _violation("ailedger.compute.provider.c2d", "ailedger.sharing.owner") is None
    assert _violation("ailedger.node.app", "ailedger.health.http") is None
    assert _violation("ailedger.health.mme", "ailedger.errors") is None
    names = {name for _, name in _imports(PACKAGE / "sharing" / "owner.py")}
    assert "ailedger.peer.client" in names  # imported inside a method


def test_compute_roles_stay_apart() -> None:
    """The requester's and the provider's sides share only compute's common modules, so a
    provider machine never needs the requester's code paths, and the reverse."""
    roles = {"requester": "provider", "provider": "requester"}
    crossing = []
    for role, other in roles.items():
        for path in sorted((PACKAGE / "compute" / role).rglob("*.py")):
            for line, imported in _imports(path):
                if imported.startswith(f"ailedger.compute.{other}"):
                    crossing.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {imported}")
    assert crossing == []

"""Every error a caller can act on is drawn in the tree of ``ailedger.errors``."""

from __future__ import annotations

import importlib
import pkgutil
import re

import ailedger
from ailedger import errors


def _all_subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub, *_all_subclasses(sub)}
    return found


def _import_every_module() -> None:
    for info in pkgutil.walk_packages(ailedger.__path__, "ailedger."):
        if not info.name.endswith(".__main__"):  # running it would start the CLI
            importlib.import_module(info.name)


def test_every_error_class_appears_in_the_drawn_tree() -> None:
    _import_every_module()
    drawn = set(re.findall(r"\w+", errors.__doc__ or ""))
    classes = {cls.__name__ for cls in _all_subclasses(errors.AiledgerError)}
    missing = sorted(classes - drawn)
    assert not missing, f"add these to the hierarchy drawn in errors.py: {missing}"


def test_every_error_is_an_ailedger_error() -> None:
    """No module defines an error callers must catch apart from the one base."""
    _import_every_module()
    stray = sorted(
        f"{cls.__module__}.{cls.__name__}"
        for cls in _all_subclasses(Exception)
        if cls.__module__.startswith("ailedger.")
        and not issubclass(cls, errors.AiledgerError)
        and cls.__module__ not in _INTERNAL_ERRORS
    )
    assert not stray, f"derive these from AiledgerError (or keep them internal): {stray}"


# Errors that never leave their module: the embedded chain's JSON-RPC dispatcher turns
# RpcError into a JSON-RPC error object, and TooManyLogsError and the filters' errors into
# an RpcError; a federated search reports an outside peer's _Refused answer as its status.
_INTERNAL_ERRORS = {
    "ailedger.chain.embedded.rpc",
    "ailedger.chain.embedded._params",
    "ailedger.chain.embedded._logs",
    "ailedger.chain.embedded._filters",
    "ailedger.health.federation",
}

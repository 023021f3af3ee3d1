"""The SDK face: ``import ailedger`` offers exactly the public names, each loaded on first
use from the module that defines it, and importing the package loads nothing heavy."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import ailedger

PUBLIC = [
    "PURPOSES",
    "AccessRefusedError",
    "AiledgerError",
    "BackPressureError",
    "Catalog",
    "CatalogEntry",
    "ChainError",
    "ChainUnreachableError",
    "ConfigError",
    "DiseaseRanker",
    "FederatedAnswer",
    "Fetched",
    "GrantStatus",
    "HealthNode",
    "HomeError",
    "JobBundle",
    "JobSpecError",
    "JobStateError",
    "JobStatus",
    "LockedError",
    "NodeHome",
    "OutputMismatchError",
    "PeerError",
    "PeerUnreachableError",
    "PhenotypeError",
    "PhenotypeProfile",
    "Policy",
    "Published",
    "Session",
    "Settings",
    "Submitted",
    "TamperedDataError",
    "TransactionRejectedError",
    "TransactionRevertedError",
    "WrongPassphraseError",
    "cancel_job",
    "check_receipt",
    "federated_match",
    "fetch",
    "fetch_result",
    "format_amount",
    "job_logs",
    "job_status",
    "load_settings",
    "open_session",
    "parse_amount",
    "publish",
    "purpose_bit",
    "purpose_mask",
    "request_access",
    "submit_job",
]


def test_the_public_names_are_exactly_these() -> None:
    assert ailedger.__all__ == PUBLIC


@pytest.mark.parametrize("name", PUBLIC)
def test_every_name_resolves_to_its_module(name: str) -> None:
    import importlib

    module, attribute = ailedger._EXPORTS[name]
    assert getattr(ailedger, name) is getattr(importlib.import_module(module), attribute)


def test_every_name_is_listed_and_nothing_unknown_resolves() -> None:
    assert set(ailedger._EXPORTS) == set(PUBLIC)
    assert set(PUBLIC) <= set(dir(ailedger))
    with pytest.raises(AttributeError, match="no attribute 'submit'"):
        ailedger.submit  # type: ignore[attr-defined]  # noqa: B018 (the lookup is the test)
    from ailedger import errors

    assert issubclass(ailedger.AccessRefusedError, errors.AiledgerError)
    assert ailedger.AiledgerError is errors.AiledgerError


def test_type_checkers_see_the_same_names() -> None:
    """The imports under TYPE_CHECKING name the same (module, name) as the lazy table, so
    what mypy checks is what a program gets at run time."""
    tree = ast.parse(Path(ailedger.__file__).read_text())
    guarded = next(
        node
        for node in tree.body
        if isinstance(node, ast.If)
        and isinstance(node.test, ast.Name)
        and node.test.id == "TYPE_CHECKING"
    )
    seen = {
        alias.asname or alias.name: (node.module, alias.name)
        for node in guarded.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert seen == ailedger._EXPORTS


def test_importing_the_package_loads_nothing_heavy() -> None:
    probe = (
        "import sys, ailedger\n"
        "heavy = ('web3', 'eth', 'vyper', 'eth_account', 'cryptography', 'sqlalchemy',\n"
        "         'pydantic', 'httpx')\n"
        "loaded = [m for m in heavy if m in sys.modules]\n"
        "loaded += [m for m in sys.modules if m.startswith('ailedger.')]\n"
        "print('LOADED', loaded)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert "LOADED []" in out.stdout

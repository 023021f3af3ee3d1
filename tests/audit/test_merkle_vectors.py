"""RFC 6962 proof vectors from transparency-dev/merkle (``shared/data/merkle-testdata``)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from ailedger.audit.merkle import verify_consistency, verify_inclusion

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "merkle-testdata"
needs_data = pytest.mark.skipif(
    not DATA.is_dir(), reason=f"Merkle test vectors not found at {DATA} (sibling shared/ checkout)"
)


def _cases(kind: str) -> list[Path]:
    return sorted((DATA / kind).rglob("*.json")) if DATA.is_dir() else []


def _id(path: Path) -> str:
    return str(path.relative_to(DATA))


def _load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def _b64(value: str) -> bytes:
    return base64.b64decode(value)


@needs_data
def test_vector_counts() -> None:
    assert len(_cases("inclusion")) >= 80
    assert len(_cases("consistency")) >= 90


@needs_data
@pytest.mark.parametrize("path", _cases("inclusion"), ids=_id)
def test_inclusion_vector(path: Path) -> None:
    case = _load(path)
    ok = verify_inclusion(
        _b64(case["leafHash"]),
        case["leafIdx"],
        case["treeSize"],
        [_b64(p) for p in case["proof"] or []],
        _b64(case["root"]),
    )
    assert ok is not case["wantErr"], case["desc"]


@needs_data
@pytest.mark.parametrize("path", _cases("consistency"), ids=_id)
def test_consistency_vector(path: Path) -> None:
    case = _load(path)
    ok = verify_consistency(
        case["size1"],
        case["size2"],
        [_b64(p) for p in case["proof"] or []],
        _b64(case["root1"]),
        _b64(case["root2"]),
    )
    assert ok is not case["wantErr"], case["desc"]

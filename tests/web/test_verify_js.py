"""verify.js, the browser's Merkle code, against the same RFC 6962 vectors the Python code
passes (``tests/audit/test_merkle_vectors.py``) and against receipts of a real audit log.

It runs under Node.js (WebCrypto as ``globalThis.crypto.subtle``, the same API a browser
has); the browser tests run it in Chromium too."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ailedger.audit.log import AuditLog
from ailedger.audit.merkle import inclusion_steps
from ailedger.web.render import STATIC

VERIFY_JS = STATIC / "verify.js"
DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "merkle-testdata"
needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"no Merkle vectors at {DATA}")

# Reads {"inclusion": [...], "consistency": [...], "receipts": [...], "sides": [...]} on
# stdin (sizes as strings: they go up to 2**64 - 1) and prints what verify.js says of each.
RUNNER = """
const v = require(process.argv[1]);
const b = (x) => v.b64decode(x);
let input = "";
process.stdin.on("data", (c) => (input += c));
process.stdin.on("end", async () => {
  const cases = JSON.parse(input);
  const out = { inclusion: [], consistency: [], receipts: [], sides: [] };
  for (const c of cases.inclusion) {
    let ok;
    try {
      ok = await v.verifyInclusion(b(c.leafHash), BigInt(c.leafIdx), BigInt(c.treeSize),
        (c.proof || []).map(b), b(c.root));
    } catch (e) { ok = false; }
    out.inclusion.push(ok);
  }
  for (const c of cases.consistency) {
    let ok;
    try {
      ok = await v.verifyConsistency(BigInt(c.size1), BigInt(c.size2), (c.proof || []).map(b),
        b(c.root1), b(c.root2));
    } catch (e) { ok = false; }
    out.consistency.push(ok);
  }
  for (const r of cases.receipts) {
    try {
      const got = await v.checkReceipt(r);
      out.receipts.push({ ok: got.matchesCheckpoint, leaf: v.b64encode(got.leaf),
        root: got.computed && v.b64encode(got.computed), sides: got.steps.map((s) => s.side) });
    } catch (e) { out.receipts.push({ error: e.message }); }
  }
  for (const [index, size, length] of cases.sides) {
    out.sides.push(v.inclusionSides(BigInt(index), BigInt(size), length));
  }
  console.log(JSON.stringify(out));
});
"""


def run_verify_js(cases: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run(
        ["node", "-e", RUNNER, str(VERIFY_JS)],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _vectors(kind: str) -> list[dict[str, Any]]:
    found = []
    for path in sorted((DATA / kind).rglob("*.json")) if DATA.is_dir() else []:
        case = json.loads(path.read_text())
        for key in ("leafIdx", "treeSize", "size1", "size2"):
            if key in case:
                case[key] = str(case[key])  # beyond 2**53: a Number would round them
        case["path"] = str(path.relative_to(DATA))
        found.append(case)
    return found


@needs_node
@needs_data
def test_verify_js_passes_the_rfc6962_vectors_the_python_code_passes() -> None:
    inclusion, consistency = _vectors("inclusion"), _vectors("consistency")
    assert len(inclusion) >= 80 and len(consistency) >= 90
    said = run_verify_js({"inclusion": inclusion, "consistency": consistency,
                          "receipts": [], "sides": []})  # fmt: skip
    wrong = [
        c["path"]
        for c, ok in zip(
            inclusion + consistency, said["inclusion"] + said["consistency"], strict=True
        )
        if ok is c["wantErr"]
    ]
    assert wrong == []
    assert True in said["inclusion"] and False in said["inclusion"]  # both outcomes seen


@pytest.fixture(scope="module")
def receipts(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """Receipts of a real log of 21 entries (an odd size: paths of uneven depth)."""
    key = Ed25519PrivateKey.generate()
    with AuditLog(tmp_path_factory.mktemp("log"), key, checkpoint_interval=3600) as log:
        log.extend({"kind": "read", "n": i, "who": "é"} for i in range(21))
        log.checkpoint_now()
        return [log.receipt(i) for i in range(21)]


@needs_node
def test_verify_js_recomputes_real_receipts_and_refuses_altered_ones(
    receipts: list[dict[str, Any]],
) -> None:
    from ailedger.audit.merkle import leaf_hash

    altered = dict(receipts[5], entry=receipts[5]["entry"].replace('"n":5', '"n":6'))
    wrong_path = dict(receipts[8], inclusion_proof=receipts[8]["inclusion_proof"][:-1])
    not_one = {"index": "x"}
    said = run_verify_js({"inclusion": [], "consistency": [], "sides": [],
                          "receipts": [*receipts, altered, wrong_path, not_one]})  # fmt: skip
    genuine = said["receipts"][:21]
    assert all(r["ok"] for r in genuine)
    assert genuine[3]["leaf"] == base64.b64encode(leaf_hash(receipts[3]["entry"].encode())).decode()
    assert said["receipts"][21]["ok"] is False  # another entry: another root
    assert said["receipts"][22]["ok"] is False and said["receipts"][22]["root"] is None
    assert "index" in said["receipts"][23]["error"]


@needs_node
def test_the_sides_of_each_step_are_those_python_walks() -> None:
    cases = [(i, n, len(bin(n)) + 1) for n in range(1, 40) for i in range(n)]
    cases = [(i, n, length) for i, n, _ in cases for length in range(0, 8)]
    said = run_verify_js({"inclusion": [], "consistency": [], "receipts": [], "sides": cases})
    expected = [inclusion_steps(i, n, [b"\0" * 32] * length) for i, n, length in cases]
    assert said["sides"] == expected
    assert any(s is not None for s in expected) and any(s is None for s in expected)

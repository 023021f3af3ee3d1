"""What the end-to-end demo must tell, chapter by chapter: one check shared by the test that
runs the README's demo command (the demo runs once per suite, as a newcomer runs it)."""

from __future__ import annotations

import re

import pytest


def check_demo_story(out: str) -> None:
    assert "identical to the original: True" in out
    assert "a fetch before approval is refused" in out
    assert "a fetch after revocation is refused, nothing decrypted: the grant was revoked" in out
    assert "refused on chain" in out and "purpose not allowed" in out
    assert "read    served" in out and "PROOF FAILED" not in out
    assert "audit verify: audit log verified" in out
    assert "hospital holds 210 AIL (was 210 AIL)" in out  # 3 grants + faucet - stake
    assert "imported 25 patients" in out and "research-consented records" in out
    assert "(found on chain): ok: 5 results" in out and "match score 1.00" in out
    assert "incoming MME query from" in out
    # Billed by the second the job ran on chain, a few seconds of a 2 AIL hour.
    earned = re.search(r"the GPU owner earned ([0-9.]+) AIL \(([0-9]+) s at its 2 AIL", out)
    assert earned is not None and "accuracy 0.9" in out
    assert 0 <= float(earned[1]) < 2 and float(earned[1]) == pytest.approx(
        int(earned[2]) * 2 / 3600, abs=1e-6
    )
    assert re.search(r'released result: \{"by_gene": \{"KMT2D": 100, "MECP2": 100, ', out)
    assert '"patients": 400, "rare_born_1950": null}' in out  # a cell of 7: suppressed
    assert "(exact values: not differentially private)" in out
    assert "a job that copies the rows gets nothing out: withheld:" in out
    assert "audit log holds 2 compute-read entries" in out
    # Private analytics: answers and a model, never rows, one budget for every buyer.
    assert "fetching the rows is refused even with the grant: this dataset is private" in out
    assert re.search(r"a DP query through OpenDP \(epsilon 0\.5\): count \d+", out)
    trained = re.search(r"DP-SGD training .* accuracy ([0-9.]+) on the public copy", out)
    assert trained is not None and float(trained[1]) > 0.8
    assert re.search(r"refused before paying anything \(balance ([0-9.]+) AIL, was \1 AIL\)", out)
    assert "over its cap of 3" in out
    assert "recomputed from 2 releases on chain" in out
    # Trustworthy AI: a passport, a decision recorded and explained, verified by its patient.
    assert re.search(
        r"an auditor verifies it: signature ok; (\d+) of \1 checks against the chain", out
    )
    assert "the patient checks the receipt against the chain alone: verified" in out
    assert "the same receipt with someone else's input: refused" in out
    assert re.search(r"traced: decision \d+ -> passport 0x[0-9a-f]+… -> model version 1", out)
    # The hospital's web app, through its REST API, signed in with its account.
    assert "(operator), Sign-In with Ethereum" in out
    assert re.search(r"/owner: 'Rare disease registry \(Safe Harbor\)': \d+ read", out)
    assert re.search(r"verified: format ok, entry ok, signature ok, inclusion ok, anchor ok", out)
    assert "each role's page renders: /owner" in out
    assert "node login-link --port 8700" in out

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
    # 4 grants paid to the hospital (the cohort's 50 AIL in chapter 7 and twice in chapter 11,
    # the tumours' 10 AIL) + its 200 AIL faucet - its 100 AIL stake = 260 AIL, plus its pay
    # as the provider of the accepted training job: a few seconds at 1 AIL per hour (the
    # statistics and copy jobs stay under review, unpaid), less the 3 AIL it pays in
    # chapter 14 for a pack of 3 predictions: 257 AIL and a little; plus its share of the
    # 30 AIL federated reward pool in chapter 15 (its stake comes back); plus one sale of
    # the chapter 9 registry in chapter 16, less the patients' 10 %: 9 AIL.
    held = re.search(r"hospital holds ([0-9.]+) AIL \(was \1 AIL\)", out)
    assert held is not None and 266 <= float(held[1]) < 296.01
    assert "imported 25 patients" in out and "research-consented records" in out
    assert "(found on chain): ok: 5 results" in out and "match score 1.00" in out
    ranked = re.search(
        r"= log10 odds ([+-]\d+\.\d+) \(the parts add up to the score, ([+-]\d+\.\d+)\)", out
    )
    assert ranked and ranked.group(1) == ranked.group(2)
    assert re.search(r"the clinician ranks \d{5} diseases for the case by likelihood ratios", out)
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
    assert "audit log holds 3 compute-read entries" in out
    # The model chapter 13 registers is trained at the hospital, over the chapter 6 cohort,
    # under a grant for model training.
    dataset = re.search(r"dataset 0x([0-9a-f]{64}): \d+ bytes of ciphertext", out)
    grant = re.search(
        r"grant \d+ for rare-disease research and grant (\d+) for model training", out
    )
    trained = re.search(
        r"job (\d+) trains a model at the hospital's node under the model-training grant: "
        r"400 patients, accuracy 0\.[89]",
        out,
    )
    assert dataset is not None and grant is not None and trained is not None
    # Private analytics: answers and a model, never rows, one budget for every buyer.
    assert "fetching the rows is refused even with the grant: this dataset is private" in out
    assert re.search(r"a DP query through OpenDP \(epsilon 0\.5\): count \d+", out)
    dp = re.search(r"DP-SGD training .* accuracy ([0-9.]+) on the public copy", out)
    assert dp is not None and float(dp[1]) > 0.8
    assert re.search(r"refused before paying anything \(balance ([0-9.]+) AIL, was \1 AIL\)", out)
    assert "over its cap of 3" in out
    assert "recomputed from 2 releases on chain" in out
    # Trustworthy AI: a passport, a decision recorded and explained, verified by its patient.
    assert re.search(
        r"an auditor verifies it: signature ok; (\d+) of \1 checks against the chain", out
    )
    assert "the patient checks the receipt against the chain alone: verified" in out
    assert "re-runs the decision: output and every attribution as logged" in out
    assert "the same receipt with someone else's input: refused" in out
    assert f"registers job {trained[1]}'s output as model" in out
    job, short, grant_id = trained[1], dataset[1][:16], grant[1]
    assert re.search(
        r"traced: decision \d+ -> passport 0x[0-9a-f]+… -> model version 1 of 0x[0-9a-fA-F]{40} "
        rf"-> training job {job} -> dataset 0x{short}… -> grant {grant_id} for model-training\n",
        out,
    )
    hops = re.search(r"each hop checked on chain: (.*)", out)
    assert hops is not None and "FAILED" not in hops[1]
    assert f"job {job} completed for 0x" in hops[1] and hops[1].endswith(
        f"dataset 0x{short}… granted for model training (grant {grant_id}): ok"
    )
    # The model market: predictions sold by the use, each a receipt; the files never leave.
    assert "the model is the seller's, current: confirmed on chain" in out
    assert re.search(
        r"the hospital asks about a patient: risk [0-9.]+, with a decision receipt", out
    )
    assert "2 of 3 predictions left" in out
    assert "the model's files with the same grant: refused (this grant buys predictions" in out
    # Federated learning: rounds anchored, one institution dropped mid-round, paid by score.
    assert re.search(r"round 1/3: 3 aggregated, validation accuracy 0\.\d+, anchored 0x", out)
    assert re.search(r"round 2/3: 2 aggregated.*dropped 0x", out)
    final = re.search(r"final model: validation accuracy ([0-9.]+)", out)
    assert final is not None and float(final[1]) > 0.8
    assert len(re.findall(r"contribution [+-][0-9.]+ accuracy, paid", out)) == 3
    passport = r"passport naming the 3 datasets .* verified by the hospital: (\d+) of \1 checks"
    assert re.search(passport, out)
    secure = r"under secure aggregation .* weighted average of 3 updates and no update of anyone"
    assert re.search(secure, out)
    # A patient: wearable data kept at home, feedback they can verify, consent and a share.
    assert re.search(r"imports three weeks .*: 48 readings kept, 21 steps the phone", out)
    assert "feedback FLAG resting-heart-rate-rise: resting heart rate averaged 63.0" in out
    assert "blood pressure averaged 134/82 mmHg over 3 days: stage 1 hypertension" in out
    assert "checks it against the chain alone: 2 of 2 verified" in out
    assert "grants the hospital's clinician their day-to-day patterns: 21 days fetched" in out
    assert "patients 10% of each sale (1 linked, 24 not)" in out
    assert "the hospital receives 9 AIL, the consenting patients 1 AIL" in out
    assert "the patient claims 1 AIL themselves" in out
    assert "told consent holds: False; the next request for the registry is refused" in out
    assert "a patient withdrew consent" in out
    # The hospital's web app, through its REST API, signed in with its account.
    assert "(operator), Sign-In with Ethereum" in out
    assert re.search(r"/owner: 'Rare disease registry \(Safe Harbor\)': \d+ read", out)
    assert re.search(r"verified: format ok, entry ok, signature ok, inclusion ok, anchor ok", out)
    assert "each role's page renders: /owner" in out
    assert "node login-link --port 8700" in out

"""The demo's trustworthy-AI chapter: the model the researcher trained at the hospital's
node (compute-to-data, under a grant for model training) gets a passport, a decision about
a patient is recorded with its explanation, the patient checks it against the chain, and
an auditor traces it back through the training job to the dataset and its grant."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

from ailedger.ai.lineage import Lineage
from ailedger.ai.models import Registered
from ailedger.ai.provenance import Hop
from ailedger.chain.contracts.model_registry import ModelVersion
from ailedger.demo.compute import HOSPITAL_MODEL
from ailedger.session import Session

Say = Callable[[str], None]
# Inside the bounds the model was trained within (onset 0-60 months, delay score 0-10).
PATIENT = {"onset_months": 9.0, "delay_score": 7.0}


def trustworthy_ai(
    researcher: Session, auditor: Session, job: int, root: Path, say: Say
) -> Registered:
    """Returns the registered model (chapter 14 sells its predictions)."""
    from ailedger.ai.models import register_model, verify_model
    from ailedger.ai.replay import replay_decision
    from ailedger.ai.serving import serve, verify_receipt_file
    from ailedger.sharing.owner import OwnerNode

    say("\n[bold]13. Trustworthy AI: a model passport, and a decision a patient can verify[/bold]")
    model_dir = root / HOSPITAL_MODEL
    trained = json.loads((model_dir / "model.json").read_text())
    report = root / "evaluation.json"
    report.write_text(json.dumps({"train_accuracy": trained["train_accuracy"]}))
    done = register_model(researcher, model_dir, [job], name="demo risk model", evaluation=report)
    say(
        f"  the researcher registers job {job}'s output as model 0x{done.model_id.hex()[:16]}… "
        f"version {done.version}: passport {done.passport.sha256[:18]}… (OpenSSF model "
        f"signing over the weights, the card and the lineage)  tx {done.tx_hash}"
    )
    check = verify_model(auditor, model_dir, done.passport.path, done.public_key.read_bytes())
    say(f"  an auditor verifies it: signature ok; {_hops(check.hops)}")

    with OwnerNode(researcher) as node:
        served = serve(
            researcher, node, model_dir, done.passport.path, done.public_key.read_bytes(), [PATIENT]
        )
    (receipt,) = served.receipts
    anchored = served.anchored[0] if served.anchored else "(not anchored)"
    entry = json.loads(receipt["entry"])
    explanation = json.loads(entry["explanation"])
    top = max(explanation["attributions"].items(), key=lambda kv: abs(kv[1]))
    say(
        f"  the researcher's node decides about a patient: risk {entry['output']:.3f}, "
        f"explained by {explanation['explainer']} (largest attribution {top[0]} "
        f"{top[1]:+.3f}, residual {explanation['residual']:.1e}); audit entry "
        f"{receipt['index']}, anchored on chain at size {anchored}"
    )
    verdict = verify_receipt_file(auditor, receipt)
    say(
        f"  the patient checks the receipt against the chain alone: "
        f"{'verified' if verdict.ok else 'FAILED: ' + '; '.join(verdict.problems)} "
        f"(in the log, anchored, the explanation adds up, their own input matches)"
    )
    replayed = replay_decision(receipt, model_dir, done.passport.path, done.public_key.read_bytes())
    outcome = "output and every attribution as logged"
    say(
        "  an auditor with the model and the patient's input re-runs the decision: "
        + (outcome if replayed.ok else _first(replayed.problems, False))
    )
    altered = {**receipt, "features": {**PATIENT, "delay_score": 2.0}}
    refused = verify_receipt_file(auditor, altered)
    say(f"  the same receipt with someone else's input: {_first(refused.problems, refused.ok)}")
    version = auditor.model_registry.by_passport(bytes.fromhex(entry["model"][2:]))
    if version is not None and check.lineage is not None and check.version == version:
        _trace(auditor, receipt["index"], entry["model"], version, check.lineage, say)
    return done


def _trace(
    auditor: Session,
    decision: int,
    passport: str,
    version: ModelVersion,
    lineage: Lineage,
    say: Say,
) -> None:
    """Decision -> passport -> model version -> training job -> dataset -> grant, each
    step after the version checked on chain by :func:`check_lineage` (the version itself
    was found on chain by the passport's hash)."""
    from ailedger.ai.provenance import check_lineage

    hops = check_lineage(auditor, version.owner, lineage, version.jobs)
    steps = [
        f"decision {decision}",
        f"passport {passport[:18]}…",
        f"model version {version.version} of {version.owner}",
        *(f"training job {j.job}" for j in lineage.training_jobs),
    ]
    for used in lineage.datasets:
        steps += [f"dataset {used.dataset[:18]}…", f"grant {used.grant} for {used.purpose}"]
    say(f"  traced: {' -> '.join(steps)}")
    checked = "; ".join(f"{h.what}: {'ok' if h.ok else 'FAILED: ' + h.reason}" for h in hops)
    say(f"  each hop checked on chain: {checked}")


def _hops(hops: Sequence[Hop]) -> str:
    ok = sum(1 for h in hops if h.ok)
    return (
        f"{ok} of {len(hops)} checks against the chain pass (registered, its files the "
        "job's settled output, the job completed by its owner, its dataset read under a "
        "grant for model training)"
    )


def _first(problems: list[str], ok: bool) -> str:
    if ok:
        return "[bold red]accepted (it should not be)[/bold red]"
    return f"refused ({problems[0]})" if problems else "refused"

"""The demo's private-analytics chapter: the hospital's tumour measurements answer
questions and train a model, never hand out a row, and one budget covers every buyer."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ailedger.errors import AiledgerError
from ailedger.session import Session
from ailedger.units import format_amount

Say = Callable[[str], None]
AIL = 10**18
CAP_EPSILON = 3.0
CAP_DELTA = 1e-6
# Bounds are declared from what the measurements can be (published ranges of the
# Wisconsin diagnostic data), never read off the private rows.
FEATURES: dict[str, tuple[str, float, float]] = {
    "radius": ("mean radius", 5.0, 30.0),
    "texture": ("mean texture", 9.0, 40.0),
    "perimeter": ("mean perimeter", 40.0, 190.0),
    "area": ("mean area", 140.0, 2500.0),
    "smoothness": ("mean smoothness", 0.05, 0.17),
    "concavity": ("mean concavity", 0.0, 0.45),
    "concave_points": ("mean concave points", 0.0, 0.21),
    "worst_radius": ("worst radius", 7.0, 37.0),
    "worst_concave_points": ("worst concave points", 0.0, 0.3),
}
DIAGNOSES = ["benign", "malignant"]


def tumour_table() -> tuple[str, list[dict[str, Any]]]:
    """The Wisconsin diagnostic breast-cancer measurements (569 tumours, shipped with
    scikit-learn) as the hospital's CSV, and the rows as dicts for checking a model."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    index = {name: i for i, name in enumerate(data.feature_names)}
    rows = []
    for values, target in zip(data.data, data.target, strict=True):
        row: dict[str, Any] = {
            key: round(float(values[index[source]]), 5) for key, (source, _, _) in FEATURES.items()
        }
        row["diagnosis"] = "benign" if target == 1 else "malignant"  # sklearn: 1 = benign
        rows.append(row)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=[*FEATURES, "diagnosis"])
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue(), rows


def column(name: str) -> dict[str, Any]:
    _, lower, upper = FEATURES[name]
    return {"type": "float", "lower": lower, "upper": upper}


QUERY: dict[str, Any] = {
    "columns": {
        "radius": column("radius"),
        "diagnosis": {"type": "category", "categories": DIAGNOSES},
    },
    "statistics": [
        {"kind": "count"},
        {"kind": "mean", "column": "radius"},
        {"kind": "histogram", "column": "diagnosis"},
    ],
    "epsilon": 0.5,
}

TRAINING: dict[str, Any] = {
    "columns": {
        **{name: column(name) for name in FEATURES},
        "diagnosis": {"type": "category", "categories": DIAGNOSES},
    },
    "label": "diagnosis",
    "features": list(FEATURES),
    "epsilon": 1.0,
    "delta": CAP_DELTA,
}

GREEDY_QUERY: dict[str, Any] = {**QUERY, "epsilon": 2.5}


def accuracy(model: dict[str, Any], rows: list[dict[str, Any]]) -> float:
    """The share of ``rows`` the released model classifies right."""
    import numpy as np

    from ailedger.privacy.training import predict_proba

    features = np.array([[row[name] for name in model["features"]] for row in rows])
    scores = predict_proba(model, features)
    hits: int = sum(
        (float(p) >= 0.5) == (row["diagnosis"] == "malignant")
        for p, row in zip(scores, rows, strict=True)
    )
    return hits / len(rows)


def private_analytics(
    hospital: Session, researcher: Session, second: Session, root: Path, say: Say
) -> None:
    from ailedger.chain.contracts.data_market import PURPOSES, Policy
    from ailedger.node.app import create_app
    from ailedger.node.service import BackgroundServer, announce, privacy_desk
    from ailedger.privacy.owner import set_privacy_cap
    from ailedger.privacy.report import budget_report
    from ailedger.sharing.owner import OwnerNode

    say("\n[bold]12. Private analytics: answers and a model from data no one receives[/bold]")
    text, rows = tumour_table()
    source = root / "tumours.csv"
    source.write_text(text)
    training = PURPOSES["model-training"]
    with OwnerNode(hospital) as node:
        policy = Policy(
            training, needs_approval=False, price=10 * AIL, duration_s=86400, max_reads=0
        )
        metadata = {"title": "Breast tumour measurements", "tags": ["oncology"], "description": ""}
        published = node.publish(source, policy, metadata, None)
        dataset = published.dataset_id
        change = set_privacy_cap(hospital, dataset, CAP_EPSILON, CAP_DELTA)
        say(
            f"  the hospital publishes {len(rows)} tumours' measurements (dataset "
            f"0x{dataset.hex()[:16]}…, 10 AIL a grant) and makes it private: one budget of "
            f"epsilon {CAP_EPSILON:g} at delta {CAP_DELTA:g} for every buyer together  "
            f"tx {change.tx_hash}"
        )
        desk = privacy_desk(node)
        with BackgroundServer(create_app(node.gateway(), privacy=desk)) as url:
            announce(hospital, url)
            _researcher_asks(researcher, dataset, rows, root, say)
            _second_buyer_refused(second, dataset, say)
        report = budget_report(hospital, dataset)
    say(
        f"  the hospital's `data budget`: spent epsilon {report.spent_recomputed:.3f} of "
        f"{report.epsilon_cap:g} (recomputed from {len(report.releases)} releases on chain; "
        f"RDP says {report.spent_rdp:.3f}); remaining {report.remaining:.3f}"
    )
    for kind, epsilon in report.by_kind.items():
        say(f"    {kind}: epsilon {epsilon:.3f} (composed alone)")


def _researcher_asks(
    researcher: Session, dataset: bytes, rows: list[dict[str, Any]], root: Path, say: Say
) -> None:
    from ailedger.chain.contracts.data_market import PURPOSES
    from ailedger.privacy.buyer import ask, buy_access, precheck
    from ailedger.sharing.requester import fetch

    projected = precheck(researcher, dataset, "query", QUERY)
    bought = buy_access(researcher, dataset, PURPOSES["model-training"])
    say(
        f"  the researcher checks the budget first (the query would bring the spend to "
        f"{projected:.3f}), then buys grant {bought.grant_id}  tx {bought.tx_hash}"
    )
    try:
        fetch(researcher, dataset, bought.grant_id, root / "tumours-copy.csv")
    except AiledgerError as exc:
        say(f"  fetching the rows is refused even with the grant: {exc}")
    answer = ask(researcher, dataset, bought.grant_id, "query", QUERY)
    say(f"  a DP query through OpenDP (epsilon 0.5): {_shown(answer['values'])}")
    say(
        f"    true values, for comparison: count {len(rows)}, mean radius "
        f"{sum(r['radius'] for r in rows) / len(rows):.2f}, malignant "
        f"{sum(r['diagnosis'] == 'malignant' for r in rows)}"
    )
    trained = ask(researcher, dataset, bought.grant_id, "training", TRAINING)
    model = trained["values"]["model"]
    say(
        f"  DP-SGD training (epsilon 1, delta {CAP_DELTA:g}) over {trained['values']['rows']} "
        f"rows: accuracy {accuracy(model, rows):.3f} on the public copy of the data; "
        f"spend now {trained['epsilon_spent_after']:.3f} of {CAP_EPSILON:g}  "
        f"tx {trained['charge_tx']}"
    )


def _second_buyer_refused(second: Session, dataset: bytes, say: Say) -> None:
    from ailedger.privacy.buyer import precheck

    second.token.faucet(20 * AIL)
    before = second.token.balance_of(second.address)
    try:
        precheck(second, dataset, "query", GREEDY_QUERY)
        say("  [bold red]a query over the cap was not refused[/bold red]")
    except AiledgerError as exc:
        after = second.token.balance_of(second.address)
        say(
            f"  a second buyer asks for epsilon 2.5 and is refused before paying anything "
            f"(balance {format_amount(after)}, was {format_amount(before)}): {exc}"
        )


def _shown(values: dict[str, Any]) -> str:
    return ", ".join(f"{k} {_round(v)}" for k, v in values.items())


def _round(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 2)
    if isinstance(value, dict):
        return {k: _round(v) for k, v in value.items()}
    return value

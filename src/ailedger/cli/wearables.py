"""``ailedger wearables``: import a person's wearable data into their own node, and prove
later that a reading was held at a time."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from ailedger.cli._common import JSON_OPTION, console, emit, session

if TYPE_CHECKING:
    from ailedger.health.wearables.vault import WearableVault
    from ailedger.session import Session
    from ailedger.sharing.owner import OwnerNode

app = typer.Typer(
    help="Wearable data at your own node: import Apple Health exports, Open mHealth and "
    "FHIR Observations (checked, deduplicated across sources, encrypted), list what you "
    "imported, and prove a reading existed at a time."
)

PRIORITY_HELP = (
    "Which source wins where several measured the same thing in the same hour: "
    "comma-separated parts of source names, first wins (default: watch, oura, fitbit, "
    "garmin, whoop, polar, phone, then any other app)."
)


@contextmanager
def _vault(ctx: typer.Context) -> Iterator[tuple[Session, OwnerNode, WearableVault]]:
    from ailedger.node.wearables import vault_of
    from ailedger.sharing.owner import OwnerNode

    with session(ctx, unlock=True) as s, OwnerNode(s) as node:
        yield s, node, vault_of(s, node)


@app.command("import")
def import_(
    ctx: typer.Context,
    path: Path = typer.Argument(
        ...,
        help="Apple Health export.zip (or its export.xml), Open mHealth JSON, or FHIR "
        "Observations (a Bundle .json or .ndjson).",
        exists=True,
        dir_okay=False,
    ),
    format: str = typer.Option(
        "auto", help="auto (from the name), apple-health, open-mhealth or fhir."
    ),
    priority: str = typer.Option("", help=PRIORITY_HELP),
    as_json: bool = JSON_OPTION,
) -> None:
    """Import a file whole or not at all: every reading is checked (units, plausible
    values, no future dates), readings measured by two sources are kept from the one
    that wins, readings you imported before are skipped. What is kept is encrypted at
    your node, and the batch's Merkle root goes into your audit log, anchored on chain."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    from ailedger.health.wearables.importer import DEFAULT_PRIORITY
    from ailedger.node.wearables import anchor_now

    order = tuple(p.strip() for p in priority.split(",") if p.strip()) or DEFAULT_PRIORITY
    columns = (BarColumn(), DownloadColumn(), TimeRemainingColumn())
    with (
        _vault(ctx) as (_, node, vault),
        Progress(*columns, console=console, transient=True, disable=as_json) as bar,
    ):
        task = bar.add_task("reading", total=None)
        outcome = vault.import_file(
            path,
            node.audit,
            format=format,
            priority=order,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
        anchored, not_anchored = None, None
        if outcome.batch is not None:  # stored: anchoring can follow later if it fails now
            anchored, not_anchored = anchor_now(node)
    report = outcome.report
    data = {
        "batch": outcome.batch.__dict__ if outcome.batch else None,
        "counts": report.counts(),
        "skipped": dict(report.skipped),
        "rejected": dict(report.rejected),
        "examples": report.examples,
        "anchored": list(anchored) if anchored else None,
        "not_anchored": not_anchored,
    }
    emit(as_json, data, lambda: _render_import(data))


def _render_import(data: dict[str, Any]) -> None:
    counts = data["counts"]
    console.print(
        f"{counts['accepted']} readings kept, {counts['duplicate']} already held or repeated, "
        f"{counts['overridden']} measured better by another source, {counts['skipped']} of "
        f"types not imported, {counts['rejected']} rejected"
    )
    for reason, count in sorted(data["rejected"].items()):
        console.print(f"  rejected ({reason}): {count}")
    for example in data["examples"]:
        console.print(f"    e.g. {example}")
    batch = data["batch"]
    if batch is None:
        console.print("nothing new to store")
        return
    console.print(
        f"batch {batch['batch_id']}: {batch['readings']} readings, encrypted at this node; "
        f"Merkle root {batch['merkle_root'][:16]}... in audit entry {batch['audit_index']}"
    )
    if data["anchored"]:
        console.print(f"audit log anchored at size {data['anchored'][0]}")
    elif data["not_anchored"]:
        console.print(
            f"[yellow]the audit log is not anchored yet[/yellow] ({data['not_anchored']}): "
            "your node anchors it while it runs (`ailedger node start`); on a development "
            "chain, `ailedger account fund` pays for the gas"
        )


@app.command("list")
def list_(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """The batches imported at this node, oldest first."""
    with _vault(ctx) as (_, _node, vault):
        batches = [b.__dict__ for b in vault.batches()]

    def render() -> None:
        if not batches:
            console.print("no wearable data imported yet: `ailedger wearables import FILE`")
        for b in batches:
            console.print(
                f"{b['batch_id']}  {b['readings']:>8} readings  from {b['file_name']} "
                f"({b['format']})  audit entry {b['audit_index']}"
            )

    emit(as_json, {"batches": batches}, render)


@app.command("show")
def show(
    ctx: typer.Context,
    batch: str = typer.Argument(..., help="A batch id from `ailedger wearables list`."),
    limit: int = typer.Option(20, min=1, help="How many Observations to print."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Decrypt a batch at this node and print its first Observations (FHIR R4)."""
    with _vault(ctx) as (_, _node, vault):
        lines = vault.observations(batch)
    shown = [json.loads(line) for line in lines[:limit]]

    def render() -> None:
        for o in shown:
            value = o["valueQuantity"]
            when = o.get("effectiveDateTime") or o["effectivePeriod"]["start"]
            console.print(
                f"{o['id'][:12]}  {o['code']['text']}: {value['value']} {value['unit']}  {when}"
            )
        console.print(f"({len(lines)} Observations in the batch)")

    emit(as_json, {"observations": shown, "total": len(lines)}, render)


@app.command("prove")
def prove(
    ctx: typer.Context,
    observation: str = typer.Argument(..., help="An Observation's id (`wearables show`)."),
    out: Path = typer.Option(..., "--out", help="Where to write the proof (JSON)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Write a proof that this node held the Observation: it, its path to its batch's
    Merkle root, and the audit receipt of the entry naming that root. Anyone checks it
    with `ailedger wearables verify`, against the chain only."""
    from ailedger.errors import ConfigError

    if out.exists():
        raise ConfigError(f"{out} exists; name a new file for the proof")
    with _vault(ctx) as (_, node, vault):
        proof = vault.prove(observation, node.audit)
    out.write_text(json.dumps(proof, indent=2, sort_keys=True) + "\n")
    emit(as_json, {"proof": str(out)}, lambda: console.print(f"proof written to {out}"))


@app.command("verify")
def verify(
    ctx: typer.Context,
    proof: Path = typer.Argument(..., help="A proof from `ailedger wearables prove`."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Check a reading's proof: the Observation is in its batch's tree, the tree is the
    one the audit entry names, and the entry is in the node's log under a checkpoint it
    signed and anchored on chain. Only the chain is read. Exits 1 if a check fails."""
    from ailedger.health.wearables.vault import verify_reading_proof

    _check(
        ctx,
        proof,
        "wearable proof",
        verify_reading_proof,
        lambda _, state: f"reading verified: in the batch, in the node's audit log, {state}",
        as_json,
    )


@app.command("share")
def share(
    ctx: typer.Context,
    audience: str = typer.Option(
        ...,
        "--for",
        help="clinical-care: a clinician you grant sees your day-to-day patterns; research: "
        "researchers get only differentially private answers and models from them.",
    ),
    epsilon_cap: float | None = typer.Option(
        None, help="For research: the most privacy (epsilon) all answers together may spend."
    ),
    price: str = typer.Option("0", help="Price in AIL per grant."),
    duration: str = typer.Option("30d", help="How long a grant lasts (12h, 30d)."),
    title: str = typer.Option("Daily wearable patterns", help="Catalog title (nothing personal)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Publish your day-to-day patterns (one row a day: resting heart rate, HRV, steps,
    sleep, blood pressure), encrypted at your node, never the readings themselves. You
    approve every request. For research the dataset is made private at once: its rows
    are never served, only DP answers charged to the budget you set."""
    from ailedger.cli import _parsers as parse
    from ailedger.node.wearables import share_patterns
    from ailedger.sharing.owner import OwnerNode
    from ailedger.units import parse_amount

    amount, seconds = parse_amount(price), parse.duration(duration)
    with session(ctx, unlock=True) as s, OwnerNode(s) as node:
        shared = share_patterns(
            s, node, audience, price=amount, duration_s=seconds, title=title,
            epsilon_cap=epsilon_cap,
        )  # fmt: skip
    data = {
        "dataset": "0x" + shared.dataset_id.hex(),
        "days": shared.days,
        "for": audience,
        "private": shared.private,
        "tx": shared.tx_hash,
    }

    def render() -> None:
        console.print(
            f"your daily patterns ({shared.days} days) published as dataset {data['dataset']}, "
            f"encrypted at your node, for {audience}; you approve each request "
            "(`ailedger data requests`, `ailedger data grant ID`)"
        )
        if shared.private:
            console.print(
                f"private at once: epsilon {epsilon_cap:g} for all answers together; rows "
                "are never served"
            )

    emit(as_json, data, render)


@app.command("feedback")
def feedback(
    ctx: typer.Context,
    receipts: Path | None = typer.Option(
        None, help="A new directory for a receipt per flag, to keep or show your clinician."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Trends in your resting heart rate, heart-rate variability, steps, sleep and blood
    pressure (ACC/AHA categories), computed at your node from what you imported. Each
    flag is explained, and recorded in your audit log as a receipt anyone can check with
    `ailedger wearables check-feedback`. Feedback, not a diagnosis."""
    from ailedger.errors import ConfigError
    from ailedger.node.wearables import run_feedback
    from ailedger.sharing.owner import OwnerNode

    if receipts is not None and receipts.exists():
        raise ConfigError(f"{receipts} exists; name a new directory for the receipts")
    with session(ctx, unlock=True) as s, OwnerNode(s) as node:
        done = run_feedback(s, node)
    findings, made, anchored = done.findings, done.receipts, done.anchored
    paths = []
    if receipts is not None and made:
        receipts.mkdir(parents=True)
        for receipt in made:
            path = receipts / f"feedback-{receipt['finding']['rule']}.json"
            path.write_text(json.dumps(receipt, indent=2, sort_keys=True) + "\n")
            paths.append(str(path))
    data = {
        "findings": [f.__dict__ for f in findings],
        "receipts": paths,
        "anchored": list(anchored) if anchored else None,
    }

    def render() -> None:
        marks = {"flag": "[bold yellow]FLAG[/bold yellow]", "ok": "ok  ", "not enough data": "--  "}
        for f in findings:
            console.print(f"{marks[f.status]} {f.rule}: {f.explanation}", soft_wrap=True)
        for path in paths:
            console.print(f"receipt {path}")

    emit(as_json, data, render)


@app.command("check-feedback")
def check_feedback(
    ctx: typer.Context,
    receipt: Path = typer.Argument(..., help="A receipt from `ailedger wearables feedback`."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Check a feedback receipt against the chain alone: the node recorded exactly this
    finding, in its audit log, under a checkpoint it signed and anchored. Exits 1 if a
    check fails."""
    from ailedger.health.wearables.feedback import verify_feedback

    _check(
        ctx,
        receipt,
        "feedback receipt",
        verify_feedback,
        lambda doc, state: (
            f"feedback {doc['finding']['rule']} verified: recorded by the node, {state}"
        ),
        as_json,
    )


Verifier = Callable[[dict[str, Any], Callable[[dict[str, Any]], list[str]]], list[str]]


def _check(
    ctx: typer.Context,
    path: Path,
    what: str,
    verify: Verifier,
    verified: Callable[[dict[str, Any], str], str],
    as_json: bool,
) -> None:
    """Read a proof or receipt a person holds, check it against the chain alone, say so;
    exit 1 if a check fails."""
    from ailedger.errors import ConfigError
    from ailedger.untrusted_json import parse_untrusted

    try:
        document = parse_untrusted(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the {what} {path}: {exc}") from None
    if not isinstance(document, dict):
        raise ConfigError(f"{path} is not a {what} (a JSON object)")
    anchored: list[bool] = []
    with session(ctx, unlock=False) as s:
        problems = verify(document, _receipt_check(s, document, anchored))
    data = {"ok": not problems, "anchored": bool(anchored and anchored[0]), "problems": problems}

    def render() -> None:
        if not problems:
            state = "anchored on chain" if data["anchored"] else "NOT yet anchored"
            console.print(verified(document, state))
        for problem in problems:
            console.print(f"[bold red]FAILED[/bold red] {problem}")

    emit(as_json, data, render)
    if problems:
        raise typer.Exit(1)


def _receipt_check(
    s: Session, proof: dict[str, Any], anchored: list[bool]
) -> Callable[[dict[str, Any]], list[str]]:
    """The audit receipt against the key and anchors the proof's node has on chain."""

    def check(receipt: dict[str, Any]) -> list[str]:
        from ailedger.audit.home import HomeAudit

        node = proof.get("node")
        if not isinstance(node, str):
            return ['the proof names no "node" (the account that logged it)']
        problems, held = HomeAudit(s).receipt_problems(receipt, node)
        anchored.append(held)
        return problems

    return check

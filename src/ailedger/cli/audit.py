"""``ailedger audit``: who accessed my data, and is the log intact?"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING

import typer

from ailedger.cli._common import JSON_OPTION, console, emit, err_console, session

if TYPE_CHECKING:
    from ailedger.audit.home import HomeAudit
    from ailedger.session import Session

app = typer.Typer(help="Read and verify this node's audit log of every data access.")


@app.command("history")
def history(
    ctx: typer.Context,
    dataset: str = typer.Option(None, help="Only entries about this dataset id (0x...)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """List who accessed (or was refused) which dataset, when and why, each entry
    proved to be in the log under its latest signed checkpoint."""
    with session(ctx, unlock=True) as s:
        found = _home_audit(s).history(dataset=dataset, limit=None, newest_first=False)
    rows = [
        {"index": h.index, **h.entry, "proof_ok": h.proof_ok, "proof_length": len(h.proof)}
        for h in found.entries
    ]
    data = {
        "checkpoint_size": found.checkpoint_size,
        "checkpoint_root": found.checkpoint_root.hex(),
        "entries": rows,
    }

    def render() -> None:
        console.print(
            f"checkpoint: {found.checkpoint_size} entries, root {found.checkpoint_root.hex()[:16]}…"
        )
        for row in rows:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(int(row.get("time", 0))))
            # Reads name their requester; other kinds (decisions, caps) their own actor.
            who = row.get("requester") or row.get("deployer") or "-"
            proof = "proved" if row["proof_ok"] else "PROOF FAILED"
            reason = f" ({row['reason']})" if row.get("reason") else ""
            # markup=False: "[proved]" and free-text reasons are data, not rich markup tags.
            console.print(
                f"#{row['index']:<5} {when}  {row['kind']:<8} {row.get('outcome', '-'):<9} "
                f"{who}{reason}  [{proof}]",
                markup=False,
            )

    emit(as_json, data, render)


def _home_audit(s: Session) -> HomeAudit:
    """This home's log, checked with the key the home signs its checkpoints with."""
    from ailedger.audit.home import HomeAudit
    from ailedger.sharing.owner import audit_signing_key

    return HomeAudit(s, audit_signing_key(s).public_key())


NODE_OPTION = typer.Option(
    None,
    "--node",
    help="Verify ANOTHER node's log, as its gateway serves it, against the checkpoint key "
    "and anchors that node (0x address) has on chain.",
)


@app.command("verify")
def verify(ctx: typer.Context, node: str = NODE_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Re-derive the whole log from its entries, check every signed checkpoint and
    every anchor on chain; name the first bad entry if anything was altered. With
    --node, audit another node's log through its gateway instead."""
    if node is not None:
        _verify_other_node(ctx, node, as_json)
        return
    with session(ctx, unlock=True) as s:
        result = _home_audit(s).verify()
    data = dataclasses.asdict(result)
    key_state = result.checkpoint_key_on_chain

    def render() -> None:
        console.print(
            f"{result.message}: {result.size} entries, {result.checkpoints} "
            f"signed checkpoints, {result.anchored} anchors on chain"
        )
        console.print(f"checkpoint key on chain: {key_state}")
        console.print(
            f"covered: {result.signed_size} of {result.size} entries by signed checkpoints, "
            f"{result.anchored_size} by anchors on chain; {result.unsigned_tail} unsigned"
        )
        _findings(result.notes, result.problems)

    emit(as_json, data, render)
    if not result.ok:
        raise typer.Exit(1)


def _verify_other_node(ctx: typer.Context, node: str, as_json: bool) -> None:
    from ailedger.audit.home import HomeAudit
    from ailedger.cli._parsers import address

    node = address(node)
    with session(ctx, unlock=False) as s:
        checked = HomeAudit(s).verify_node(node)
    url, raw, result = checked.url, checked.checkpoint_key, checked.result
    data = {
        "node": node,
        "url": url,
        "ok": result.ok,
        "checkpoint_key": raw,
        "signed_size": result.signed_size,
        "anchored_size": result.anchored_size,
        "anchored": result.anchors,
        "served_size": result.served_size,
        "message": result.message,
        "problems": result.problems,
        "notes": result.notes,
    }

    def render() -> None:
        console.print(f"{result.message}: node {data['node']} at {url}")
        console.print(
            f"covered: {result.signed_size} of {result.served_size} served entries by its "
            f"signed checkpoint, {result.anchored_size} by {result.anchors} anchors on chain"
        )
        _findings(result.notes, result.problems)

    emit(as_json, data, render)
    if not result.ok:
        raise typer.Exit(1)


def _findings(notes: list[str], problems: list[str]) -> None:
    """Notes on stdout, problems on stderr; free text, so never read as markup."""
    for note in notes:
        console.print(f"  note: {note}", markup=False)
    for problem in problems:
        err_console.print(f"  {problem}", markup=False)

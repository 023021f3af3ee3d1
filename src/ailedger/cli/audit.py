"""``ailedger audit``: who accessed my data, and is the log intact?"""

from __future__ import annotations

import time

import typer

from ailedger.cli._common import JSON_OPTION, console, emit, err_console, session

app = typer.Typer(help="Read and verify this node's audit log of every data access.")


@app.command("history")
def history(
    ctx: typer.Context,
    dataset: str = typer.Option(None, help="Only entries about this dataset id (0x...)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """List who accessed (or was refused) which dataset, when and why, each entry
    proved to be in the log under its latest signed checkpoint."""
    from ailedger.audit.history import read_history
    from ailedger.sharing.owner import audit_signing_key

    with session(ctx, unlock=True) as s:
        public = audit_signing_key(s).public_key()
        found = read_history(s.home.layout.audit, public, dataset=dataset)
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
            who = row.get("requester", "-")
            proof = "proved" if row["proof_ok"] else "PROOF FAILED"
            reason = f" ({row['reason']})" if row.get("reason") else ""
            # markup=False: "[proved]" and free-text reasons are data, not rich markup tags.
            console.print(
                f"#{row['index']:<5} {when}  {row['kind']:<8} {row['outcome']:<9} "
                f"{who}{reason}  [{proof}]",
                markup=False,
            )

    emit(as_json, data, render)


def _key_state(on_chain: bytes | None, ours: bytes) -> str:
    """Receipts and outside audits check checkpoints against the key on chain, not ours."""
    if on_chain is None:
        return "not bound yet (the node binds it when it starts)"
    return "bound" if on_chain == ours else "DIFFERENT"


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
    from ailedger.audit.verify import verify_directory
    from ailedger.sharing.owner import audit_signing_key

    with session(ctx, unlock=True) as s:
        public = audit_signing_key(s).public_key()
        anchored = s.audit_anchor.history(s.address, s.deployment.block)
        result = verify_directory(s.home.layout.audit, public, anchored)
        on_chain = s.audit_anchor.checkpoint_key(s.address)
    key_state = _key_state(on_chain, public.public_bytes_raw())
    if key_state == "DIFFERENT":
        result.ok = False
        result.problems.append(
            f"the checkpoint key on chain ({on_chain.hex() if on_chain else ''}) is not this "
            "log's key: receipts will not verify; start the node to bind this log's key again"
        )
        if result.message == "audit log verified":
            result.message = "audit log verified, but its key on chain is another"
    data = {
        "ok": result.ok,
        "checkpoint_key_on_chain": key_state,
        "size": result.size,
        "checkpoints": result.checkpoints,
        "anchored": len(anchored),
        "signed_size": result.signed_size,
        "anchored_size": result.anchored_size,
        "unsigned_tail": result.unsigned_tail,
        "first_bad_index": result.first_bad_index,
        "message": result.message,
        "problems": result.problems,
        "notes": result.notes,
    }

    def render() -> None:
        console.print(
            f"{result.message}: {result.size} entries, {result.checkpoints} "
            f"signed checkpoints, {len(anchored)} anchors on chain"
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
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from ailedger.audit.remote import GatewayLogSource, verify_served_log
    from ailedger.cli._parsers import address
    from ailedger.errors import ConfigError

    node = address(node)
    with session(ctx, unlock=False) as s:
        url = s.node_registry.url_of(node)
        if url is None:
            raise ConfigError(f"the node {node} has registered no gateway URL on chain")
        raw = s.audit_anchor.checkpoint_key(node)
        key = Ed25519PublicKey.from_public_bytes(raw) if raw else None
        anchors = s.audit_anchor.history(node, s.deployment.block)
        result = verify_served_log(GatewayLogSource(url), key, anchors)
    data = {
        "node": node,
        "url": url,
        "ok": result.ok,
        "checkpoint_key": raw.hex() if raw else None,
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

"""``ailedger model``: register a trained model with a signed passport, verify one end
to end, show and list registered models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from ailedger.cli import _parsers as parse
from ailedger.cli._common import JSON_OPTION, console, emit, session, settings_from, tx_line

app = typer.Typer(
    help=(
        "Model passports: a signed statement over a model's files, card and lineage "
        "(training jobs, datasets, grants), registered on chain and verifiable by anyone."
    )
)


@app.command("register")
def register(
    ctx: typer.Context,
    model_dir: Path = typer.Argument(..., help="The model's directory (a job's output)."),
    job: list[int] = typer.Option(
        [], "--job", min=0, help="The completed training job that made it; repeat for several."
    ),
    name: str = typer.Option(..., help="The model's name, shown in its card and lineage."),
    eval_file: Path = typer.Option(
        None, "--eval", help='Evaluation report: a JSON object of numbers ({"accuracy": 0.95}).'
    ),
    card: Path = typer.Option(None, help="The model card (Markdown); default: a short one."),
    model: str = typer.Option(
        None, help="Add a version to this model (0x...); default: a new model."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Sign the model's passport and register it on chain. The lineage is read from the
    chain (the jobs' settled outputs, the datasets and grants they read); the contract
    refuses jobs that are not yours, not completed, or not over training grants.
    Re-registering after a card edit re-hashes only the card."""
    from ailedger.ai.models import register_model
    from ailedger.errors import ConfigError

    text = None
    if card is not None:
        try:
            text = card.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the card {card}: {exc}") from exc
    model_id = parse.hex32(model, "model id") if model else None
    with session(ctx, unlock=True) as s:
        done = register_model(
            s, model_dir, job, name=name, evaluation=eval_file, card=text, model_id=model_id
        )
    data = {
        "model": "0x" + done.model_id.hex(),
        "version": done.version,
        "passport": done.passport.sha256,
        "bundle": str(done.passport.path),
        "public_key": str(done.public_key),
        "jobs": [j.job for j in done.lineage.training_jobs],
        "datasets": [d.dataset for d in done.lineage.datasets],
        "tx": done.tx_hash,
    }
    emit(
        as_json,
        data,
        lambda: tx_line(
            f"model {data['model']} version {done.version} registered; passport "
            f"{done.passport.sha256} at {done.passport.path} (public key {done.public_key})",
            done.tx_hash,
            done.block,
        ),
    )


@app.command("verify")
def verify(
    ctx: typer.Context,
    model_dir: Path = typer.Argument(..., help="The model's directory."),
    bundle: Path = typer.Option(..., help="The passport bundle (`model register` prints it)."),
    public_key: Path = typer.Option(..., help="The owner's passport public key (PEM)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Check a model end to end: the signature over every file, then each lineage hop
    on chain (the version registered, the jobs completed by the owner with these outputs,
    every dataset granted for model training when the job ran). Exits 1 on any failure."""
    from ailedger.ai.models import model_summary, verify_model

    with session(ctx, unlock=False) as s:
        check = verify_model(s, model_dir, bundle, public_key.read_bytes())
    data = {
        "ok": check.ok,
        "version": model_summary(check.version) if check.version else None,
        "hops": [{"what": h.what, "ok": h.ok, "reason": h.reason} for h in check.hops],
    }

    def render() -> None:
        console.print("signature: ok (every file, the card and the lineage)")
        for hop in check.hops:
            mark = "ok" if hop.ok else f"FAILED: {hop.reason}"
            console.print(f"  {hop.what}: {mark}")
        console.print("model verified" if check.ok else "[bold red]model NOT verified[/bold red]")

    emit(as_json, data, render)
    if not check.ok:
        raise typer.Exit(1)


@app.command("show")
def show(
    ctx: typer.Context,
    model: str = typer.Argument(..., help="The model id (0x...)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """A model's versions as registered on chain."""
    from ailedger.ai.models import model_summary
    from ailedger.errors import ConfigError

    model_id = parse.hex32(model, "model id")
    with session(ctx, unlock=False) as s:
        latest = s.model_registry.latest(model_id)
        if latest is None:
            raise ConfigError(f"there is no model {model} on chain")
        versions = [s.model_registry.version(model_id, v) for v in range(1, latest.version + 1)]
    rows = [model_summary(v) for v in versions if v is not None]
    emit(as_json, {"model": model, "versions": rows}, lambda: _print(rows))


@app.command("list")
def list_(
    ctx: typer.Context,
    mine: bool = typer.Option(False, "--mine", help="Only this home's models."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Every model version registered on chain (or this home's)."""
    from ailedger.ai.models import model_summary

    with session(ctx, unlock=False) as s:
        owner = s.address if mine else None
        events = s.model_registry.history(s.deployment.block, owner=owner)
    rows = [model_summary(e) for e in events]
    emit(as_json, {"models": rows}, lambda: _print(rows))


def _print(rows: list[dict[str, object]]) -> None:
    if not rows:
        console.print("no models registered")
    for row in rows:
        console.print(_line(row))


def _line(row: dict[str, object]) -> str:
    state = "retired" if row["retired"] else "current"
    return (
        f"{row['model']} v{row['version']} ({state}) by {row['owner']}: passport "
        f"{row['passport']}, jobs {row['jobs']}"
    )


@app.command("serve")
def serve(
    ctx: typer.Context,
    model_dir: Path = typer.Argument(..., help="The registered model's directory."),
    bundle: Path = typer.Option(..., help="Its passport bundle."),
    public_key: Path = typer.Option(..., help="The passport's public key (PEM)."),
    inputs: Path = typer.Option(
        ..., "--input", help="One JSON object of numbers by feature, a list, or JSON lines."
    ),
    receipts: Path = typer.Option(
        ..., help="A new directory for the receipts: one file per decision, for its person."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Decide each input with the model and record each decision in this home's audit
    log: the model's passport, a salted digest of the input, the output and an exact
    SHAP explanation; the log is then anchored on chain. Each person gets a receipt
    they can check offline with `ailedger decision verify`. Run it while the node is
    stopped (the node holds the audit log while it runs)."""
    from ailedger.ai.serving import dump_receipt, read_inputs
    from ailedger.ai.serving import serve as serve_decisions
    from ailedger.errors import ConfigError
    from ailedger.sharing.owner import OwnerNode

    if receipts.exists():
        raise ConfigError(f"{receipts} already exists; give a new directory for the receipts")
    rows = read_inputs(inputs)
    with session(ctx, unlock=True) as s, OwnerNode(s) as node:
        served = serve_decisions(s, node, model_dir, bundle, public_key.read_bytes(), rows)
    receipts.mkdir(parents=True)
    paths = []
    for receipt in served.receipts:
        path = receipts / f"decision-{receipt['index']}.json"
        path.write_text(dump_receipt(receipt))
        paths.append(str(path))
    data = {
        "passport": served.passport,
        "decisions": [
            {"index": r["index"], "receipt": p} for r, p in zip(served.receipts, paths, strict=True)
        ],
        "anchored": list(served.anchored) if served.anchored else None,
    }

    def render() -> None:
        for r, p in zip(served.receipts, paths, strict=True):
            console.print(f"decision {r['index']} recorded; receipt {p}")
        if served.anchored:
            console.print(
                f"audit log anchored at size {served.anchored[0]}  tx {served.anchored[1]}"
            )

    emit(as_json, data, render)


decision_app = typer.Typer(
    help="Decision receipts: check that a decision about you is recorded, as it was made."
)


@decision_app.command("verify")
def verify_decision(
    ctx: typer.Context,
    receipt: Path = typer.Argument(..., help="The receipt you were given (JSON)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Check a decision receipt offline: the entry is in the deciding node's audit log
    under a checkpoint it signed and anchored on chain, its explanation adds up to its
    output, and your input (with your salt) gives the digest it recorded. Only the
    chain is read; the node is not asked. Exits 1 if any check fails."""
    from ailedger.ai.serving import verify_receipt_file

    document = _read_receipt(receipt)
    with session(ctx, unlock=False) as s:
        check = verify_receipt_file(s, document)
    data = {
        "ok": check.ok,
        "index": check.index,
        "anchored": check.anchored,
        "input_matched": check.input_matched,
        "problems": check.problems,
    }

    def render() -> None:
        if check.ok:
            anchored = "anchored on chain" if check.anchored else "NOT yet anchored"
            console.print(
                f"decision {check.index} verified: in the log, {anchored}, explanation adds "
                f"up, your input {'matches' if check.input_matched else 'was not checked'}"
            )
        for problem in check.problems:
            console.print(f"[bold red]FAILED[/bold red] {problem}")

    emit(as_json, data, render)
    if not check.ok:
        raise typer.Exit(1)


@decision_app.command("replay")
def replay(
    ctx: typer.Context,
    receipt: Path = typer.Argument(..., help="The decision's receipt (JSON)."),
    model_dir: Path = typer.Option(..., "--model", help="The model's directory."),
    bundle: Path = typer.Option(..., help="Its passport bundle."),
    public_key: Path = typer.Option(..., help="The passport's public key (PEM)."),
    features: Path = typer.Option(
        None, help="The input as a JSON object, if the receipt does not carry it."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """For an auditor: check the receipt against the chain, then re-run the decision
    with the model and the person's input and compare the output and every number of
    the explanation with what was logged. The model's files must carry the passport the
    decision names, and the input must be the one whose salted digest was logged.
    Exits 1 if anything differs."""
    from ailedger.ai.replay import replay_decision
    from ailedger.ai.serving import read_inputs, verify_receipt_file

    document = _read_receipt(receipt)
    given = None
    if features is not None:
        rows = read_inputs(features)
        if len(rows) != 1:
            raise typer.BadParameter(f"{features} holds {len(rows)} inputs; give one")
        given = rows[0]
    with session(ctx, unlock=False) as s:
        check = verify_receipt_file(s, document)
    replayed = replay_decision(document, model_dir, bundle, public_key.read_bytes(), given)
    problems = [f"receipt {p}" for p in check.problems] + replayed.problems
    data = {
        "ok": check.ok and replayed.ok,
        "index": replayed.index,
        "anchored": check.anchored,
        "logged_output": replayed.logged_output,
        "replayed_output": replayed.replayed_output,
        "problems": problems,
        "notes": replayed.notes,
    }

    def render() -> None:
        if data["ok"]:
            console.print(
                f"decision {replayed.index} replayed: output {replayed.replayed_output:.6g} "
                "and its explanation are what was logged, by the model its passport names, "
                "on this input"
            )
        for note in replayed.notes:
            console.print(f"note: {note}")
        for problem in problems:
            console.print(f"[bold red]FAILED[/bold red] {problem}")

    emit(as_json, data, render)
    if not data["ok"]:
        raise typer.Exit(1)


def _read_receipt(path: Path) -> dict[str, Any]:
    from ailedger.errors import ConfigError
    from ailedger.untrusted_json import parse_untrusted

    try:
        document = parse_untrusted(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the receipt {path}: {exc}") from None
    if not isinstance(document, dict):
        raise ConfigError(f"{path} is not a decision receipt (a JSON object)")
    return document


@decision_app.command("redact")
def redact(
    ctx: typer.Context,
    index: int = typer.Argument(..., min=0, help="The decision's audit entry index."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Redact a decision this home made: destroy its salt, so its input can no longer be
    linked to it. The leaf stays in the log (the log is never rewritten), and redaction
    is refused until the retention period has passed: AILEDGER_DECISION_RETENTION_DAYS,
    183 days (six months) unless set longer."""
    import time

    from ailedger.ai.salts import SaltStore, retention_seconds
    from ailedger.ai.serving import DECISION_SALTS

    retention = retention_seconds(settings_from(ctx).decision_retention_days)
    with session(ctx, unlock=False) as s:
        salts = SaltStore(s.home.path / DECISION_SALTS)
        try:
            salts.redact(index, int(time.time()), retention)
        finally:
            salts.close()
    emit(
        as_json,
        {"index": index, "redacted": True},
        lambda: console.print(f"decision {index} redacted: its salt is destroyed, its leaf stays"),
    )


@decision_app.command("export")
def export(
    ctx: typer.Context,
    start: int = typer.Option(0, min=0, help="First audit entry index."),
    stop: int = typer.Option(None, min=1, help="One past the last index [default: the whole log]."),
    out: Path = typer.Option(..., "-o", "--out", help="Where to write the signed export."),
    as_json: bool = JSON_OPTION,
) -> None:
    """A signed export of this home's decisions for a regulator: the entries as logged,
    the checkpoint covering them and each inclusion proof, signed with the audit key
    (never a salt or an input). Run it while the node is stopped."""
    from ailedger.ai.decision_export import export_decisions
    from ailedger.ai.salts import SaltStore
    from ailedger.ai.serving import DECISION_SALTS
    from ailedger.errors import ConfigError
    from ailedger.sharing.owner import OwnerNode, audit_signing_key

    if out.exists():
        raise ConfigError(f"{out} already exists; choose a new path")
    with session(ctx, unlock=True) as s, OwnerNode(s) as node:
        salts = SaltStore(s.home.path / DECISION_SALTS)
        try:
            end = stop if stop is not None else node.audit.size
            data = export_decisions(node.audit, salts, start, end, audit_signing_key(s))
        finally:
            salts.close()
    out.write_bytes(data)
    emit(
        as_json,
        {"path": str(out), "start": start, "stop": end, "bytes": len(data)},
        lambda: console.print(f"decisions of entries {start}..{end} exported, signed, to {out}"),
    )


@decision_app.command("check-export")
def check_export(
    ctx: typer.Context,
    export_file: Path = typer.Argument(..., help="The signed export."),
    node: str = typer.Option(..., help="The account of the node that made it (0x...)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Check a decision export against the node's audit key on chain: its signature, its
    checkpoint, every entry's inclusion and every explanation. Exits 1 if any fails."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from ailedger.ai.decision_export import verify_export
    from ailedger.errors import ConfigError

    address = parse.address(node)
    with session(ctx, unlock=False) as s:
        raw = s.audit_anchor.checkpoint_key(address)
    if not raw:
        raise ConfigError(f"{address} has bound no audit key on chain: nothing to check against")
    entries = verify_export(export_file.read_bytes(), Ed25519PublicKey.from_public_bytes(raw))
    emit(
        as_json,
        {"ok": True, "decisions": len(entries)},
        lambda: console.print(f"export verified: {len(entries)} decisions, each proved in the log"),
    )

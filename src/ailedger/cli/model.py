"""``ailedger model``: register a trained model with a signed passport, verify one end
to end, show and list registered models."""

from __future__ import annotations

from pathlib import Path

import typer

from ailedger.cli import _parsers as parse
from ailedger.cli._common import JSON_OPTION, console, emit, session, tx_line

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

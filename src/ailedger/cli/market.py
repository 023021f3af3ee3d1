"""``ailedger market``: sell and buy models (a licence, or predictions) and algorithms."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from ailedger.cli import _parsers as parse
from ailedger.cli._common import JSON_OPTION, console, emit, session, tx_line

app = typer.Typer(
    help=(
        "A market for models and algorithms. Sell a registered model's files under a "
        "licence (per period, per number of uses), or its predictions (the files stay at "
        "your node; each prediction is a decision receipt), or a job bundle. Buyers pay "
        "through the data market: escrow, purpose-bound grants, the owner's audit log."
    ),
    no_args_is_help=True,
)

PURPOSE_HELP = (
    "rare-disease-research, model-training, public-health, clinical-care, commercial-development"
)
GRANT = parse.uint256_argument("The grant id (`market buy` prints it).")


def _policy(purpose: list[str], price: str, duration: str, uses: int, approval: bool) -> Any:
    from ailedger.chain.contracts.data_market import Policy, purpose_mask
    from ailedger.units import parse_amount

    return Policy(
        purpose_mask(purpose),
        approval,
        parse_amount(price),
        parse.duration(duration),
        parse.max_reads(uses),
    )


def _listed(what: str, published: Any, as_json: bool) -> None:
    data = {
        "offer": "0x" + published.dataset_id.hex(),
        "size": published.size,
        "tx": published.tx_hash,
        "block": published.block,
    }
    line = f"{what} listed as offer {data['offer']}"
    emit(as_json, data, lambda: tx_line(line, published.tx_hash, published.block))


@app.command("sell-model")
def sell_model(
    ctx: typer.Context,
    model_dir: Path = typer.Argument(..., help="The registered model's directory."),
    bundle: Path = typer.Option(..., help="Its passport bundle (`model register` prints it)."),
    public_key: Path = typer.Option(..., help="Your passport public key (PEM)."),
    title: str = typer.Option(..., help="Title shown to buyers."),
    description: str = typer.Option("", help="Free text for buyers."),
    predictions: bool = typer.Option(
        False,
        "--predictions/--licence",
        help="Sell predictions served by your node (the files never leave it), or the files.",
    ),
    purpose: list[str] = typer.Option(
        ..., help=f"A use the buyer may make; repeat. One of {PURPOSE_HELP}."
    ),
    price: str = typer.Option("0", help="Price in AIL per grant (for --predictions: per pack)."),
    duration: str = typer.Option("30d", help="How long a grant lasts (90s, 30m, 12h, 30d)."),
    uses: int = typer.Option(
        0,
        min=0,
        max=parse.MAX_READS,
        help="Uses per grant: fetches of the files, or predictions (required for "
        "--predictions); 0 = unlimited fetches.",
    ),
    approval: bool = typer.Option(
        False, "--approval/--auto", help="Approve each buyer (their payment waits in escrow)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """List a model version you registered. Its passport is verified over the files
    first; buyers check on chain that the version is yours and current before paying."""
    from ailedger.ai.market import sell_model as sell

    policy = _policy(purpose, price, duration, uses, approval)
    pem = public_key.read_bytes()
    with session(ctx, unlock=True) as s:
        published = sell(
            s,
            model_dir,
            bundle,
            pem,
            policy,
            predictions=predictions,
            title=title,
            description=description,
        )
    kind = "predictions of the model" if predictions else "a licence of the model"
    _listed(f"{kind} {title!r}", published, as_json)


@app.command("sell-algorithm")
def sell_algorithm(
    ctx: typer.Context,
    bundle_dir: Path = typer.Argument(..., help="The job bundle's directory (with job.toml)."),
    title: str = typer.Option(..., help="Title shown to buyers."),
    description: str = typer.Option("", help="Free text for buyers."),
    purpose: list[str] = typer.Option(
        ..., help=f"A use the buyer may make; repeat. One of {PURPOSE_HELP}."
    ),
    price: str = typer.Option("0", help="Price in AIL per grant."),
    duration: str = typer.Option("30d", help="How long a grant lasts (90s, 30m, 12h, 30d)."),
    uses: int = typer.Option(0, min=0, max=parse.MAX_READS, help="Fetches per grant; 0 = any."),
    approval: bool = typer.Option(
        False, "--approval/--auto", help="Approve each buyer (their payment waits in escrow)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """List a job bundle (an algorithm); buyers fetch it and run it with `job submit`."""
    from ailedger.ai.market import sell_algorithm as sell

    policy = _policy(purpose, price, duration, uses, approval)
    with session(ctx, unlock=True) as s:
        published = sell(s, bundle_dir, policy, title=title, description=description)
    _listed(f"algorithm {title!r}", published, as_json)


@app.command("list")
def list_(
    ctx: typer.Context,
    kind: str = typer.Option("", help="Only model-licence, model-predictions or algorithm."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Every model and algorithm on offer, each with what the chain confirms of it."""
    from ailedger.ai.offers import KINDS, find_offers
    from ailedger.errors import ConfigError
    from ailedger.units import format_amount

    if kind and kind not in KINDS:
        raise ConfigError(f"--kind must be one of {', '.join(KINDS)}, not {kind!r}")
    with session(ctx, unlock=False) as s:
        offers = find_offers(s, kind=kind)
    rows = [o.as_json() for o in offers]

    def render() -> None:
        from rich.markup import escape

        if not offers:
            console.print("no models or algorithms on offer")
        for o in offers:
            uses = f", {o.max_uses} uses" if o.max_uses else ""
            what = f"model {o.model} version {o.version}" if o.model else f"bundle {o.bundle}"
            trust = "confirmed on chain" if o.trusted else "REFUSED: " + "; ".join(o.problems)
            console.print(f"{o.offer_id}  {o.kind}  {escape(repr(o.title))}")
            console.print(
                f"  {what}; {format_amount(o.price)} per {_days(o.duration)}{uses}; {escape(trust)}"
            )

    emit(as_json, {"offers": rows}, render)


def _days(seconds: int) -> str:
    if seconds % 86400 == 0:
        return f"{seconds // 86400} d"
    return f"{seconds // 3600} h" if seconds % 3600 == 0 else f"{seconds} s"


@app.command("buy")
def buy(
    ctx: typer.Context,
    offer: str = typer.Argument(..., help="The offer id (0x..., `market list` shows them)."),
    purpose: str = typer.Option(..., help=f"Your use: one of the offer's ({PURPOSE_HELP})."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Pay for a grant of an offer; refused before paying if its claims do not hold on
    chain (a model that is not the seller's, or retired)."""
    from ailedger.ai.market import buy as buy_offer

    offer_id = parse.hex32(offer, "offer id")
    with session(ctx, unlock=True) as s:
        bought, grant, status = buy_offer(s, offer_id, purpose)
    data = {"offer": bought.offer_id, "kind": bought.kind, "grant": grant, "status": status}
    then = (
        f"`ailedger market predict {grant} INPUTS`"
        if bought.kind == "model-predictions"
        else f"`ailedger market fetch {grant} DIR`"
    )
    emit(as_json, data, lambda: console.print(f"grant {grant} ({status}); next: {then}"))


@app.command("fetch")
def fetch(
    ctx: typer.Context,
    grant: int = GRANT,
    dest: Path = typer.Argument(..., help="A new directory to put it in."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Fetch a bought model or algorithm, and keep it only if it is what the offer
    claims (the model's passport verifies and is the offer's; the bundle's hash is)."""
    from ailedger.ai.market import fetch_offer

    with session(ctx, unlock=True) as s:
        got = fetch_offer(s, grant, dest)
    data = {"kind": got.kind, "path": str(got.path), "passport": got.passport, "bundle": got.bundle}
    proof = f"passport {got.passport}" if got.passport else f"bundle {got.bundle}"
    emit(as_json, data, lambda: console.print(f"{got.kind} in {got.path}: {proof} verified"))


@app.command("predict")
def predict(
    ctx: typer.Context,
    grant: int = GRANT,
    inputs: Path = typer.Argument(..., help="JSON object, list of objects, or JSON lines."),
    receipts: Path = typer.Option(
        None, help="Directory for the receipts (one JSON file each); default: not kept."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Ask the model's owner for predictions under a predictions grant. Each answer
    comes with a decision receipt, checked here against the chain before it is shown."""
    from ailedger.ai.market import predict as ask
    from ailedger.ai.serving import dump_receipt, read_inputs

    rows = read_inputs(inputs)
    with session(ctx, unlock=True) as s:
        answer = ask(s, grant, rows)
    written = []
    if receipts is not None:
        receipts.mkdir(parents=True, exist_ok=True)
        for receipt in answer["receipts"]:
            path = receipts / f"decision-{receipt['index']}.json"
            path.write_text(dump_receipt(receipt))
            written.append(str(path))
    data = {
        "outputs": answer["outputs"],
        "uses_left": answer.get("uses_left"),
        "receipts": written,
        "passport": answer["passport"],
    }

    def render() -> None:
        for n, output in enumerate(answer["outputs"]):
            console.print(f"input {n}: {output:.4f} (receipt verified against the chain)")
        console.print(f"uses left under grant {grant}: {answer.get('uses_left')}")
        if written:
            console.print(f"receipts in {receipts}")

    emit(as_json, data, render)

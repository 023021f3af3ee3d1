"""``ailedger data``: publish, find, request, grant, revoke and fetch datasets."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from ailedger.cli import _parsers as parse
from ailedger.cli._common import JSON_OPTION, console, emit, session, tx_line

if TYPE_CHECKING:
    from ailedger.sharing.desk import Action

app = typer.Typer(help="Share data under your control: publish, find, request, grant, fetch.")

REQUEST_ID = parse.uint256_argument("The request id (`data requests` lists them).")
PURPOSE_HELP = (
    "rare-disease-research, model-training, public-health, clinical-care, commercial-development"
)


@app.command("publish")
def publish(
    ctx: typer.Context,
    path: Path = typer.Argument(..., help="File or directory to publish (encrypted here)."),
    title: str = typer.Option(..., help="Title shown in the catalog (no personal data)."),
    tag: list[str] = typer.Option([], help="Catalog tag; repeat for several."),
    description: str = typer.Option("", help="Free text for the catalog (no personal data)."),
    purpose: list[str] = typer.Option(..., help=f"Allowed purpose; repeat. One of {PURPOSE_HELP}."),
    price: str = typer.Option("0", help="Price in AIL per grant."),
    duration: str = typer.Option("30d", help="How long a grant lasts (90s, 30m, 12h, 30d)."),
    max_reads: int = typer.Option(
        0, min=0, max=parse.MAX_READS, help="Reads allowed per grant; 0 = unlimited."
    ),
    approval: bool = typer.Option(
        True, "--approval/--auto", help="Approve each request yourself, or grant on payment."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Encrypt a file or directory at this node and register it on chain. Only the id,
    the ciphertext hash, the metadata hash, the policy and the price go on chain."""
    from rich.progress import Progress

    from ailedger.chain.contracts.data_market import Policy, purpose_mask
    from ailedger.errors import ConfigError
    from ailedger.sharing.desk import catalog_metadata
    from ailedger.sharing.owner import publish as publish_dataset
    from ailedger.units import parse_amount

    # Every option is checked before the file is read: a refusal costs nothing.
    policy = Policy(
        purpose_mask(purpose),
        approval,
        parse_amount(price),
        parse.duration(duration),
        parse.max_reads(max_reads),
    )
    if not path.exists():
        raise ConfigError(f"{path} does not exist; give a file or a directory to publish")
    metadata = catalog_metadata(title, tag, description)
    total = _size_of(path)
    with (
        session(ctx, unlock=True) as s,
        Progress(console=console, transient=True, disable=as_json) as bar,
    ):
        task = bar.add_task("encrypting", total=total or None)
        published = publish_dataset(
            s, path, policy, metadata, lambda done: bar.update(task, completed=done)
        )
    data = {
        "dataset": "0x" + published.dataset_id.hex(),
        "ciphertext_sha256": published.ciphertext_hash,
        "size": published.size,
        "tx": published.tx_hash,
        "block": published.block,
    }
    emit(
        as_json,
        data,
        lambda: tx_line(
            f"published {title!r} as dataset {data['dataset']} ({published.size} bytes encrypted)",
            published.tx_hash,
            published.block,
        ),
    )


@app.command("list")
def list_(
    ctx: typer.Context,
    search: str = typer.Option("", help="Text to find in titles and tags."),
    tag: str = typer.Option("", help="Only datasets with this tag."),
    purpose: str = typer.Option("", help=f"Only datasets allowing this purpose ({PURPOSE_HELP})."),
    owner: str = typer.Option("", help="Only datasets of this owner address."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Search the datasets registered on chain (indexed locally from chain events)."""
    from ailedger.chain.contracts.data_market import purpose_bit, purpose_names
    from ailedger.sharing.desk import find_datasets
    from ailedger.units import format_amount

    if purpose:
        purpose_bit(purpose)  # an unknown purpose is refused before connecting
    owner_address = parse.address(owner) if owner else ""
    with session(ctx, unlock=False) as s:
        found = find_datasets(
            s, text=search, tag=tag, purpose=purpose, owner=owner_address, limit=None
        ).items
    rows: list[dict[str, Any]] = [
        {
            "dataset": e.dataset_id,
            "title": e.title,
            "tags": e.tags,
            "owner": e.owner,
            "purposes": purpose_names(e.purposes),
            "price_base_units": str(e.price),
            "needs_approval": e.needs_approval,
            "max_reads": e.max_reads,
        }
        for e in found
    ]

    def render() -> None:
        if not rows:
            console.print("no datasets match")
        for row, entry in zip(rows, found, strict=True):
            console.print(f"{row['dataset']}  {row['title']}")
            console.print(
                f"  owner {row['owner']}  price {format_amount(entry.price)}  "
                f"purposes {', '.join(row['purposes'])}  tags {', '.join(row['tags'])}"
            )

    emit(as_json, {"datasets": rows}, render)


@app.command("request")
def request(
    ctx: typer.Context,
    dataset: str = typer.Argument(..., help="Dataset id (0x...)."),
    purpose: str = typer.Option(..., help=f"Why you need it: one of {PURPOSE_HELP}."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Request access for one purpose, paying the price into escrow (or to the owner at
    once when the dataset grants automatically). Prints the request id."""
    from ailedger.chain.contracts.data_market import purpose_bit
    from ailedger.sharing.desk import ask_access

    dataset_id = parse.dataset_id(dataset)
    purpose_bit(purpose)  # an unknown purpose is refused before connecting
    with session(ctx, unlock=True) as s:
        made = ask_access(s, dataset_id, purpose)
    request_id, status, tx_hash = made.request_id, made.status, made.tx_hash
    emit(
        as_json,
        {"request": request_id, "status": status, "tx": tx_hash},
        lambda: console.print(f"request {request_id} is {status}\n  tx {tx_hash}"),
    )


def _owner_decision(ctx: typer.Context, request_id: int, action: Action, as_json: bool) -> None:
    # Only the transaction: the owner's running node logs the decision in its audit log
    # when it sees the event on chain.
    from ailedger.sharing.desk import decide

    with session(ctx, unlock=True) as s:
        result = decide(s, request_id, action)
    emit(
        as_json,
        {"request": request_id, "action": action, "tx": result.tx_hash},
        lambda: tx_line(f"{action} request {request_id}: done", result.tx_hash, result.block),
    )


@app.command("grant")
def grant(ctx: typer.Context, request_id: int = REQUEST_ID, as_json: bool = JSON_OPTION) -> None:
    """Approve a pending request to one of your datasets (releases the escrow to you)."""
    _owner_decision(ctx, request_id, "grant", as_json)


@app.command("deny")
def deny(ctx: typer.Context, request_id: int = REQUEST_ID, as_json: bool = JSON_OPTION) -> None:
    """Refuse a pending request; the requester's payment is refunded."""
    _owner_decision(ctx, request_id, "deny", as_json)


@app.command("revoke")
def revoke(ctx: typer.Context, request_id: int = REQUEST_ID, as_json: bool = JSON_OPTION) -> None:
    """Withdraw a grant: the next read under it is refused."""
    _owner_decision(ctx, request_id, "revoke", as_json)


@app.command("requests")
def requests(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """List requests to your datasets and requests you made, with their status."""
    from ailedger.sharing.catalog import Catalog

    with session(ctx, unlock=False) as s:
        catalog = Catalog(s.database)
        catalog.sync(s)
        mine = catalog.requests(owner=s.address)
        made = catalog.requests(requester=s.address)

    def render() -> None:
        for title, rows in (("to your datasets", mine), ("made by you", made)):
            console.print(f"requests {title}:" + ("" if rows else " none"))
            for r in rows:
                console.print(
                    f"  {r['request_id']:>4} {r['status']:<9} {r['dataset_id']} by {r['requester']}"
                )

    emit(as_json, {"to_my_datasets": mine, "made_by_me": made}, render)


@app.command("fetch")
def fetch(
    ctx: typer.Context,
    dataset: str = typer.Argument(..., help="Dataset id (0x...)."),
    grant_id: int = parse.uint256_option("--grant", "Your granted request id."),
    out: Path = typer.Option(..., "-o", "--out", help="Where to write the decrypted data."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Download from the owner's gateway, check the hash registered on chain, decrypt."""
    from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

    from ailedger.sharing.requester import fetch as fetch_dataset

    dataset_id = parse.dataset_id(dataset)
    with (
        session(ctx, unlock=True) as s,
        Progress(
            *Progress.get_default_columns(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=console,
            transient=True,
            disable=as_json,
        ) as bar,
    ):
        task = bar.add_task("downloading", total=None)
        got = fetch_dataset(
            s,
            dataset_id,
            grant_id,
            out,
            lambda done, total: bar.update(task, completed=done, total=total or None),
        )
    data = {
        "path": str(got.path),
        "size": got.size,
        "directory": got.is_directory,
        "audit_index": got.audit_index,
    }
    emit(
        as_json,
        data,
        lambda: console.print(
            f"fetched {got.size} bytes to {got.path} (verified against the chain); "
            f"the owner logged this read as audit entry {got.audit_index}"
        ),
    )


@app.command("receipt")
def receipt(
    ctx: typer.Context,
    dataset: str = typer.Argument(..., help="Dataset id (0x...)."),
    index: int = parse.uint256_argument("Audit entry index printed by `data fetch`."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Check that the owner's audit log holds your access: the gateway proves the entry
    is included under a signed checkpoint, and it must match what you were told."""
    from ailedger.sharing.requester import check_receipt, kept_receipt

    dataset_id = parse.dataset_id(dataset)
    with session(ctx, unlock=False) as s:
        kept = kept_receipt(s, dataset_id, index)
        entry = check_receipt(s, dataset_id, index, kept["entry"] if kept else None)
    emit(
        as_json,
        {"index": index, "entry": entry, "proved": True, "matches_fetch": kept is not None},
        lambda: console.print(
            f"audit entry {index} is in the owner's log (inclusion proved"
            f"{', same as at fetch time' if kept else ''}): {entry}"
        ),
    )


@app.command("show")
def show(
    ctx: typer.Context,
    dataset: str = typer.Argument(..., help="Dataset id (0x...)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Show one dataset: owner, policy, price, and its verified catalog metadata."""
    from ailedger.chain.contracts.data_market import purpose_names
    from ailedger.sharing.desk import dataset_detail
    from ailedger.units import format_amount

    dataset_id = parse.dataset_id(dataset)
    with session(ctx, unlock=False) as s:
        entry = dataset_detail(s, dataset_id)
    data = {
        "dataset": entry.dataset_id,
        "title": entry.title,
        "tags": entry.tags,
        "description": (entry.metadata or {}).get("description", ""),
        "owner": entry.owner,
        "purposes": purpose_names(entry.purposes),
        "price_base_units": str(entry.price),
        "needs_approval": entry.needs_approval,
        "duration_s": entry.duration,
        "max_reads": entry.max_reads,
        "retired": entry.retired,
    }

    def render() -> None:
        console.print(f"{entry.dataset_id}  {entry.title}")
        console.print(f"  owner      {entry.owner}")
        console.print(f"  purposes   {', '.join(data['purposes'])}")
        console.print(
            f"  price      {format_amount(entry.price)} per grant, "
            f"{'owner approval' if entry.needs_approval else 'granted on payment'}"
        )
        console.print(f"  grant      {entry.duration} s, {entry.max_reads or 'unlimited'} reads")
        console.print(f"  tags       {', '.join(entry.tags)}")

    emit(as_json, data, render)


def _size_of(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size if path.exists() else 0


@app.command("allow-algorithm")
def allow_algorithm(
    ctx: typer.Context,
    dataset: str = typer.Argument(..., help="Your dataset id (0x...)."),
    bundle_hash: str = typer.Argument(..., help="The job bundle's hash (`job check` prints it)."),
    revoke: bool = typer.Option(False, "--revoke", help="Take the permission back."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Let jobs with exactly this code run over your dataset at your node (compute-to-data).
    Review the bundle first: the hash pins every byte of it."""
    dataset_id, algorithm = parse.dataset_id(dataset), parse.bundle_hash(bundle_hash)
    with session(ctx, unlock=True) as s:
        tx = s.compute_policy.allow_algorithm(dataset_id, algorithm, not revoke)
    what = "no longer allowed" if revoke else "allowed"
    emit(
        as_json,
        {"dataset": dataset, "bundle_hash": bundle_hash, "allowed": not revoke, "tx": tx.tx_hash},
        lambda: tx_line(
            f"algorithm {bundle_hash[:18]}… {what} on {dataset[:18]}…", tx.tx_hash, tx.block_number
        ),
    )


@app.command("allow-host")
def allow_host(
    ctx: typer.Context,
    dataset: str = typer.Argument(..., help="Your dataset id (0x...)."),
    provider: str = typer.Argument(..., help="Provider account that may run its jobs."),
    revoke: bool = typer.Option(False, "--revoke", help="Take the permission back."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Let a provider you trust (besides your own node) host compute jobs over the dataset."""
    dataset_id, host = parse.dataset_id(dataset), parse.address(provider)
    with session(ctx, unlock=True) as s:
        tx = s.compute_policy.allow_provider(dataset_id, host, not revoke)
    emit(
        as_json,
        {"dataset": dataset, "provider": provider, "allowed": not revoke, "tx": tx.tx_hash},
        lambda: tx_line(
            f"host {provider} {'removed' if revoke else 'allowed'}", tx.tx_hash, tx.block_number
        ),
    )


@app.command("output-policy")
def output_policy(
    ctx: typer.Context,
    dataset: str = typer.Argument(..., help="Dataset id (0x...)."),
    max_bytes: int = typer.Option(None, help="Largest output released, in bytes (set: 1..1 GiB)."),
    aggregate_only: bool = typer.Option(
        None,
        "--aggregate-only/--any-output",
        help="Release only the counts and statistics a job declares in its job.toml.",
    ),
    min_cell_size: int = typer.Option(
        None,
        help="Aggregates only: suppress every count below this many records, and the "
        "statistics of its cell (set: 1..1000000).",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Show what compute-to-data jobs may release from the dataset; with options, change it
    (your dataset only). Unset: 1 MiB, aggregates only, cells of at least 10. Compute-to-data
    releases are never differentially private."""
    import dataclasses

    from ailedger.chain.contracts import OutputPolicy
    from ailedger.compute.outputs import NOT_PRIVATE

    changing = max_bytes is not None or aggregate_only is not None or min_cell_size is not None
    dataset_id = parse.dataset_id(dataset)
    with session(ctx, unlock=changing) as s:
        policy_client = s.compute_policy
        current: OutputPolicy = policy_client.output_policy(dataset_id)
        tx = None
        if changing:
            updates: dict[str, Any] = {}
            if max_bytes is not None:
                updates["max_output_bytes"] = max_bytes
            if aggregate_only is not None:
                updates["aggregate_only"] = aggregate_only
            if min_cell_size is not None:
                updates["min_cell_size"] = min_cell_size
            current = dataclasses.replace(current, **updates)
            tx = policy_client.set_output_policy(dataset_id, current)
    data = {
        "dataset": dataset,
        "max_output_bytes": current.max_output_bytes,
        "aggregate_only": current.aggregate_only,
        "min_cell_size": current.min_cell_size,
        "differentially_private": False,
        "privacy": NOT_PRIVATE,
        "tx": tx.tx_hash if tx else None,
    }

    def render() -> None:
        if current.aggregate_only:
            shape = f"declared aggregates only, cells of at least {current.min_cell_size}"
        else:
            shape = "any output (no cell-size check)"
        console.print(f"{dataset}: up to {current.max_output_bytes} bytes, {shape}")
        console.print(f"  {NOT_PRIVATE}")
        if tx:
            console.print(f"  tx {tx.tx_hash}")

    emit(as_json, data, render)

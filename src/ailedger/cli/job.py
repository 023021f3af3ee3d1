"""``ailedger job``: run code on other people's machines, paid from escrow when it checks out."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from ailedger.cli import _parsers as parse
from ailedger.cli._common import JSON_OPTION, console, emit, session, tx_line

app = typer.Typer(
    help="Compute jobs: check a bundle, submit it to the market, follow it, get the result. "
    "Your node (ailedger node start) must run while a job does: providers fetch the bundle "
    "from it and send logs and the encrypted output back to it."
)

JOB_ID = parse.uint256_argument("The job id printed by `job submit`.")


@app.command("check")
def check(
    bundle: Path = typer.Argument(..., help="Job bundle directory with job.toml and code."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Validate job.toml and the bundle (every field, the entry point, no links), and
    print the bundle hash that goes on chain and the most the job can cost."""
    from ailedger.compute.requester.job import check_bundle
    from ailedger.units import format_amount

    checked = check_bundle(bundle)
    data = {
        "bundle_hash": "0x" + checked.bundle_hash.hex(),
        "entry": checked.entry,
        "runtime": checked.runtime,
        "inputs": list(checked.inputs),
        "redundancy": checked.redundancy,
        "deterministic": checked.deterministic,
        "max_cost_base_units": str(checked.max_cost),
        "output": None
        if checked.output is None
        else {
            "counts": sorted(checked.output.counts),
            "statistics": dict(checked.output.statistics),
        },
    }

    def render() -> None:
        console.print(
            f"job bundle OK: {checked.entry} on {checked.runtime}, k = {checked.redundancy}; "
            f"hash 0x{checked.bundle_hash.hex()}; at most {format_amount(checked.max_cost)} "
            "in escrow"
        )
        if checked.output is None:
            console.print("  declares no [output]: aggregate-only datasets release nothing")
            return
        console.print(
            f"  may release {len(checked.output.counts)} counts and "
            f"{len(checked.output.statistics)} statistics (aggregate-only datasets):"
        )
        for count in sorted(checked.output.counts):
            console.print(f"    count      {count}", markup=False)
        for statistic, cell in checked.output.statistics:
            console.print(f"    statistic  {statistic}  (cell {cell})", markup=False)

    emit(as_json, data, render)


@app.command("submit")
def submit(
    ctx: typer.Context,
    bundle: Path = typer.Argument(..., help="Job bundle directory with job.toml and code."),
    purpose: str = typer.Option(
        "", help="Purpose of your data grant, for jobs that read datasets (e.g. research)."
    ),
    min_reputation: int = typer.Option(
        0,
        min=parse.MIN_REPUTATION,
        max=parse.MAX_REPUTATION,
        help="Least provider reputation to accept.",
    ),
    allow_unconfined: bool = typer.Option(
        False, help="Also accept providers that cannot sandbox jobs (declared on chain)."
    ),
    wait: float = typer.Option(
        30.0,
        min=0.0,
        max=parse.MAX_WAIT_S,
        help="Seconds to wait for k bids and close the auction (0: leave it open).",
    ),
    collect: float = typer.Option(
        0.0,
        min=0.0,
        max=parse.MAX_WAIT_S,
        help="Seconds to keep taking bids once k are in, for a cheaper pick (0: start now; "
        "the market's bid window, shown by `ailedger chain status`, takes every bid).",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Validate the bundle, escrow its maximum cost and post it; close the auction as soon
    as k eligible bids are in (--collect: a little later, for cheaper bids). Jobs that name
    datasets run at the data (compute-to-data)."""
    from ailedger.chain.contracts.data_market import purpose_bit
    from ailedger.compute.requester.job import submit as submit_job
    from ailedger.units import format_amount

    purpose_mask = purpose_bit(purpose) if purpose else 0
    with session(ctx, unlock=True) as s:
        done = submit_job(
            s,
            bundle,
            purpose=purpose_mask,
            min_reputation=min_reputation,
            require_confined=not allow_unconfined,
            wait_s=wait or None,
            collect_s=collect,
        )
    data = {
        "job_id": done.job_id,
        "bundle_hash": "0x" + done.bundle_hash.hex(),
        "escrow": str(done.escrow),
        "tx": done.tx_hash,
        "status": done.status.name.lower(),
        "providers": done.providers,
        "auction": done.outcome,
    }

    def render() -> None:
        console.print(f"job {done.job_id} posted, {format_amount(done.escrow)} in escrow")
        console.print(f"  tx {done.tx_hash}")
        if done.providers:
            console.print(f"  assigned to {', '.join(done.providers)}")
        elif done.outcome:
            console.print(f"  {done.outcome}")
        else:
            console.print(
                f"  status {done.status.name.lower()} (see: ailedger job status {done.job_id})"
            )

    emit(as_json, data, render)


@app.command("list")
def list_jobs(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """The jobs this home posted, newest first, with their state now."""
    from ailedger.compute.requester.job import my_jobs
    from ailedger.units import format_amount

    with session(ctx, unlock=False) as s:
        jobs = my_jobs(s)
    data = {
        "jobs": [
            {
                "job_id": j.job_id,
                "status": j.status.name.lower(),
                "escrow": str(j.escrow),
                "redundancy": j.redundancy,
                "deadline": j.deadline,
                "bundle_hash": "0x" + j.bundle_hash.hex(),
            }
            for j in jobs
        ]
    }

    def render() -> None:
        if not jobs:
            console.print("no jobs yet (ailedger job submit BUNDLE)")
        for j in jobs:
            console.print(
                f"job {j.job_id}  {j.status.name.lower():<10} k = {j.redundancy}  "
                f"escrow {format_amount(j.escrow)}"
            )

    emit(as_json, data, render)


@app.command("status")
def status(ctx: typer.Context, job_id: int = JOB_ID, as_json: bool = JSON_OPTION) -> None:
    """Where the job stands on chain (bids, assignments, commits, reveals, payments) and
    what your node received (log batches, outputs)."""
    from ailedger.compute.requester.job import status as job_status
    from ailedger.units import format_amount

    with session(ctx, unlock=False) as s:
        data = job_status(s, job_id)

    def render() -> None:
        console.print(f"job {job_id}: {data['status']} (k = {data['redundancy']})")
        console.print(f"  escrow    {format_amount(data['escrow'])}")
        console.print(f"  bids      {data['bids']}")
        if data["auction"]:
            console.print(f"  auction   {data['auction']}")
        for a in data["assignments"]:
            step = "revealed" if a["revealed"] else "committed" if a["committed"] else "running"
            got = "output received" if a["output_received"] else "no output yet"
            console.print(
                f"  provider  {a['provider']}: {step}, {got}, paid {format_amount(a['paid'])}"
            )
        if data["result_hash"]:
            console.print(f"  result    {data['result_hash']}")
        console.print(f"  logs      {data['log_batches']} batches (ailedger job logs {job_id})")

    emit(as_json, {**data, "escrow": str(data["escrow"])}, render)


@app.command("logs")
def logs(
    ctx: typer.Context,
    job_id: int = JOB_ID,
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing until the job ends."),
    as_json: bool = typer.Option(
        False, "--json", help='One JSON object per line: {"provider": ..., "line": ...}.'
    ),
) -> None:
    """Print the job's output lines as the providers stream them (decrypted here)."""
    from ailedger.compute.requester.job import logs as job_logs

    seen = 0
    with session(ctx, unlock=True) as s:
        market = s.compute_market
        while True:
            batches = list(job_logs(s, job_id))
            for provider, text in batches[seen:]:
                for line in text.splitlines():
                    if as_json:
                        print(json.dumps({"provider": provider, "line": line}), flush=True)
                    else:
                        console.print(f"[{provider[:10]}] {line}", markup=False)
            seen = len(batches)
            record = market.job(job_id)
            active = record is not None and record.status.running
            if not follow or not active:
                return
            time.sleep(0.5)


@app.command("result")
def result(
    ctx: typer.Context,
    job_id: int = JOB_ID,
    output: Path = typer.Option(..., "-o", "--output", help="New directory for the output."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Decrypt the job's output into OUTPUT, only if it hashes to the result on chain."""
    from ailedger.compute.requester.job import fetch_result

    with session(ctx, unlock=True) as s:
        digest, provider = fetch_result(s, job_id, output)
    emit(
        as_json,
        {
            "job_id": job_id,
            "output": str(output),
            "hash": "0x" + digest.hex(),
            "provider": provider,
        },
        lambda: console.print(
            f"job {job_id}: output 0x{digest.hex()[:16]}… from {provider} in {output}"
        ),
    )


def _accept(ctx: typer.Context, job_id: int, as_json: bool) -> None:
    from ailedger.compute.requester.job import accept as accept_job

    with session(ctx, unlock=True) as s:
        tx = accept_job(s, job_id)
    emit(
        as_json,
        {"job_id": job_id, "action": "accept", "tx": tx.tx_hash, "block": tx.block_number},
        lambda: tx_line(f"job {job_id}: accepted", tx.tx_hash, tx.block_number),
    )


def _dispute(ctx: typer.Context, job_id: int, as_json: bool) -> None:
    from ailedger.compute.requester.job import dispute as dispute_job
    from ailedger.units import format_amount

    with session(ctx, unlock=True) as s:
        bond, tx_hash = dispute_job(s, job_id)
    emit(
        as_json,
        {"job_id": job_id, "action": "dispute", "bond": bond, "tx": tx_hash},
        lambda: console.print(
            f"job {job_id}: disputed with a bond of {format_amount(bond)}; another provider "
            f"re-executes it (tx {tx_hash})"
        ),
    )


@app.command("accept")
def accept(ctx: typer.Context, job_id: int = JOB_ID, as_json: bool = JSON_OPTION) -> None:
    """Accept a single-provider result under review: the provider is paid now (silence
    accepts too, when the dispute window ends)."""
    _accept(ctx, job_id, as_json)


@app.command("dispute")
def dispute(ctx: typer.Context, job_id: int = JOB_ID, as_json: bool = JSON_OPTION) -> None:
    """Challenge a single-provider result under review, posting a bond (the job's max
    price x max hours): another staked provider re-executes the job. A different result
    slashes the provider and refunds you; the same result pays the provider, with your
    bond. Check it first with `job result`."""
    _dispute(ctx, job_id, as_json)


@app.command("cancel")
def cancel(ctx: typer.Context, job_id: int = JOB_ID, as_json: bool = JSON_OPTION) -> None:
    """Stop a job and get back what it did not use: an open job refunds in full, a running
    one pays its providers for the seconds they ran and refunds the rest, and a job past its
    deadline with no result is expired with a full refund."""
    from ailedger.compute.requester.job import cancel as cancel_job

    with session(ctx, unlock=True) as s:
        what, tx = cancel_job(s, job_id)
    emit(
        as_json,
        {"job_id": job_id, "action": what, "tx": tx},
        lambda: console.print(f"job {job_id}: {what}\n  tx {tx}"),
    )

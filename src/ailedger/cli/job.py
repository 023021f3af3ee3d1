"""``ailedger job``: compute jobs for the market (submission comes with the provider agent)."""

from __future__ import annotations

import math
from pathlib import Path

import typer

from ailedger.cli._common import JSON_OPTION, console, emit

app = typer.Typer(help="Prepare compute jobs: check a job bundle before anything is paid.")


@app.command("check")
def check(
    bundle: Path = typer.Argument(..., help="Job bundle directory with job.toml and code."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Validate job.toml and the bundle (every field, the entry point, no links), and
    print the bundle hash that goes on chain and the most the job can cost."""
    from ailedger.compute.jobs import bundle_hash, load_bundle
    from ailedger.units import format_amount

    spec = load_bundle(bundle)
    digest = bundle_hash(bundle)
    max_cost = spec.max_price_per_hour * math.ceil(spec.max_hours) * spec.redundancy
    data = {
        "bundle_hash": "0x" + digest.hex(),
        "entry": spec.entry,
        "runtime": spec.runtime,
        "inputs": list(spec.inputs),
        "redundancy": spec.redundancy,
        "deterministic": spec.deterministic,
        "max_cost_base_units": str(max_cost),
    }
    emit(
        as_json,
        data,
        lambda: console.print(
            f"job bundle OK: {spec.entry} on {spec.runtime}, k = {spec.redundancy}; "
            f"hash 0x{digest.hex()}; at most {format_amount(max_cost)} in escrow"
        ),
    )

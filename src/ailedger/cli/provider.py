"""``ailedger provider``: what this machine can offer to the compute market."""

from __future__ import annotations

import typer

from ailedger.cli._common import JSON_OPTION, console, emit

app = typer.Typer(help="Rent out this machine's spare CPUs and GPUs: inspect what it offers.")


@app.command("machine")
def machine(as_json: bool = JSON_OPTION) -> None:
    """Show the cores, memory and NVIDIA GPUs found here, and whether jobs can be
    confined (bubblewrap or unshare); an unconfined machine is declared so on chain."""
    from ailedger.compute.machine import detect_machine

    info = detect_machine()
    data = {
        "cpu_cores": info.cpu_cores,
        "ram_mb": info.ram_mb,
        "confinement": info.confinement,
        "gpus": [{"index": g.index, "name": g.name, "memory_mb": g.memory_mb} for g in info.gpus],
    }

    def render() -> None:
        console.print(f"cpu cores    {info.cpu_cores}")
        console.print(f"memory       {info.ram_mb} MB")
        gpus = ", ".join(f"{g.name} ({g.memory_mb} MB)" for g in info.gpus) or "none"
        console.print(f"gpus         {gpus}")
        console.print(f"confinement  {info.confinement or 'NONE: jobs would run unconfined'}")

    emit(as_json, data, render)

"""``ailedger provider``: what this machine can offer to the compute market."""

from __future__ import annotations

import shutil
from typing import Any

import typer

from ailedger.cli._common import (
    JSON_LINES_OPTION,
    JSON_OPTION,
    console,
    emit,
    narrator,
    session,
    tx_line,
)

app = typer.Typer(help="Rent out this machine's spare CPUs and GPUs for tokens.")


@app.command("machine")
def machine(as_json: bool = JSON_OPTION) -> None:
    """Show the cores, memory and NVIDIA GPUs found here, and whether jobs can be
    confined (bubblewrap or unshare); an unconfined machine is declared so on chain."""
    from ailedger.compute.provider.machine import detect_machine
    from ailedger.compute.provider.standing import machine_report

    info = detect_machine()
    data = machine_report(info)

    def render() -> None:
        console.print(f"cpu cores    {info.cpu_cores}")
        console.print(f"memory       {info.ram_mb} MB")
        gpus = ", ".join(f"{g.name} ({g.memory_mb} MB)" for g in info.gpus) or "none"
        console.print(f"gpus         {gpus}")
        console.print(f"confinement  {info.confinement or 'NONE: jobs would run unconfined'}")

    emit(as_json, data, render)


@app.command("status")
def status(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """This account as a provider: stake, reputation, the offer on chain, the jobs it
    ran, what it earned and any slashes."""
    from ailedger.compute.provider.standing import history, standing
    from ailedger.units import format_amount

    with session(ctx, unlock=False) as s:
        me, past = standing(s), history(s)
    offer = me.offer
    data = {
        "address": me.address,
        "registered": me.registered,
        "stake": str(me.stake),
        "min_stake": str(me.min_stake),
        "active_jobs": me.active_jobs,
        "reputation": me.reputation,
        "can_bid": me.can_bid,
        "offer": None
        if offer is None
        else {
            "cpu_cores": offer.cpu_cores,
            "ram_mb": offer.ram_mb,
            "gpu_model": offer.gpu_model,
            "gpu_mem_mb": offer.gpu_mem_mb,
            "price_per_hour": str(offer.price_per_hour),
            "confined": offer.confined,
        },
        "jobs_run": len(past.jobs),
        "earned": str(past.earned),
        "slashes": [
            {"job_id": x.job_id, "amount": str(x.amount), "reason": x.reason} for x in past.slashes
        ],
    }

    def render() -> None:
        if not me.registered:
            console.print(
                f"not a provider yet: stake at least {format_amount(me.min_stake)} "
                "(ailedger provider stake AMOUNT)"
            )
            return
        console.print(f"stake       {format_amount(me.stake)} (min {format_amount(me.min_stake)})")
        console.print(
            f"reputation  {me.reputation} (completed {me.completed}, failed {me.failed}, "
            f"slashed {me.slashed})"
        )
        if offer is None:
            console.print("offer       none (ailedger provider offer --price ...)")
        else:
            console.print(
                f"offer       {offer.cpu_cores} cores, {offer.ram_mb} MB"
                + (f", {offer.gpu_model}" if offer.gpu_model else "")
                + f" at {format_amount(offer.price_per_hour)} per hour"
                + ("" if offer.confined else ", UNCONFINED")
            )
        console.print(f"jobs run    {len(past.jobs)}, earned {format_amount(past.earned)}")
        for x in past.slashes:
            console.print(f"slashed     job {x.job_id}: {format_amount(x.amount)} ({x.reason})")

    emit(as_json, data, render)


@app.command("stake")
def stake(
    ctx: typer.Context,
    amount: str = typer.Argument(..., help="AIL to stake; the first stake registers you."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Stake AIL as a provider (the first stake registers this account)."""
    from ailedger.compute.provider.standing import add_stake
    from ailedger.units import format_amount, parse_amount

    value = parse_amount(amount)
    with session(ctx, unlock=True) as s:
        what, tx = add_stake(s, value)
    emit(
        as_json,
        {"action": what, "amount": str(value), "tx": tx.tx_hash, "block": tx.block_number},
        lambda: tx_line(f"{what}: {format_amount(value)} staked", tx.tx_hash, tx.block_number),
    )


@app.command("unstake")
def unstake(
    ctx: typer.Context,
    amount: str = typer.Argument(..., help="AIL to take back from the stake."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Withdraw stake; refused while unfinished jobs hold it locked."""
    from ailedger.compute.provider.standing import withdraw_stake
    from ailedger.units import format_amount, parse_amount

    value = parse_amount(amount)
    with session(ctx, unlock=True) as s:
        tx = withdraw_stake(s, value)
    emit(
        as_json,
        {"action": "withdrawn", "amount": str(value), "tx": tx.tx_hash, "block": tx.block_number},
        lambda: tx_line(f"withdrawn: {format_amount(value)}", tx.tx_hash, tx.block_number),
    )


@app.command("offer")
def offer(
    ctx: typer.Context,
    price: str = typer.Option(..., help="Asking price in AIL per hour of this machine."),
    cores: int = typer.Option(0, min=0, max=1 << 20, help="Cores to offer (0: all)."),
    ram_mb: int = typer.Option(0, min=0, max=1 << 40, help="Memory to offer in MB (0: all)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Post or change this machine's offer (no more than it has; its own confinement)."""
    from ailedger.compute.provider.standing import set_offer, this_machine
    from ailedger.units import format_amount, parse_amount

    value = parse_amount(price)
    with session(ctx, unlock=True) as s:
        terms = set_offer(s, this_machine(), value, cores or None, ram_mb or None)
    emit(
        as_json,
        {
            "cpu_cores": terms.cpu_cores,
            "ram_mb": terms.ram_mb,
            "gpu_model": terms.gpu_model,
            "gpu_mem_mb": terms.gpu_mem_mb,
            "price_per_hour": str(terms.price_per_hour),
            "confined": terms.confined,
        },
        lambda: console.print(
            f"offer posted: {terms.cpu_cores} cores, {terms.ram_mb} MB at "
            f"{format_amount(terms.price_per_hour)} per hour"
            + ("" if terms.confined else " (UNCONFINED, declared on chain)")
        ),
    )


def _runtimes(specs: list[str]) -> dict[str, Any]:
    from ailedger.compute.provider.sandbox import python_runtime
    from ailedger.errors import ConfigError

    runtimes = {"python": python_runtime()}
    for spec in specs:
        name, sep, interpreter = spec.partition("=")
        if not sep or not name or not interpreter:
            raise ConfigError(
                f"--runtime {spec!r}: expected NAME=PYTHON (e.g. torch=/opt/torch/bin/python)"
            )
        # Offered on chain and bid on: a runtime that cannot start would fail every job.
        if shutil.which(interpreter) is None:
            raise ConfigError(f"--runtime {spec!r}: {interpreter} is not an executable here")
        runtimes[name] = python_runtime(name, interpreter)
    return runtimes


@app.command("start")
def start(
    ctx: typer.Context,
    price: str = typer.Option("1", help="Asking price in AIL per hour of this machine."),
    stake: str = typer.Option(
        "100", help="Stake in AIL on first registration (locked while jobs run)."
    ),
    max_jobs: int = typer.Option(
        0, min=0, max=1024, help="Jobs run at once; 0 means one per 2 cores, at least 1."
    ),
    runtime: list[str] = typer.Option(
        [], help="Extra runtime NAME=PYTHON to offer (repeat); 'python' is always offered."
    ),
    allow_unconfined: bool = typer.Option(
        False,
        help="Run jobs even though this machine cannot sandbox them; the offer then says so "
        "on chain and requesters who require confinement will not pick it.",
    ),
    max_output_mb: int = typer.Option(
        1024,
        min=1,
        max=1024 * 1024,
        help="Largest job output kept and sent back, in MiB; bigger ones are withheld.",
    ),
    poll: float = typer.Option(
        0.02, min=0.001, max=60.0, help="Seconds between looks at the chain."
    ),
    as_json: bool = JSON_LINES_OPTION,
) -> None:
    """Rent this machine out until Ctrl-C: stake, post an offer, bid on jobs that fit, run
    them sandboxed, send results encrypted to their requesters and collect payment."""
    import threading

    from ailedger.compute.provider.agent import AgentSettings, ProviderAgent
    from ailedger.compute.provider.machine import detect_machine
    from ailedger.compute.provider.sandbox import Sandbox
    from ailedger.units import parse_amount

    price_per_hour, stake_amount = parse_amount(price), parse_amount(stake)
    info = detect_machine()
    sandbox = Sandbox(_runtimes(runtime), allow_unconfined=allow_unconfined)
    settings = AgentSettings(
        price_per_hour=price_per_hour,
        stake=stake_amount,
        max_jobs=max_jobs or max(1, info.cpu_cores // 2),
        poll_seconds=poll,
        max_output_mb=max_output_mb,
    )
    say = narrator(as_json)
    with session(ctx, unlock=True) as s:
        agent = ProviderAgent(s, sandbox, info, settings, say)
        for line in agent.prepare():
            say(line)
        say(
            f"provider {s.address}: watching the market, up to {settings.max_jobs} jobs at once "
            f"(runtimes: {', '.join(sorted(sandbox.runtimes))}; Ctrl-C stops)"
        )
        stop = threading.Event()
        try:
            agent.run(stop)
        except KeyboardInterrupt:
            stop.set()
            say(f"stopped; earned {agent.earned} base units this run")

"""``ailedger fl``: federated learning across institutions, on Flower's deployment engine.

The requester posts a task and escrows a reward pool (`fl post`); institutions join with
a dataset they own and the requester's grant for the task's purpose (`fl join`), then
train each round at their own node, which sends the update alone (`fl serve`); the
requester runs the rounds
(`fl run`), each anchored on chain, and the pool is paid out by measured contribution.
`fl result` shows what the job made, checks the model file against the anchored model,
and registers it with a passport naming every participant's dataset and grant.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from ailedger.cli import _parsers as parse
from ailedger.cli._common import JSON_LINES_OPTION, JSON_OPTION, console, emit, narrator, session

if TYPE_CHECKING:
    from ailedger.session import Session

app = typer.Typer(
    help=(
        "Federated learning: train one model where the data lives. Consent checked on "
        "chain every round, every round anchored, the reward paid by contribution."
    ),
    no_args_is_help=True,
)

JOB = parse.uint256_argument("The federated job id (`fl post` prints it).")
PURPOSE_HELP = (
    "rare-disease-research, model-training, public-health, clinical-care, commercial-development"
)


@app.command("post")
def post(
    ctx: typer.Context,
    task: Path = typer.Argument(..., help="The task (TOML: features, bounds, label, rule)."),
    validation: Path = typer.Option(
        ..., help="Validation set (CSV) contributions are scored on; its hash goes on chain."
    ),
    reward: str = typer.Option(..., help="The reward pool in AIL, escrowed now."),
    stake: str = typer.Option("0", help="What each institution stakes to join, in AIL."),
    rounds: int = typer.Option(3, min=1, max=1000, help="Training rounds."),
    min_participants: int = typer.Option(2, "--min", min=1, max=32, help="Institutions needed."),
    max_participants: int = typer.Option(8, "--max", min=1, max=32, help="At most so many."),
    purpose: str = typer.Option("model-training", help=f"The grants' purpose ({PURPOSE_HELP})."),
    join_window: str = typer.Option("1d", help="How long institutions may join (90s..30d)."),
    run_window: str = typer.Option("7d", help="Then how long the rounds may take."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Post a federated task and escrow its reward pool. The task and the validation
    set are committed by hash before anyone joins."""
    from ailedger.chain.contracts.data_market import purpose_bit
    from ailedger.federated.jobs import post_job
    from ailedger.units import parse_amount

    with session(ctx, unlock=True) as s:
        posted = post_job(
            s,
            task,
            validation,
            purpose=purpose_bit(purpose),
            rounds=rounds,
            min_participants=min_participants,
            max_participants=max_participants,
            reward=parse_amount(reward),
            stake=parse_amount(stake),
            join_window_s=parse.duration(join_window),
            run_window_s=parse.duration(run_window),
        )
    emit(
        as_json,
        {"job": posted.job_id, "tx": posted.tx_hash},
        lambda: console.print(f"federated job {posted.job_id} posted  tx {posted.tx_hash}"),
    )


@app.command("join")
def join(
    ctx: typer.Context,
    job: int = JOB,
    dataset: str = typer.Option(..., help="Your dataset (0x...), published on this node."),
    grant: int = typer.Option(..., min=0, help="The requester's grant of it for the purpose."),
    task: Path = typer.Option(
        None, help="The task file the requester sent: checked against the posted hash first."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Join a federated job with your dataset (stakes the job's stake). Your data stays
    at your node: `fl serve` trains each round there and sends the update alone. The
    chain holds only the task's hash: give --task to see what your data would train
    (features, label, privacy terms) and to refuse a file that is not the posted task."""
    from ailedger.federated.jobs import check_posted_task, join_job

    with session(ctx, unlock=True) as s:
        checked = check_posted_task(s, job, task) if task is not None else None
        tx = join_job(s, job, parse.dataset_id(dataset), grant)
    data = {"job": job, "tx": tx, "task": checked.as_json() if checked else None}

    def render() -> None:
        if checked is not None:
            terms = checked.privacy
            console.print(
                f"task checked against the chain: features {', '.join(checked.features)}; "
                f"label {checked.label}; "
                + (
                    f"DP-SGD (clip {terms.clip_norm:g}, noise {terms.noise_multiplier:g})"
                    if terms
                    else "no privacy terms: updates leave un-noised"
                ),
                soft_wrap=True,
            )
        console.print(f"joined job {job}  tx {tx}")

    emit(as_json, data, render)


@app.command("status")
def status(ctx: typer.Context, job: int = JOB, as_json: bool = JSON_OPTION) -> None:
    """A job as the chain records it: members, anchored rounds, payouts."""
    from ailedger.federated.jobs import job_report

    with session(ctx, unlock=False) as s:
        report = job_report(s, job)
    data = report.as_json()

    def render() -> None:
        from ailedger.units import format_amount

        console.print(
            f"job {job}: {data['status']}, {data['rounds_done']} of {data['rounds']} rounds "
            f"anchored, reward {format_amount(report.job.task.reward)}"
        )
        for m in data["members"]:
            console.print(f"  {m['institution']}  dataset {m['dataset'][:18]}…  score {m['score']}")
        for r in data["anchored"]:
            dropped = f", dropped {len(r['dropped'])}" if r["dropped"] else ""
            console.print(
                f"  round {r['round']}: model {r['model_hash'][:18]}…, "
                f"{len(r['aggregated'])} aggregated{dropped}"
            )
        for who, paid in data["payouts"].items():
            console.print(
                f"  paid {who}: {format_amount(int(paid['reward']))} "
                f"(+ stake {format_amount(int(paid['stake']))})"
            )

    emit(as_json, data, render)


@app.command("run")
def run(
    ctx: typer.Context,
    job: int = JOB,
    task: Path = typer.Option(..., help="The task file posted with the job."),
    validation: Path = typer.Option(..., help="The validation set posted with the job."),
    workdir: Path = typer.Option(
        Path("fl-run"), help="Where the SuperLink's files, the logs and the model go."
    ),
    round_timeout: float = typer.Option(
        120.0, min=5.0, help="Seconds a round waits for updates (and for nodes to connect)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Run a job's rounds as its requester: starts it on chain, starts a SuperLink for
    the institutions' SuperNodes, anchors each round, then pays the pool out by
    contribution and writes the model."""
    from ailedger.federated.runner import coordinate
    from ailedger.units import format_amount

    with session(ctx, unlock=True) as s:
        done = coordinate(
            s, job, task, validation, workdir, narrator(as_json), round_timeout=round_timeout
        )
    data = {
        "job": job,
        "rounds": [
            {"round": r.round, "aggregated": r.aggregated, "dropped": r.dropped, "scores": r.scores}
            for r in done.rounds
        ],
        "accuracy": done.accuracy,
        "model": str(done.model),
        "flower_status": done.status.status,
        "payouts": {w: {"reward": str(r), "stake": str(k)} for w, (r, k) in done.payouts.items()},
    }

    def render() -> None:
        console.print(
            f"{len(done.rounds)} round(s) anchored; validation accuracy {done.accuracy:.3f}; "
            f"model in {done.model} (Flower: {done.status.status})"
        )
        for who, (reward, stake) in done.payouts.items():
            console.print(f"  paid {who}: {format_amount(reward)} (+ stake {format_amount(stake)})")

    emit(as_json, data, render)


@app.command("serve")
def serve(
    ctx: typer.Context,
    job: int = JOB,
    superlink: str = typer.Option(..., help="The requester's SuperLink (host:port)."),
    workdir: Path = typer.Option(Path("fl-node"), help="Where the SuperNode's files go."),
    as_json: bool = JSON_LINES_OPTION,
) -> None:
    """Train the rounds of a job you joined at this node, until the job is finished. Each
    round is checked here first (the grant on chain, the posted task, the round's number,
    the privacy budget) and the read logged, then trained here; only the update (masked,
    under secure aggregation) goes to your SuperNode, or the round goes on without you."""
    from ailedger.federated.runner import serve_institution

    with session(ctx, unlock=True) as s:
        state = serve_institution(s, job, superlink, workdir, narrator(as_json))
    emit(as_json, {"job": job, "state": state}, lambda: console.print(f"job {job} is {state}"))


@app.command("result")
def result(
    ctx: typer.Context,
    job: int = JOB,
    model: Path = typer.Option(
        None, help="The model directory `fl run` wrote (WORKDIR/model): checked against the chain."
    ),
    register: str = typer.Option(
        None, help="Register the model under this name, with a passport (needs --model)."
    ),
    eval_file: Path = typer.Option(
        None, "--eval", help='Evaluation report for the passport ({"accuracy": 0.95}).'
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """What a job made: the model its last round anchored, each institution's share of
    the contribution scores and its pay. With --model, whether that directory holds the
    anchored model; with --register NAME, sign and register it (the requester only, once
    the job is paid out): its passport names each dataset and grant whose updates were
    aggregated, and each round's privacy charge. `ailedger model verify` checks it all."""
    from ailedger.errors import ConfigError
    from ailedger.federated.jobs import job_result

    if register is not None and model is None:
        raise ConfigError("--register needs --model: the directory `fl run` wrote the model to")
    with session(ctx, unlock=register is not None) as s:
        outcome = job_result(s, job, model)
        if outcome.model_matches is False:
            raise ConfigError(
                f"{model}/model.json is not the model job {job}'s last round anchored "
                f"({outcome.final_model})"
            )
        registered = _register(s, model, job, register, eval_file) if register else None
    data = outcome.as_json() | {"registered": registered}

    def render() -> None:
        from ailedger.units import format_amount

        console.print(
            f"job {job}: {data['status']}, {data['rounds_anchored']} round(s) anchored; "
            f"final model {outcome.final_model or '(none)'}"
        )
        if outcome.model_matches:
            console.print(f"  {model}/model.json is the anchored model")
        for c in outcome.contributions:
            paid = "not paid yet" if c.reward is None else f"paid {format_amount(c.reward)}"
            console.print(
                f"  {c.institution}  dataset {c.dataset[:18]}…  grant {c.grant}  "
                f"share {c.share:.1%}  {paid}"
            )
        if registered:
            console.print(
                f"registered as model {registered['model']} version {registered['version']}; "
                f"passport bundle {registered['bundle']}"
            )

    emit(as_json, data, render)


def _register(
    s: Session, model: Path, job: int, name: str, eval_file: Path | None
) -> dict[str, object]:
    from ailedger.ai.models import register_model

    done = register_model(s, model, [], name=name, evaluation=eval_file, federated_job=job)
    return {
        "model": "0x" + done.model_id.hex(),
        "version": done.version,
        "passport": done.passport.sha256,
        "bundle": str(done.passport.path),
        "public_key": str(done.public_key),
        "datasets": [{"dataset": d.dataset, "grant": d.grant} for d in done.lineage.datasets],
        "privacy_charges": len(done.lineage.privacy),
    }

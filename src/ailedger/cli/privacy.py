"""``ailedger privacy``: ask differentially private questions, train DP models, and see
or set a dataset's privacy budget."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import typer

from ailedger.cli import _parsers as parse
from ailedger.cli._common import JSON_OPTION, console, emit, session, tx_line

app = typer.Typer(
    help=(
        "Private analytics: differentially private queries and model training over a "
        "private dataset, each charged to the dataset's one privacy budget on chain."
    )
)

DATASET = typer.Argument(..., help="The private dataset's id (0x...).")
SPEC = typer.Argument(
    ..., help="The spec, a .json or .toml file (see docs/privacy.md for its fields)."
)
GRANT = typer.Option(None, "--grant", min=0, help="Your grant for the dataset (`data requests`).")
BUY = typer.Option(
    False, "--buy", help="No grant yet: buy one first (after the budget check, never before)."
)
PURPOSE = typer.Option(
    "model-training", help="The purpose to buy a grant for, with --buy (one the dataset allows)."
)


def read_spec(path: Path) -> Any:
    """A spec file's content: JSON, or TOML for people writing it by hand."""
    from ailedger.errors import ConfigError

    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the spec {path}: {exc}") from exc
    try:
        return tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(
            f"{path} is not valid {path.suffix.lstrip('.') or 'JSON'}: {exc}"
        ) from exc


def _release(
    ctx: typer.Context,
    dataset: str,
    spec_path: Path,
    kind: str,
    grant: int | None,
    buy: bool,
    purpose: str,
) -> dict[str, Any]:
    from ailedger.chain.contracts.data_market import PURPOSES
    from ailedger.errors import ConfigError
    from ailedger.privacy.buyer import ask, buy_access, precheck

    dataset_id, spec = parse.dataset_id(dataset), read_spec(spec_path)
    if (grant is None) == (not buy):
        raise ConfigError("give --grant ID (a grant you hold) or --buy (buy one now)")
    if buy and purpose not in PURPOSES:
        raise ConfigError(f"unknown purpose {purpose!r}; choose one of: {', '.join(PURPOSES)}")
    with session(ctx, unlock=True) as s:
        precheck(s, dataset_id, kind, spec)  # before any payment
        bought = None
        if grant is None:
            bought = buy_access(s, dataset_id, PURPOSES[purpose])
            grant = bought.grant_id
        answer = ask(s, dataset_id, grant, kind, spec)
    if bought is not None:
        answer["bought"] = {"grant": bought.grant_id, "tx": bought.tx_hash}
    return answer


def _spent_line(answer: dict[str, Any]) -> str:
    return (
        f"charged to the dataset on chain (charge {answer['charge_index']}, tx "
        f"{answer['charge_tx']}): its privacy spend went from epsilon "
        f"{answer['epsilon_spent_before']:.4f} to {answer['epsilon_spent_after']:.4f} "
        f"of {answer['epsilon_cap']:g} (delta {answer['delta']:g})"
    )


@app.command("query")
def query(
    ctx: typer.Context,
    dataset: str = DATASET,
    spec: Path = SPEC,
    grant: int | None = GRANT,
    buy: bool = BUY,
    purpose: str = PURPOSE,
    as_json: bool = JSON_OPTION,
) -> None:
    """Ask counts, sums, means, histograms or quantiles over declared columns with
    declared bounds. The owner's node answers through OpenDP and charges the dataset's
    budget; a query the budget cannot hold is refused before you pay anything."""
    answer = _release(ctx, dataset, spec, "query", grant, buy, purpose)

    def render() -> None:
        if "bought" in answer:
            tx_line(f"bought grant {answer['bought']['grant']}", answer["bought"]["tx"], 0)
        for name, value in answer["values"].items():
            console.print(f"  {name}: {json.dumps(value)}")
        console.print(_spent_line(answer))

    emit(as_json, answer, render)


@app.command("train")
def train(
    ctx: typer.Context,
    dataset: str = DATASET,
    spec: Path = SPEC,
    out: Path = typer.Option(..., "-o", "--out", help="Where to write the trained model (JSON)."),
    grant: int | None = GRANT,
    buy: bool = BUY,
    purpose: str = PURPOSE,
    as_json: bool = JSON_OPTION,
) -> None:
    """Train a logistic-regression model with DP-SGD at the owner's node: per-example
    clipping and Gaussian noise calibrated to the spec's epsilon and delta. Only the
    model leaves, and its privacy cost is charged to the dataset's budget."""
    from ailedger.errors import ConfigError

    if out.exists():
        raise ConfigError(f"{out} already exists; choose a new output path")
    answer = _release(ctx, dataset, spec, "training", grant, buy, purpose)
    out.write_text(json.dumps(answer["values"]["model"], indent=2, sort_keys=True) + "\n")
    answer["model_path"] = str(out)

    def render() -> None:
        console.print(f"trained over {answer['values']['rows']} rows; model written to {out}")
        console.print(_spent_line(answer))

    emit(as_json, answer, render)


@app.command("budget")
def budget(ctx: typer.Context, dataset: str = DATASET, as_json: bool = JSON_OPTION) -> None:
    """Show the dataset's privacy budget: the cap, what was spent (recomputed from the
    chain's events by the PLD accountant), by buyer, by kind and by release, and what
    remains. Anyone can run it: the figures come from the chain alone."""
    from ailedger.privacy.report import budget_report

    with session(ctx, unlock=False) as s:
        report = budget_report(s, parse.dataset_id(dataset))
    emit(as_json, report.as_dict(), lambda: _render_budget(report))


def _render_budget(report: Any) -> None:
    if not report.private:
        console.print(
            f"dataset {report.dataset} has no privacy budget: it releases nothing labelled "
            "private (its owner sets one with `ailedger privacy cap`)"
        )
        return
    console.print(
        f"dataset {report.dataset}: epsilon cap {report.epsilon_cap:g} at delta {report.delta:g}"
    )
    console.print(
        f"  spent {report.spent_charged:.4f} as charged, {report.spent_recomputed:.4f} "
        f"recomputed from {len(report.releases)} release(s) (PLD; RDP says "
        f"{report.spent_rdp:.4f}); remaining {report.remaining:.4f}"
    )
    if not report.consistent:
        console.print(
            "  [bold red]the releases compose to more than the owner's node charged[/bold red]"
        )
    for title, shares in (("by buyer", report.by_buyer), ("by kind", report.by_kind)):
        for name, epsilon in shares.items():
            console.print(f"  {title} {name}: epsilon {epsilon:.4f} (composed alone)")
    for line in report.releases:
        console.print(
            f"  #{line.index} {line.kind:<8} {line.buyer}  epsilon {line.epsilon_alone:.4f} "
            f"alone, total after {line.spent_after:.4f}  tx {line.tx_hash}"
        )


@app.command("cap")
def cap(
    ctx: typer.Context,
    dataset: str = DATASET,
    epsilon: float = typer.Option(..., help="The most epsilon all releases together may spend."),
    delta: float = typer.Option(
        1e-6, help="The delta at which the spend is measured (fixed once anything is charged)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Set or change your dataset's privacy cap. The first cap makes the dataset private
    for good: its rows are no longer served, only DP answers. Budgets never refresh by
    themselves; each change is on chain and in your audit log."""
    from ailedger.privacy.owner import set_privacy_cap

    with session(ctx, unlock=True) as s:
        change = set_privacy_cap(s, parse.dataset_id(dataset), epsilon, delta)
    was = "none" if change.previous_cap is None else f"{change.previous_cap:g}"
    emit(
        as_json,
        vars(change),
        lambda: tx_line(
            f"privacy cap of {change.dataset} set to epsilon {change.epsilon_cap:g} at delta "
            f"{change.delta:g} (was {was})",
            change.tx_hash,
            change.block,
        ),
    )

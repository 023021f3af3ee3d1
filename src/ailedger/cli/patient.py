"""``ailedger patient``: a patient's own home: accept a hospital's link, say which purposes
their records may serve, see what they earned, claim it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from ailedger.cli._common import JSON_OPTION, console, emit, session

if TYPE_CHECKING:
    from ailedger.chain.contracts.patients import PatientLink

_PURPOSES_HELP = (
    "rare-disease-research, model-training, public-health, clinical-care, "
    "commercial-development, matchmaking"
)

app = typer.Typer(
    help="Your say as a patient. A hospital that holds your records proposes a link to your "
    "wallet and hands you its link id; `ailedger patient accept LINK_ID` makes the link "
    "yours. Then choose the purposes your records may serve (`patient consent --allow "
    "matchmaking`), withdraw any at any time (it takes effect at the hospital's next match, "
    "export or sale), see your links and earnings (`patient status`) and claim them "
    "(`patient claim`). Nothing on chain names you: the link id is random."
)


def _link_row(link: PatientLink) -> dict[str, str]:
    return {
        "link_id": link.link_id.hex(),
        "hospital": link.hospital,
        "status": link.status.name.lower(),
    }


@app.command("accept")
def accept(
    ctx: typer.Context,
    link_id: str = typer.Argument(..., help="The link id the hospital gave you (64 hex digits)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Accept a hospital's link to your wallet: from now on your consent decides what its
    records of you may be used for, and you share in what datasets holding them earn."""
    from ailedger.health.patient_links import accept_link, parse_link_id

    with session(ctx, unlock=True) as s:
        link = accept_link(s, parse_link_id(link_id))
    emit(
        as_json,
        _link_row(link),
        lambda: console.print(
            f"linked: hospital {link.hospital}'s records under link {link.link_id.hex()} are "
            "yours; next: `ailedger patient consent --allow PURPOSE`"
        ),
    )


@app.command("consent")
def consent(
    ctx: typer.Context,
    allow: list[str] = typer.Option(
        [], "--allow", help=f"Purpose to allow; repeat. {_PURPOSES_HELP}."
    ),
    withdraw: list[str] = typer.Option(
        [], "--withdraw", help="Purpose to withdraw; repeat. Takes effect at once."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Allow or withdraw purposes for all your linked records. A purpose not named keeps
    its setting; a withdrawn one stops matches, exports and sales for it at once."""
    from ailedger.health.patient_links import purpose_names, set_consent

    with session(ctx, unlock=True) as s:
        mask = set_consent(s, allow, withdraw)
    names = purpose_names(mask)
    emit(
        as_json,
        {"purposes": names, "mask": mask},
        lambda: console.print(f"you consent to: {', '.join(names) or 'nothing'}"),
    )


@app.command("end")
def end(
    ctx: typer.Context,
    link_id: str = typer.Argument(..., help="The link to end (64 hex digits)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """End a link: the hospital's records under it consent to nothing from now on; what it
    earned stays yours to claim."""
    from ailedger.health.patient_links import end_link, parse_link_id

    with session(ctx, unlock=True) as s:
        link = end_link(s, parse_link_id(link_id))
    emit(
        as_json,
        _link_row(link),
        lambda: console.print(f"ended link {link.link_id.hex()} with {link.hospital}"),
    )


@app.command("status")
def status(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """Your links (each hospital and whether the link is proposed, active or ended), the
    purposes you consent to, and the tokens you can claim."""
    from ailedger.health.patient_links import patient_status, purpose_names
    from ailedger.units import format_amount

    with session(ctx, unlock=False) as s:
        found = patient_status(s)
    data: dict[str, Any] = {
        "wallet": found.wallet,
        "purposes": purpose_names(found.consent),
        "claimable_base_units": str(found.claimable),
        "links": [_link_row(link) for link in found.links],
    }

    def render() -> None:
        console.print(f"wallet     {found.wallet}")
        console.print(f"consent    {', '.join(data['purposes']) or 'nothing'}")
        console.print(f"claimable  {format_amount(found.claimable)}")
        if not found.links:
            console.print("no link yet: a hospital proposes one and hands you its id")
        for row in data["links"]:
            console.print(f"  link {row['link_id']}  {row['status']:<8} hospital {row['hospital']}")

    emit(as_json, data, render)


@app.command("claim")
def claim(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """Receive the tokens your linked records earned from dataset sales."""
    from ailedger.health.patient_links import claim as claim_tokens
    from ailedger.units import format_amount

    with session(ctx, unlock=True) as s:
        paid = claim_tokens(s)
    emit(
        as_json,
        {"paid_base_units": str(paid)},
        lambda: console.print(f"claimed {format_amount(paid)}"),
    )


@app.command("consent-export")
def consent_export(
    ctx: typer.Context,
    out: Path = typer.Option(
        None, "--out", help="Write the FHIR Consent here [default: print it]."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Your consent as a FHIR R4 Consent resource (you are named by wallet address only),
    to hand to a hospital or keep."""
    import json

    from ailedger.errors import ConfigError
    from ailedger.health.consent import consent_resource
    from ailedger.health.patient_links import patient_status

    if out is not None and out.exists():
        raise ConfigError(f"{out} already exists; choose a new file")
    with session(ctx, unlock=False) as s:
        found = patient_status(s)
    resource = consent_resource(found.wallet, found.consent, found.links)
    if out is None:
        console.print_json(json.dumps(resource))
        return
    out.write_text(json.dumps(resource, indent=1), encoding="utf-8")
    emit(
        as_json,
        {"out": str(out), "status": resource["status"]},
        lambda: console.print(f"wrote your FHIR Consent ({resource['status']}) to {out}"),
    )

"""``ailedger health``: import records, de-identify, find similar cases, rank diagnoses."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from ailedger.cli._common import JSON_OPTION, console, emit, session, settings_from

if TYPE_CHECKING:
    from ailedger.health.node import HealthNode

app = typer.Typer(
    help="Health data: FHIR/Phenopacket import, de-identification, rare-disease "
    "matchmaking (MME) and diagnosis ranking."
)
token_app = typer.Typer(help="Tokens for Matchmaker Exchange peers that are not ailedger nodes.")
app.add_typer(token_app, name="token")
peer_app = typer.Typer(
    help="Matchmaker Exchange nodes outside the chain this node asks (URL, token, path, version)."
)
app.add_typer(peer_app, name="peer")


def _health_node(ctx: typer.Context) -> HealthNode:
    """This home's health data, its patients in the configured database."""
    from ailedger.health.node import HealthNode
    from ailedger.keys.home import NodeHome

    settings = settings_from(ctx)
    return HealthNode(NodeHome.open(settings.home).path, settings.database_url)


@contextmanager
def _consenting_node(ctx: typer.Context) -> Iterator[HealthNode]:
    """This home's health data, asking the chain about patients linked to a wallet (their
    consent is theirs, read at the moment of use); a node without links needs no chain."""
    from ailedger.health.consent import chain_consent

    with _health_node(ctx) as node:
        if not node.links.all():
            yield node
            return
        with session(ctx, unlock=False) as s:
            node.consent_oracle = chain_consent(s)
            yield node


@app.command("import")
def import_(
    ctx: typer.Context,
    paths: list[Path] = typer.Argument(
        ...,
        help="FHIR Bundles (.json), bulk NDJSON, Phenopackets v2 (.json), or directories of them.",
    ),
    source: str = typer.Option(
        None,
        help="The system the FHIR records come from (its base URL), when they do not say: "
        "a patient whose id another source already holds here is kept as SOURCE/Patient/id.",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Validate and import records into this node's patient store, all or nothing.
    Saved match queries re-run against the new patients."""
    from rich.progress import Progress

    with (
        _health_node(ctx) as node,
        Progress(console=console, transient=True, disable=as_json) as bar,
    ):
        task = bar.add_task("importing", total=None)
        report, notes = node.import_files(
            paths, lambda done, total: bar.update(task, completed=done, total=total), source=source
        )
        total = node.store.count()
    data = {**report.to_dict(), "stored": total, "new_matches": [n.__dict__ for n in notes]}

    def render() -> None:
        console.print(
            f"imported {report.patients} patients ({report.new} new, {report.updated} updated; "
            f"{report.resources} resources from {report.files} files); {total} stored"
        )
        for kind, count in sorted(report.types.items()):
            dropped = f", {count.dropped} dropped" if count.dropped else ""
            console.print(f"  {kind:<24} {count.read:>7} read, {count.kept:>7} kept{dropped}")
        if any(c.dropped for c in report.types.values()):
            console.print(f"  dropped: {data['dropped_why']}")
        for key in report.rekeyed:
            console.print(f"  stored as {key}: another source holds its id here")
        for file, why in report.skipped:
            console.print(f"  skipped {file}: {why}")
        for note in notes:
            console.print(
                f"  saved query {note.query!r} matches new patient {note.surrogate} "
                f"(score {note.score:.2f}): contact {note.contact}"
            )

    emit(as_json, data, render)


@app.command("deidentify")
def deidentify(
    ctx: typer.Context,
    out: Path = typer.Option(..., "-o", "--out", help="De-identified dataset file to write."),
    k_threshold: int = typer.Option(
        5, min=1, max=1_000_000, help="Report equivalence classes smaller than this."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Write research-consented patients as HIPAA Safe Harbor records (keys stay in the
    home), with a k-anonymity report; publish the file with `ailedger data publish`."""
    from ailedger.errors import ConfigError
    from ailedger.health.deidentify import deidentify as safe_harbor
    from ailedger.health.deidentify import k_anonymity, write_dataset

    if out.exists():
        raise ConfigError(f"{out} already exists; choose a new file")
    from ailedger.health.patient_links import RESEARCH

    with _consenting_node(ctx) as node:
        check = node.consent_check()
        result = safe_harbor(
            node.candidates(RESEARCH),
            node.directory,
            consents=check.predicate(RESEARCH),
        )
        stored = node.store.count()
    if not result.records:
        raise ConfigError(
            f"no patient here consents to research ({stored} stored): consent comes from a "
            "FHIR Consent allowing research at import, or a linked patient's own consent on "
            "chain (`ailedger health links`); nothing was written"
        )
    write_dataset(result.records, out, result.report)
    report = k_anonymity(result.records, threshold=k_threshold)
    counts = result.report
    data = {
        "records": len(result.records),
        "out": str(out),
        "mode": "0644 (no identifier; the keys stay in the home, 0600)",
        "k": report.k,
        "classes": report.classes,
        "quasi_identifiers": list(report.quasi_identifiers),
        "classes_below_threshold": len(report.classes_below_threshold),
        "report": counts,
    }

    def render() -> None:
        console.print(
            f"wrote {len(result.records)} de-identified records to {out} (of "
            f"{counts['patients']['in']} candidates); k-anonymity over "
            f"{', '.join(report.quasi_identifiers)}: k = {report.k} "
            f"({len(report.classes_below_threshold)} of {report.classes} classes "
            f"below {k_threshold})"
        )
        for kind, n in counts["records"].items():
            console.print(f"  {kind:<24} {n['in']:>7} in, {n['out']:>7} out")
        kept = ", ".join(f"{system} {n}" for system, n in counts["codes_kept"].items())
        console.print(f"  codes kept: {kept or 'none'}")
        removed = sorted(counts["fields_removed"].items(), key=lambda item: -item[1])
        console.print(
            "  fields removed: " + (", ".join(f"{name} {n}" for name, n in removed) or "none")
        )

    emit(as_json, data, render)


@app.command("consent")
def consent(
    ctx: typer.Context,
    patient: str = typer.Argument(
        ..., help="The patient's id here (as `health import` printed it) or its record id."
    ),
    purpose: list[str] = typer.Option(
        ..., "--purpose", help="matchmaking or research (rare-disease research); repeat."
    ),
    by: str = typer.Option(..., "--by", help="Who records the decision (name, role)."),
    basis: str = typer.Option(
        "", "--basis", help="What it rests on (the signed form, where it is filed)."
    ),
    withdraw: bool = typer.Option(False, "--withdraw", help="Record a withdrawal."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Record a patient's consent (or its withdrawal) given at this hospital, e.g. for an
    imported phenopacket, which carries none. Who, when and on what basis go to the store
    and the audit log; matching and `health deidentify` follow it from the next query."""
    from ailedger.health.consent import record_consent

    with _health_node(ctx) as node, session(ctx, unlock=True) as s:
        decision = record_consent(
            node.store,
            node.links,
            patient,
            purpose,
            granted=not withdraw,
            recorded_by=by,
            basis=basis,
            audit=lambda entry: _log_outgoing(s, entry),
            secret=node.secret(),
        )
    now = decision.patient
    data = {
        "patient": now.local_id,
        "purposes": list(decision.purposes),
        "granted": decision.granted,
        "matchmaking": now.matchmaking,
        "research": now.research,
        "history": [vars(h) for h in decision.history],
        "note": decision.note,
    }

    def render() -> None:
        verb = "granted" if decision.granted else "withdrawn"
        console.print(
            f"{', '.join(decision.purposes)} {verb} for {now.local_id} (recorded by {by}); "
            f"now: matchmaking {'yes' if now.matchmaking else 'no'}, "
            f"research {'yes' if now.research else 'no'}"
        )
        if decision.note:
            console.print(f"  note: {decision.note}")

    emit(as_json, data, render)


def _query(
    query_file: Path | None, hpo: list[str], exclude: list[str], gene: list[str], contact: str
) -> dict[str, Any]:
    from ailedger.errors import ConfigError
    from ailedger.health.mme_schema import validation_errors
    from ailedger.untrusted_json import parse_untrusted

    if query_file is not None:
        try:
            loaded = parse_untrusted(query_file.read_bytes())
        except ValueError as exc:
            raise ConfigError(f"--query {query_file}: {exc}") from None
        document = (
            loaded if isinstance(loaded, dict) and "patient" in loaded else {"patient": loaded}
        )
        errors = validation_errors(document)
        if errors:
            raise ConfigError(f"--query {query_file} is not an MME request: {errors[0]}")
        return document
    from ailedger.health.clinic import query_document

    return query_document(hpo, exclude, gene, contact)


@app.command("match")
def match(
    ctx: typer.Context,
    hpo: list[str] = typer.Option([], help="Observed HPO term (HP:0001250); repeat."),
    exclude: list[str] = typer.Option([], help="Excluded HPO term; repeat."),
    gene: list[str] = typer.Option([], help="Candidate gene symbol; repeat."),
    query: Path = typer.Option(None, help="An MME request (or patient) JSON file instead."),
    federated: bool = typer.Option(
        False, help="Ask every node registered on chain and every outside MME peer."
    ),
    peer: list[str] = typer.Option(
        [], help="Ask only this outside MME peer (`health peer list`); repeat."
    ),
    save: str = typer.Option(
        None, help="Save the query under this name; it re-runs when new patients are imported here."
    ),
    limit: int = typer.Option(5, min=1, max=1000, help="Most results to show."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Find similar patients: here (consented patients only), across the federation, or at
    named outside MME peers (results name the clinician to contact, never the record;
    each says which node holds it and whether that node is on chain or outside)."""
    from ailedger.health.clinic import search_federation, search_here

    if not federated and not peer:
        with _consenting_node(ctx) as node:
            document = _query(query, hpo, exclude, gene, "local")
            rows = search_here(node, document, limit, save=save)
        emit(as_json, {"results": rows}, lambda: _render(rows))
        return

    outside = None  # --federated alone: every outside peer configured here
    if peer:
        with _health_node(ctx) as node:
            outside = node.peers.named(peer)
    # With --peer only those outside peers are asked, not the chain's nodes; the query is
    # still an entry of this home's audit log, which the unlocked home signs.
    with session(ctx, unlock=True) as s:
        document = _query(query, hpo, exclude, gene, "ailedger node")
        answer = search_federation(
            s,
            document,
            limit,
            lambda entry: _log_outgoing(s, entry),
            outside=outside,
            chain=federated,
        )
    emit(
        as_json,
        {"results": answer.results, "asked": answer.asked, "sources": answer.sources},
        lambda: _render(answer.results, answer.asked, answer.sources),
    )


def _log_outgoing(s: Any, entry: dict[str, Any]) -> None:
    """Record the outgoing query in this node's audit log (through the running node if
    it holds the log, else directly)."""
    from ailedger.sharing.owner import OwnerNode

    with OwnerNode(s) as node:
        node.append_own(entry)


def _render(
    rows: list[dict[str, Any]],
    asked: dict[str, str] | None = None,
    sources: dict[str, str] | None = None,
) -> None:
    for node, status in (asked or {}).items():
        how = (sources or {}).get(node, "chain")
        console.print(f"asked {_shown(node)} ({how}): {_shown(status)}", markup=False)
    if not rows:
        console.print("no match above the threshold")
    for row in rows:
        contact = row["patient"]["contact"]
        where = f" at {row.get('source', 'chain')} node {row['node']}" if "node" in row else ""
        said = (contact.get("name"), contact.get("institution", ""), contact.get("href", ""))
        console.print(
            f"score {row['score']['patient']:.3f}  patient {_shown(row['patient']['id'])}"
            f"{_shown(where)}: contact {' '.join(_shown(part) for part in said)}",
            markup=False,
        )
        for term in row.get("explanation", {}).get("matched_terms", []):
            console.print(f"    {term[0]} ~ {term[1]} via {term[2]} (+{term[3]})")


def _shown(value: object) -> str:
    """A peer's text as a terminal shows it: control characters (escape sequences that
    could rewrite the screen) left out."""
    return "".join(c for c in str(value) if c.isprintable())


@app.command("diagnose")
def diagnose(
    files: list[Path] = typer.Argument(
        None,
        help="Phenopackets v2 (.json), or directories of them: one ranking per case.",
        show_default=False,
    ),
    hpo: list[str] = typer.Option([], help="Observed HPO term (or onset, inheritance); repeat."),
    exclude: list[str] = typer.Option([], help="Excluded HPO term; repeat."),
    limit: int = typer.Option(10, min=1, max=1000, help="How many diseases to list per case."),
    explain: int = typer.Option(
        1, min=0, max=1000, help="Show the evidence of the first N diseases (text output)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Rank OMIM, Orphanet and DECIPHER diseases by likelihood ratios: each observed or
    excluded feature, onset and mode of inheritance moves each disease's odds, and the
    parts (log10 LR) add up to its post-test log odds. Unknown HPO ids are skipped, and said."""
    from ailedger.errors import ConfigError
    from ailedger.health.cases import Case, read_cases
    from ailedger.health.likelihood import default_ranker
    from ailedger.health.profile import PhenotypeProfile

    if not files and not hpo:
        raise ConfigError("give phenopacket files or directories, or --hpo terms")
    if files and (hpo or exclude):
        raise ConfigError("give either phenopacket files or --hpo/--exclude terms, not both")
    cases = (
        read_cases(files)
        if files
        else [Case("command line", "", PhenotypeProfile.of(hpo, exclude))]
    )
    ranker = default_ranker()
    rankings = [
        _ranking_document(case, ranker.rank(case.profile, limit=limit, track=case.stated))
        for case in cases
    ]

    def render() -> None:
        for document in rankings:
            _render_ranking(document, explain)

    emit(as_json, rankings[0] if not files else {"cases": rankings}, render)


def _ranking_document(case: Any, ranking: Any) -> dict[str, Any]:
    return {
        "case": case.id,
        "file": case.file or None,
        "candidates": ranking.candidates,
        "skipped": list(ranking.skipped),
        "unused": list(ranking.unused),
        "notes": list(ranking.notes),
        "stated": [{"disease": d, "rank": r} for d, r in ranking.tracked],
        "diseases": [
            {
                "rank": d.rank,
                "disease": d.disease_id,
                "name": d.name,
                "probability": d.probability,
                "score": d.score,
                "pretest_log10_odds": d.pretest_log10_odds,
                "parts": [part.__dict__ for part in d.parts],
            }
            for d in ranking.diagnoses
        ],
    }


def _render_ranking(document: dict[str, Any], explain: int) -> None:
    from rich.markup import escape

    if document["file"]:
        console.print(f"[bold]{escape(document['case'])}[/bold]  ({escape(document['file'])})")
    for note in document["notes"]:
        console.print(f"  [yellow]warning:[/yellow] {escape(note)}")
    for stated in document["stated"]:
        console.print(f"  stated diagnosis {stated['disease']}: rank {stated['rank'] or '-'}")
    for row in document["diseases"]:
        console.print(
            f"{row['rank']:>3}. {row['disease']:<16} p={row['probability']:.3f}  "
            f"log10 odds {row['score']:+.2f}  {escape(row['name'])}",
            highlight=False,
        )
        if row["rank"] <= explain:
            console.print(
                f"       {row['pretest_log10_odds']:+.2f}  pretest (1 in {document['candidates']})"
            )
            for part in sorted(row["parts"], key=lambda p: -abs(p["log10_lr"])):
                console.print(
                    f"       {part['log10_lr']:+.2f}  {_part_text(part)}", highlight=False
                )


def _part_text(part: dict[str, Any]) -> str:
    from rich.markup import escape

    head = f"{part['kind']} {part['term']} {part['term_name']}".replace("  ", " ")
    weights = []
    if part["disease_term"]:
        weights.append(f"disease {part['disease_term']}")
    if part["frequency"] is not None:
        weights.append(f"f={part['frequency']:.2f}")
    if part["background"] is not None:
        weights.append(f"bg={part['background']:.3f}")
    flag = "  [red]conflict[/red]" if part["conflict"] else ""
    text = f"{head}: {part['relation']}" + (f" ({', '.join(weights)})" if weights else "")
    return escape(text) + flag


@app.command("link")
def link(
    ctx: typer.Context,
    local_id: str = typer.Argument(..., help="The patient's id in this node's store."),
    wallet: str = typer.Argument(..., help="The patient's wallet address (0x...)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Propose that a patient's records here are the patient at WALLET's. Prints the link
    id to hand the patient (on paper or as a QR code); they run `ailedger patient accept
    LINK_ID`. From then on their consent, on chain, decides what their records serve."""
    from ailedger.health.patient_links import propose_link

    with _health_node(ctx) as node, session(ctx, unlock=True) as s:
        record = propose_link(s, node.store, local_id, wallet)
    emit(
        as_json,
        {"local_id": record.local_id, "link_id": record.link_id, "wallet": record.wallet},
        lambda: console.print(
            f"proposed link for patient {record.local_id!r} to {record.wallet}\n"
            f"  hand the patient this link id: {record.link_id}\n"
            f"  they accept with: ailedger patient accept {record.link_id}"
        ),
    )


@app.command("links")
def links(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """This node's links between patients and wallets, each with its status on chain now
    (proposed: waiting for the patient; active: their consent decides; ended: no consent)."""
    from ailedger.health.patient_links import refresh_links

    with session(ctx, unlock=False) as s:
        rows = [r.__dict__ for r in refresh_links(s)]

    def render() -> None:
        if not rows:
            console.print("no links yet: `ailedger health link LOCAL_ID WALLET` proposes one")
        for row in rows:
            console.print(
                f"{row['local_id']:<24} {row['status']:<8} {row['wallet']}  link {row['link_id']}"
            )

    emit(as_json, {"links": rows}, render)


@app.command("share-revenue")
def share_revenue(
    ctx: typer.Context,
    dataset: str = typer.Argument(..., help="The dataset you published the records as (0x...)."),
    records: Path = typer.Option(
        ..., "--records", help="The file `ailedger health deidentify` wrote and you published."
    ),
    bps: int = typer.Option(
        ...,
        min=0,
        max=10_000,
        help="The patients' share of each sale, in basis points (1000 = 10%).",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Give the patients whose records a published dataset holds a share of each sale: the
    linked ones (`ailedger health link`) are named for the dataset by link id, weighted by
    their records; each sale then pays them through the chain, and each claims their own.
    Patients without a link neither earn nor block sales."""
    from ailedger.cli import _parsers as parse
    from ailedger.health.revenue import cohort_of
    from ailedger.health.revenue import share_revenue as share

    dataset_id = parse.dataset_id(dataset)
    with _health_node(ctx) as node, session(ctx, unlock=True) as s:
        cohort = cohort_of(records, node.directory, node.links)
        shared = share(s, dataset_id, cohort, bps)
    emit(
        as_json,
        {"dataset": dataset, **shared.__dict__},
        lambda: console.print(
            f"dataset {dataset}: {shared.added} linked patient(s) named for it "
            f"({shared.already} already), {shared.unlinked} record(s) without a link; "
            f"the patients' share of each sale is {shared.bps / 100:g}%"
        ),
    )


@token_app.command("issue")
def issue(
    ctx: typer.Context,
    peer: str = typer.Argument(..., help="Who gets the token."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Issue an X-Auth-Token for an MME peer; only its digest is stored here."""
    from ailedger.errors import ConfigError

    if not peer.strip() or len(peer) > 200 or not peer.isprintable():
        raise ConfigError(f"name the peer in 1 to 200 printable characters, not {peer[:40]!r}")

    with _health_node(ctx) as node:
        token = node.tokens.issue(peer)
    emit(
        as_json,
        {"peer": peer, "token": token},
        lambda: console.print(f"token for {peer} (shown once): {token}"),
    )


@app.command("contact")
def contact(
    ctx: typer.Context,
    name: str = typer.Argument(None, help="Who answers MME matches for this node."),
    href: str = typer.Argument(None, help="How to reach them: an https URL or mailto:address."),
    institution: str = typer.Option("", help="Their institution."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Show or set this node's Matchmaker Exchange contact: named in results for patients
    whose clinician left no e-mail, and in this node's own queries to peers."""
    from ailedger.health.mme import NodeContact

    with _health_node(ctx) as node:
        if name is not None or href is not None:
            node.set_contact(NodeContact(name or "", href or "", institution))
        current = node.contact()
    data = current.as_mme() if current is not None else {}
    emit(
        as_json,
        {"contact": data},
        lambda: console.print(
            f"MME contact: {data['name']} {data.get('institution', '')} {data['href']}"
            if data
            else "no MME contact: `ailedger health contact NAME HREF` sets one",
            markup=False,
        ),
    )


@peer_app.command("add")
def peer_add(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="What to call the peer here."),
    url: str = typer.Argument(..., help="The peer's base URL (https://mme.example.org)."),
    token: str = typer.Option(
        ..., prompt=True, hide_input=True, help="The X-Auth-Token the peer issued to this node."
    ),
    path: str = typer.Option("/match", help="Where the peer serves MME /match under its URL."),
    mme_version: str = typer.Option(
        "1.0", "--mme-version", help="The MME version the peer speaks: 1.0 or 1.1."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Add (or replace) an MME node outside the chain; its token is kept in the home,
    readable by you only, and never shown again."""
    from ailedger.health.mme_peers import OutsidePeer, parse_version

    added = OutsidePeer(name, url, token, path, parse_version(mme_version))
    with _health_node(ctx) as node:
        replaced = node.peers.add(added)
    emit(
        as_json,
        {"peer": added.shown(), "replaced": replaced},
        lambda: console.print(
            f"{'replaced' if replaced else 'added'} MME peer {name}: {added.match_url} "
            f"(MME v{added.shown()['version']})",
            markup=False,
        ),
    )


@peer_app.command("list")
def peer_list(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """The outside MME peers this node asks (tokens are never shown)."""
    with _health_node(ctx) as node:
        rows = [p.shown() for p in node.peers.all()]

    def render() -> None:
        if not rows:
            console.print("no outside MME peers: `ailedger health peer add NAME URL` adds one")
        for row in rows:
            console.print(
                f"{row['name']:<20} {row['url']}{row['path']}  MME v{row['version']}", markup=False
            )

    emit(as_json, {"peers": rows}, render)


@peer_app.command("remove")
def peer_remove(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The peer to forget."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Forget an outside MME peer and its token."""
    from ailedger.errors import NotFoundError

    with _health_node(ctx) as node:
        if not node.peers.remove(name):
            raise NotFoundError(
                f"no outside MME peer named {name!r}; `health peer list` shows them"
            )
    emit(
        as_json, {"removed": name}, lambda: console.print(f"removed MME peer {name}", markup=False)
    )

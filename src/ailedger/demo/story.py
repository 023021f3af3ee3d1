"""The end-to-end demo: two parties on a fresh embedded chain, told in plain words.

It grows with every capability. Today: homes and keys, the chain and its contracts, gas
and tokens, and owner-controlled data sharing — publish, request, approve, fetch,
refusals, revocation, and the verifiable audit log anchored on chain.
"""

from __future__ import annotations

import shlex
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from ailedger.chain.connection import ChainConnection, open_embedded
from ailedger.chain.transactions import fund_from_dev_account
from ailedger.demo.federated import federated_learning
from ailedger.demo.model_market import sell_predictions
from ailedger.demo.models import trustworthy_ai
from ailedger.demo.patients import patient_in_control
from ailedger.demo.privacy import private_analytics
from ailedger.demo.web import open_the_web_app
from ailedger.errors import AiledgerError
from ailedger.keys.home import NodeHome
from ailedger.session import Session
from ailedger.settings import load_settings
from ailedger.units import format_amount

Say = Callable[[str], None]
DEMO_PASSPHRASE = "demo passphrase - not for real keys"
GAS_WEI = 5 * 10**18
AIL = 10**18


def run_demo(directory: Path | None, say: Say) -> None:
    root = directory or Path(tempfile.mkdtemp(prefix="ailedger-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    cache = load_settings().cache_dir
    say(f"[bold]ailedger demo[/bold] in {root}\n")

    say("[bold]1. Two parties create their node homes[/bold]")
    homes = {
        name: NodeHome.init(root / name, DEMO_PASSPHRASE)
        for name in ("hospital", "researcher", "gpu-owner")
    }
    for label, home in homes.items():
        say(f"  {label:<10} account {home.address}, keys encrypted in {home.path}")

    say("\n[bold]2. The hospital starts the embedded chain; contracts deploy at first start[/bold]")
    with open_embedded(homes["hospital"].chain_dir, cache) as connection:
        hospital, researcher, gpu_owner = (_session(homes[n], connection, cache) for n in homes)
        say(f"  chain id {connection.chain_id}, stored in {homes['hospital'].chain_dir}")
        for name, address in sorted(hospital.deployment.contracts.items()):
            say(f"  contract {name:<12} at {address}")
        _tokens(hospital, researcher, gpu_owner, say)
        dataset = _share_data(hospital, researcher, root, say)
        registry = _find_similar_cases(hospital, researcher, root, say)
        training_job = _compute(hospital, researcher, gpu_owner, dataset, root, say)
        private_analytics(hospital, researcher, gpu_owner, root, say)
        model = trustworthy_ai(researcher, hospital, training_job, root, say)
        sell_predictions(researcher, hospital, model, root, say)

        def new_party(name: str) -> Session:
            party = _session(NodeHome.init(root / name, DEMO_PASSPHRASE), connection, cache)
            fund_from_dev_account(connection.web3, party.address, GAS_WEI)
            return party

        federated_learning(researcher, hospital, new_party, root, say)
        patient_in_control(hospital, researcher, new_party, registry, root, say)
        open_the_web_app(hospital, say)
        head = connection.web3.eth.block_number
        balance = hospital.token.balance_of(hospital.address)

    say("\n[bold]18. The chain keeps its state across a restart[/bold]")
    with open_embedded(homes["hospital"].chain_dir, cache) as reopened:
        again = _session(homes["hospital"], reopened, cache)
        kept = again.token.balance_of(again.address)
        say(
            f"  reopened at block {reopened.web3.eth.block_number} (was {head}); "
            f"hospital holds {format_amount(kept)} (was {format_amount(balance)})"
        )
    say("\ndone. See who read the hospital's data, each entry proved (copy and run):")
    say("  " + next_step_command(root / "hospital"))
    say("or open the hospital's web app: start its node, then open the link this prints:")
    for line in web_commands(root / "hospital"):
        say("  " + line)


def web_commands(home: Path) -> list[str]:
    """Shell lines that serve the hospital's web app and sign a browser in to it."""
    program = Path(sys.argv[0])
    ailedger = str(program.absolute()) if program.name == "ailedger" else "ailedger"
    env = ["env", f"AILEDGER_HOME={home}", f"AILEDGER_PASSPHRASE={DEMO_PASSPHRASE}"]
    return [
        shlex.join([*env, ailedger, "node", "start", "--port", "8700"]) + " &",
        shlex.join([*env, ailedger, "node", "login-link", "--port", "8700"]),
    ]


def next_step_command(home: Path) -> str:
    """A shell line that works as printed: the demo's homes are unlocked by its published
    passphrase, and a fresh shell may not have the virtual environment on PATH."""
    program = Path(sys.argv[0])
    ailedger = str(program.absolute()) if program.name == "ailedger" else "ailedger"
    env = ["env", f"AILEDGER_HOME={home}", f"AILEDGER_PASSPHRASE={DEMO_PASSPHRASE}"]
    return shlex.join([*env, ailedger, "audit", "history"])


def _session(home: NodeHome, connection: ChainConnection, cache: Path) -> Session:
    settings = load_settings(home=home.path, cache_dir=cache)
    account = home.unlock_account(DEMO_PASSPHRASE)
    return Session(settings, home, connection, account, DEMO_PASSPHRASE)


def _tokens(hospital: Session, researcher: Session, gpu_owner: Session, say: Say) -> None:
    say("\n[bold]3. Each gets gas money from the dev chain's operator[/bold]")
    for label, s in (("hospital", hospital), ("researcher", researcher), ("gpu-owner", gpu_owner)):
        r = fund_from_dev_account(s.chain.web3, s.address, GAS_WEI)
        gas = format_amount(GAS_WEI, "ETH")
        say(f"  {label:<10} +{gas}  tx {r.tx_hash} (block {r.block_number})")

    say("\n[bold]4. Each publishes its encryption key in the KeyRegistry contract[/bold]")
    for label, s in (("hospital", hospital), ("researcher", researcher)):
        r = s.key_registry.register(s.home.encryption_public_key)
        say(f"  {label:<10} key {s.home.encryption_public_key.hex()[:16]}…  tx {r.tx_hash}")

    say("\n[bold]5. The researcher mints test tokens, the GPU owner enough for its stake[/bold]")
    r = researcher.token.faucet(1_000 * AIL)
    say(f"  researcher minted {format_amount(1_000 * AIL)}  tx {r.tx_hash}")
    r = gpu_owner.token.faucet(100 * AIL)
    say(f"  gpu-owner  minted {format_amount(100 * AIL)}  tx {r.tx_hash}")
    try:
        hospital.token.transfer(researcher.address, 10**30)
    except AiledgerError as exc:
        say(f"  a payment beyond the hospital's balance is refused: {exc}")


def _share_data(hospital: Session, researcher: Session, root: Path, say: Say) -> bytes:
    from ailedger.audit.history import read_history
    from ailedger.audit.verify import verify_directory
    from ailedger.chain.contracts.data_market import PURPOSES, Policy
    from ailedger.node.app import create_app
    from ailedger.node.service import BackgroundServer, announce
    from ailedger.sharing.catalog import Catalog
    from ailedger.sharing.owner import OwnerNode, audit_signing_key
    from ailedger.sharing.requester import fetch, request_access

    source = root / "cohort.csv"
    source.write_text(_cohort_csv())
    research = PURPOSES["rare-disease-research"]
    with OwnerNode(hospital) as node:
        say(
            "\n[bold]6. The hospital publishes a de-identified cohort, encrypted at its node[/bold]"
        )
        purposes = research | PURPOSES["model-training"]
        policy = Policy(
            purposes, needs_approval=True, price=50 * AIL, duration_s=30 * 86400, max_reads=5
        )
        metadata = {
            "title": "Rare disease cohort (de-identified)",
            "tags": ["rare-disease"],
            "description": "synthetic demo records",
        }
        published = node.publish(source, policy, metadata, None)
        dataset = published.dataset_id
        say(
            f"  dataset 0x{dataset.hex()}: {published.size} bytes of ciphertext stay at the "
            f"hospital; on chain only its hash, a metadata hash and the policy "
            f"(rare-disease research or model training, 50 AIL, approval needed, 5 reads)"
            f"  tx {published.tx_hash}"
        )

        with BackgroundServer(create_app(node.gateway())) as url:
            announce(hospital, url)
            say(f"  the hospital's gateway serves at {url} (registered in NodeRegistry)")

            say("\n[bold]7. The researcher finds it, asks, and fetches once approved[/bold]")
            catalog = Catalog(researcher.database)
            catalog.sync(researcher)
            found = catalog.search(text="rare disease")
            say(f"  catalog search 'rare disease': {[e.title for e in found]}")
            grant, tx = request_access(researcher, dataset, research)
            say(f"  request {grant} for rare-disease research, 50 AIL held in escrow  tx {tx}")
            _try_fetch(researcher, dataset, grant, root / "early.csv", say, "before approval")
            r = hospital.data_market.grant(grant)
            say(f"  the hospital approves request {grant}; escrow paid to it  tx {r.tx_hash}")
            got = fetch(researcher, dataset, grant, root / "received.csv")
            same = got.path.read_bytes() == source.read_bytes()
            say(
                f"  fetched {got.size} bytes, hash checked against the chain, decrypted; "
                f"identical to the original: {same}; logged as audit entry {got.audit_index}"
            )
            try:
                request_access(researcher, dataset, PURPOSES["commercial-development"])
            except AiledgerError as exc:
                say(f"  asking to use it for commercial development is refused on chain: {exc}")
            r = hospital.data_market.revoke(grant)
            say(f"  the hospital revokes the grant  tx {r.tx_hash}")
            _try_fetch(researcher, dataset, grant, root / "late.csv", say, "after revocation")

        say("\n[bold]8. Who accessed the data? The audit log answers, provably[/bold]")
        node.log_chain_decisions()
        node.audit.checkpoint_now()
        anchored = node.anchor()
        if anchored:
            say(f"  audit log anchored on chain at size {anchored[0]}  tx {anchored[1]}")
        public = audit_signing_key(hospital).public_key()
        history = read_history(hospital.home.layout.audit, public, dataset="0x" + dataset.hex())
        for item in history.entries:
            e = item.entry
            who = e.get("requester", "")
            why = f" ({e['reason']})" if "reason" in e else ""
            proof = "inclusion proved" if item.proof_ok else "PROOF FAILED"
            say(f"  #{item.index} {e['kind']:<7} {e.get('outcome', '-'):<8} {who}{why}  ({proof})")
        history_anchors = hospital.audit_anchor.history(hospital.address, hospital.deployment.block)
        result = verify_directory(hospital.home.layout.audit, public, history_anchors)
        say(
            f"  audit verify: {result.message} ({result.size} entries, {result.checkpoints} "
            f"signed checkpoints, {len(history_anchors)} on-chain anchors)"
        )
    return dataset


def _compute(
    hospital: Session, researcher: Session, gpu_owner: Session, dataset: bytes, root: Path, say: Say
) -> int:
    """The researcher's node must run while its jobs do: providers fetch the bundle from
    it and send logs and the encrypted output back to it. Returns the job that trained
    a model over the hospital's cohort."""
    from ailedger.demo.compute import compute_to_data, rent_a_gpu
    from ailedger.node.app import create_app
    from ailedger.node.service import BackgroundServer, announce, job_inbox
    from ailedger.sharing.owner import OwnerNode

    with OwnerNode(researcher) as node:
        app = create_app(node.gateway(), jobs=job_inbox(researcher))
        with BackgroundServer(app) as url:
            announce(researcher, url)
            rent_a_gpu(researcher, gpu_owner, root, say)
            training_job = compute_to_data(hospital, researcher, dataset, root, say)
    return training_job


def _find_similar_cases(hospital: Session, clinic: Session, root: Path, say: Say) -> bytes:
    """Chapter 9; returns the de-identified registry the hospital published."""
    from ailedger.audit.history import read_history
    from ailedger.chain.contracts.data_market import PURPOSES, Policy
    from ailedger.demo.records import RARE_CASE, write_bundles
    from ailedger.health.deidentify import deidentify, k_anonymity, write_dataset
    from ailedger.health.federation import federated_match, known_party
    from ailedger.health.mme import MatchmakerService
    from ailedger.health.mme_auth import authenticator
    from ailedger.health.node import HealthNode
    from ailedger.node.app import create_app
    from ailedger.node.service import BackgroundServer, announce
    from ailedger.sharing.owner import OwnerNode, audit_signing_key

    say(
        "\n[bold]9. Rare disease: the hospital imports FHIR records; a clinician elsewhere "
        "finds a similar case[/bold]"
    )
    bundles = write_bundles(root / "fhir", 25)
    with (
        HealthNode(hospital.home.path, hospital.settings.database_url) as health,
        OwnerNode(hospital) as node,
    ):
        report, _ = health.import_files(bundles)
        say(
            f"  imported {report.patients} patients ({report.resources} FHIR resources), "
            "validated, all or nothing"
        )
        result = deidentify(health.store.consented_for_research(), health.directory)
        dataset_file = root / "deidentified.json"
        write_dataset(result.records, dataset_file)
        k = k_anonymity(result.records)
        policy = Policy(PURPOSES["rare-disease-research"], True, 10 * AIL, 30 * 86400, 0)
        published = node.publish(
            dataset_file,
            policy,
            {"title": "Rare disease registry (Safe Harbor)", "tags": ["rare-disease", "fhir"]},
            None,
        )
        quasi = ", ".join(k.quasi_identifiers)
        say(
            f"  de-identified {len(result.records)} research-consented records (names, MRNs, "
            f"phones, addresses, exact dates removed; k = {k.k} over {quasi})"
            f" and published them as dataset 0x{published.dataset_id.hex()[:16]}…"
        )
        service = MatchmakerService(
            health.cohort,
            authenticator(health.tokens, hospital.address, known_party(hospital)),
            node.audit,
        )
        with BackgroundServer(create_app(node.gateway(), matchmaker=service)) as url:
            announce(hospital, url)
            query = {
                "patient": {
                    "id": "clinic-case-1",
                    "contact": {"name": "Dr. Chen", "href": "mailto:chen@clinic.example"},
                    "features": [{"id": t} for t in RARE_CASE[:6]],
                }
            }
            answer = federated_match(clinic, query, limit=3)
            with OwnerNode(clinic) as clinic_node:
                clinic_node.audit.append(
                    {
                        "kind": "mme-query",
                        "direction": "outgoing",
                        "peers": len(answer.asked),
                        "results": len(answer.results),
                        "outcome": "asked",
                    }
                )
            for node_address, status in answer.asked.items():
                say(f"  the clinic asked node {node_address} (found on chain): {status}")
            for r in answer.results[:3]:
                contact = r["patient"]["contact"]
                say(
                    f"  match score {r['score']['patient']:.2f}: patient {r['patient']['id']} — "
                    f"contact {contact['name']}, {contact['institution']} {contact['href']}"
                )
        _rank_diagnoses(say)
        node.audit.checkpoint_now()
        public = audit_signing_key(hospital).public_key()
        queries = [
            h
            for h in read_history(hospital.home.layout.audit, public).entries
            if h.entry.get("kind") == "mme-query"
        ]
        for h in queries:
            say(
                f"  hospital audit #{h.index}: incoming MME query from {h.entry['peer']}, "
                f"{h.entry['results']} results (inclusion {'proved' if h.proof_ok else 'FAILED'})"
            )
    return published.dataset_id


def _rank_diagnoses(say: Say) -> None:
    """The clinician's own case ranked by likelihood ratios, with why the first one leads."""
    from ailedger.demo.records import RARE_CASE
    from ailedger.health.likelihood import default_ranker
    from ailedger.health.profile import PhenotypeProfile

    seizures = "HP:0001250"  # checked and absent: evidence too
    ranking = default_ranker().rank(PhenotypeProfile.of(RARE_CASE, [seizures]), limit=3)
    say(
        f"  the clinician ranks {ranking.candidates} diseases for the case by likelihood ratios "
        f"({len(RARE_CASE)} features seen, seizures excluded):"
    )
    for d in ranking.diagnoses:
        say(f"    {d.rank}. {d.disease_id} {d.name}: probability {d.probability:.2f}")
    top = ranking.diagnoses[0]
    parts = sorted(top.parts, key=lambda p: -abs(p.log10_lr))
    why = "; ".join(f"{p.log10_lr:+.2f} {p.term_name or p.term}" for p in parts[:3])
    total = top.pretest_log10_odds + sum(p.log10_lr for p in top.parts)
    say(
        f"    why the first: pretest {top.pretest_log10_odds:+.2f}, {why}, … "
        f"= log10 odds {total:+.2f} (the parts add up to the score, {top.score:+.2f})"
    )


def _try_fetch(
    researcher: Session, dataset: bytes, grant: int, out: Path, say: Say, when: str
) -> None:
    from ailedger.sharing.requester import fetch

    try:
        fetch(researcher, dataset, grant, out)
        say(f"  UNEXPECTED: a fetch {when} succeeded")
    except AiledgerError as exc:
        say(f"  a fetch {when} is refused, nothing decrypted: {exc}")


def _cohort_csv() -> str:
    rows = [
        "pseudonym,year_of_birth,zip3,hpo_terms,candidate_gene,onset_months,delay_score,regression"
    ]
    genes = ["NGLY1", "KMT2D", "SCN1A", "MECP2"]
    for i in range(400):
        # Synthetic: developmental regression grows likelier with the delay score and
        # an earlier onset, plus a fixed spread of noise (something to learn, inexactly).
        onset, delay, noise = i * 37 % 61, i * 7 % 11, (i * 13 % 9 - 4) * 0.4
        regression = int(0.6 * delay - 0.08 * onset - 0.5 + noise > 0)
        rows.append(
            f"P{i:04d},{1950 + i % 60},{100 + i % 800:03d},HP:0001250;HP:0001263,"
            f"{genes[i % len(genes)]},{onset},{delay},{regression}"
        )
    return "\n".join(rows) + "\n"

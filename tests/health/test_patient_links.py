"""Patients' links and consent that takes effect at the hospital, on a real embedded chain:
the handshake, a withdrawal that removes a patient from the next match and the next
de-identified export, an ended link that consents to nothing, and the attacks (a wallet
other than the named one accepting, a hospital linking a patient twice)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fhir.resources.R4B.consent import Consent

from ailedger.chain.connection import ChainConnection, open_embedded
from ailedger.chain.contracts.patients import MATCHMAKING, LinkStatus, PatientLink
from ailedger.chain.transactions import fund_from_dev_account
from ailedger.demo.records import RARE_CASE
from ailedger.errors import ConfigError, TransactionRevertedError
from ailedger.health.clinic import search_here
from ailedger.health.consent import (
    ACT_REASON,
    WALLET_SYSTEM,
    ChainConsent,
    ConsentCheck,
    consent_resource,
)
from ailedger.health.deidentify import deidentify
from ailedger.health.node import HealthNode
from ailedger.health.patient_links import (
    RESEARCH,
    AlreadyLinkedError,
    LinkRecord,
    NoSuchLinkError,
    NotTheNamedPatientError,
    PatientLinks,
    accept_link,
    end_link,
    patient_status,
    propose_link,
    purpose_bits,
    refresh_links,
    set_consent,
)
from ailedger.health.patients import Patient, PatientNotFoundError
from ailedger.keys.home import NodeHome
from ailedger.session import Session
from ailedger.settings import load_settings

PASSPHRASE = "patients"


@dataclass
class World:
    """A hospital (its health node with the chain as consent oracle) and two wallets."""

    connection: ChainConnection
    hospital: Session
    node: HealthNode
    alice: Session
    mallory: Session


def _party(connection: ChainConnection, root: Path, name: str, cache: Path) -> Session:
    home = NodeHome.init(root / name, PASSPHRASE, scrypt_n=2**12)
    settings = load_settings(home=home.path, cache_dir=cache)
    session = Session(settings, home, connection, home.unlock_account(PASSPHRASE), PASSPHRASE)
    fund_from_dev_account(connection.web3, session.address, 10**20)
    return session


def _patient(local_id: str, *, matchmaking: bool = True, research: bool = True) -> Patient:
    return Patient(
        local_id,
        sex="female",
        birth_date="2010-04-02",
        postal_code="02139",
        observed=tuple(RARE_CASE),
        matchmaking=matchmaking,
        research=research,
    )


@pytest.fixture
def world(tmp_path: Path, contract_cache: Path) -> Iterator[World]:
    with open_embedded(tmp_path / "chain", contract_cache) as connection:
        hospital, alice, mallory = (
            _party(connection, tmp_path, name, contract_cache)
            for name in ("hospital", "alice", "mallory")
        )
        node = HealthNode(hospital.home.path, consent_oracle=ChainConsent(hospital.patients))
        node.store.put_many(
            [
                _patient("pat-alice"),
                _patient("pat-bob"),
                _patient("pat-carol", matchmaking=False, research=False),
            ]
        )
        try:
            yield World(connection, hospital, node, alice, mallory)
        finally:
            node.close()
            for session in (hospital, alice, mallory):
                session.close()


def _linked(world: World, local_id: str = "pat-alice") -> LinkRecord:
    record = propose_link(world.hospital, world.node.store, local_id, world.alice.address)
    accept_link(world.alice, record.link_bytes)
    return record


def _match_query() -> dict[str, object]:
    return {
        "patient": {
            "id": "q",
            "contact": {"name": "Dr Q", "href": "mailto:q@example.org"},
            "features": [{"id": t} for t in RARE_CASE],
        }
    }


def _matched(world: World) -> set[str]:
    cohort = world.node.cohort
    surrogates = {cohort.surrogate(i): i for i in ("pat-alice", "pat-bob", "pat-carol")}
    rows = search_here(world.node, _match_query(), 10)
    return {surrogates[row["patient"]["id"]] for row in rows}


def test_the_handshake_links_a_record_to_the_named_wallet(world: World) -> None:
    record = propose_link(world.hospital, world.node.store, "pat-alice", world.alice.address)
    assert len(record.link_id) == 64 and record.wallet == world.alice.address
    on_chain = world.hospital.patients.link(record.link_bytes)
    assert on_chain == PatientLink(
        record.link_bytes, world.hospital.address, world.alice.address, LinkStatus.PROPOSED
    )
    assert [link.status for link in patient_status(world.alice).links] == [LinkStatus.PROPOSED]

    accept_link(world.alice, record.link_bytes)
    assert [r.status for r in refresh_links(world.hospital)] == ["active"]
    status = patient_status(world.alice)
    assert [(link.hospital, link.status) for link in status.links] == [
        (world.hospital.address, LinkStatus.ACTIVE)
    ]
    assert status.consent == 0 and status.claimable == 0


def test_a_record_written_before_a_crash_is_proposed_again_with_the_same_id(
    world: World,
) -> None:
    """The row is written first: a hospital that died before the chain call sends the
    same link id when it links the patient again."""
    written = LinkRecord("pat-bob", "ab" * 32, world.alice.address, "proposed", 1)
    PatientLinks(world.hospital.database).put(written)
    assert world.hospital.patients.link(written.link_bytes) is None

    resumed = propose_link(world.hospital, world.node.store, "pat-bob", world.alice.address)
    assert resumed.link_id == written.link_id
    assert world.hospital.patients.link(written.link_bytes) is not None


def test_a_wallet_other_than_the_named_one_cannot_accept(world: World) -> None:
    record = propose_link(world.hospital, world.node.store, "pat-alice", world.alice.address)
    with pytest.raises(NotTheNamedPatientError, match="names the wallet"):
        accept_link(world.mallory, record.link_bytes)
    # Past this module's check, the contract itself refuses the thief.
    with pytest.raises(TransactionRevertedError, match="caller is not the patient named"):
        world.mallory.patients.accept_link(record.link_bytes)
    assert world.hospital.patients.link(record.link_bytes).status == LinkStatus.PROPOSED  # type: ignore[union-attr]


def test_a_hospital_cannot_link_a_patient_twice_until_the_link_ends(world: World) -> None:
    record = propose_link(world.hospital, world.node.store, "pat-alice", world.alice.address)
    with pytest.raises(AlreadyLinkedError, match="already linked"):
        propose_link(world.hospital, world.node.store, "pat-alice", world.mallory.address)
    accept_link(world.alice, record.link_bytes)
    with pytest.raises(AlreadyLinkedError, match="accepted by"):
        propose_link(world.hospital, world.node.store, "pat-alice", world.alice.address)

    end_link(world.alice, record.link_bytes)
    again = propose_link(world.hospital, world.node.store, "pat-alice", world.alice.address)
    assert again.link_id != record.link_id


@pytest.mark.parametrize(
    ("local_id", "wallet", "error", "message"),
    [
        ("nobody", None, PatientNotFoundError, "no patient 'nobody'"),
        ("pat-alice", "0x1234", ConfigError, "not a wallet address"),
        ("pat-alice", "alice", ConfigError, "not a wallet address"),
    ],
    ids=["unknown-local-id", "short-address", "a-name"],
)
def test_propose_refuses_what_cannot_be_linked(
    world: World, local_id: str, wallet: str | None, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        propose_link(world.hospital, world.node.store, local_id, wallet or world.alice.address)
    assert PatientLinks(world.hospital.database).all() == []


def test_no_such_link_is_told_as_such(world: World) -> None:
    with pytest.raises(NoSuchLinkError, match="no link"):
        accept_link(world.alice, b"\x07" * 32)


def test_a_withdrawal_of_matchmaking_takes_effect_at_the_next_match(world: World) -> None:
    _linked(world)
    # Linked: the chain decides, and Alice has consented to nothing yet.
    assert _matched(world) == {"pat-bob"}
    set_consent(world.alice, ["matchmaking"], [])
    assert _matched(world) == {"pat-alice", "pat-bob"}
    set_consent(world.alice, [], ["matchmaking"])
    assert _matched(world) == {"pat-bob"}  # the same cohort, no rebuild


def test_a_linked_patient_consents_on_chain_even_if_the_import_said_no(world: World) -> None:
    record = propose_link(world.hospital, world.node.store, "pat-carol", world.alice.address)
    assert _matched(world) == {"pat-bob", "pat-alice"}  # proposed: carol's import says no
    accept_link(world.alice, record.link_bytes)
    set_consent(world.alice, ["matchmaking"], [])
    assert _matched(world) == {"pat-alice", "pat-bob", "pat-carol"}


def test_a_withdrawn_research_consent_drops_the_patient_from_the_next_export(
    world: World, tmp_path: Path
) -> None:
    _linked(world)
    set_consent(world.alice, ["rare-disease-research", "matchmaking"], [])

    def exported() -> int:
        check = world.node.consent_check()
        result = deidentify(
            world.node.candidates(RESEARCH),
            tmp_path / "keys",
            labels={},
            consents=check.predicate(RESEARCH),
        )
        return len(result.records)

    assert exported() == 2  # alice (on chain) and bob (import); carol never consented
    set_consent(world.alice, [], ["rare-disease-research"])
    assert exported() == 1
    assert [p.local_id for p in world.node.consenting(RESEARCH)] == ["pat-bob"]


def test_an_ended_link_consents_to_nothing(world: World) -> None:
    record = _linked(world)
    set_consent(world.alice, ["matchmaking", "rare-disease-research"], [])
    alice = world.node.store.get("pat-alice")
    assert world.node.consent_check().allows(alice, MATCHMAKING)

    end_link(world.hospital, record.link_bytes)
    check = world.node.consent_check()
    assert not check.allows(alice, MATCHMAKING)  # the import's flags said yes
    assert not check.allows(alice, RESEARCH)
    assert _matched(world) == {"pat-bob"}


def test_without_a_chain_to_ask_a_linked_patient_consents_to_nothing(world: World) -> None:
    _linked(world)
    set_consent(world.alice, ["matchmaking"], [])
    blind = ConsentCheck(PatientLinks(world.hospital.database), None)
    assert not blind.allows(world.node.store.get("pat-alice"), MATCHMAKING)
    assert blind.allows(world.node.store.get("pat-bob"), MATCHMAKING)  # unlinked: its flags


@pytest.mark.parametrize(
    "names",
    [
        [],
        ["rare-disease-research"],
        ["rare-disease-research", "model-training", "public-health"],
        ["matchmaking", "clinical-care", "commercial-development"],
    ],
    ids=["nothing", "research", "research-kinds", "care-commerce-matching"],
)
def test_the_fhir_consent_validates_and_names_only_the_wallet(names: list[str]) -> None:
    wallet = "0x" + "aa" * 20
    link = PatientLink(b"\x01" * 32, "0x" + "bb" * 20, wallet, LinkStatus.ACTIVE)
    resource = consent_resource(wallet, purpose_bits(names), [link])
    parsed = Consent.model_validate(resource)

    assert parsed.patient.identifier.system == WALLET_SYSTEM
    assert parsed.patient.identifier.value == wallet
    assert parsed.status == ("active" if names else "inactive")
    permits = (parsed.provision.provision or []) if parsed.provision else []
    assert len(permits) == len(names)
    codes = {c.code for p in permits for c in p.purpose if c.system == ACT_REASON}
    expected = {"rare-disease-research": "HRESCH", "clinical-care": "TREAT"}
    expected |= {"public-health": "PUBHLTH", "commercial-development": "HMARKT"}
    assert codes == {expected[n] for n in names if n in expected}
    scope = parsed.scope.coding[0].code
    assert scope == ("research" if names and "matchmaking" not in names else "patient-privacy")

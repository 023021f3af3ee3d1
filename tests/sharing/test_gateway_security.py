"""The gateway's refusals, attack by attack: each is refused with its reason, logged, and
nothing is decrypted. One embedded chain, an owner and a researcher, in one process."""

from __future__ import annotations

import copy
import dataclasses
import json
import secrets
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from eth_account import Account
from fastapi import FastAPI

from ailedger.audit.log import AuditLog
from ailedger.audit.remote import GatewayLogSource, verify_served_log
from ailedger.chain.connection import open_embedded
from ailedger.chain.contracts.data_market import PURPOSES, Policy
from ailedger.chain.transactions import fund_from_dev_account
from ailedger.crypto.errors import CryptoError
from ailedger.errors import (
    ChainUnreachableError,
    NotFoundError,
    TooManyRequestsError,
    UnprocessableError,
)
from ailedger.keys.home import NodeHome
from ailedger.node.app import create_app
from ailedger.node.service import BackgroundServer, announce
from ailedger.peer import wire
from ailedger.peer.http_errors import install_error_handlers
from ailedger.peer.rate_limit import DEFAULT_BURST, DEFAULT_RATE, PeerRateLimiter
from ailedger.session import Session
from ailedger.settings import load_settings
from ailedger.sharing.access_request import Domain, new_request, sign_request
from ailedger.sharing.gateway import AccessDeniedError, Gateway, ServeFailedError
from ailedger.sharing.http import MAX_BODY, gateway_router
from ailedger.sharing.owner import OwnerNode, audit_signing_key
from ailedger.sharing.reads import ReadLimitReachedError
from ailedger.sharing.requester import (
    TamperedDataError,
    check_receipt,
    fetch,
    kept_receipt,
    request_access,
)

PASSPHRASE = "gateway security"
RESEARCH = PURPOSES["rare-disease-research"]
TRAINING = PURPOSES["model-training"]


@dataclasses.dataclass
class World:
    owner: Session
    researcher: Session
    node: OwnerNode
    gateway: Gateway
    dataset: bytes
    source: Path
    tmp: Path

    def grant(self, dataset: bytes | None = None, purpose: int = RESEARCH) -> int:
        request_id, _ = request_access(self.researcher, dataset or self.dataset, purpose)
        market = self.owner.data_market
        if market.grant_info(request_id).status.name == "PENDING":  # type: ignore[union-attr]
            market.grant(request_id)
        return request_id

    def body(
        self,
        grant: int,
        *,
        purpose: int = RESEARCH,
        account: Any = None,
        domain: Domain | None = None,
        dataset: bytes | None = None,
        lifetime: int = 120,
    ) -> dict[str, Any]:
        signer = account or self.researcher.require_account()
        request = new_request(
            self.researcher.require_account(), dataset or self.dataset, grant, purpose, lifetime
        )
        request = dataclasses.replace(request, requester=self.researcher.address)
        return {
            "request": request.to_json(),
            "signature": sign_request(signer, domain or self.gateway.domain, request),
        }

    def refused(self, body: Any) -> str:
        before = self.node.audit.size
        with pytest.raises(AccessDeniedError) as caught:
            self.gateway.authorize(body)
        entry = self.node.audit.entry(self.node.audit.size - 1)
        assert self.node.audit.size == before + 1
        assert (entry["kind"], entry["outcome"]) == ("read", "refused")
        return caught.value.reason


def _session(home: NodeHome, connection: Any, cache: Path) -> Session:
    settings = load_settings(home=home.path, cache_dir=cache)
    return Session(settings, home, connection, home.unlock_account(PASSPHRASE), PASSPHRASE)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, contract_cache: Path) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("gateway")
    cache = contract_cache  # compiled once per run
    owner_home = NodeHome.init(tmp / "owner", PASSPHRASE, scrypt_n=2**12)
    researcher_home = NodeHome.init(tmp / "researcher", PASSPHRASE, scrypt_n=2**12)
    with open_embedded(owner_home.chain_dir, cache) as connection:
        owner = _session(owner_home, connection, cache)
        researcher = _session(researcher_home, connection, cache)
        for party in (owner, researcher):
            fund_from_dev_account(connection.web3, party.address, 10**20)
        researcher.token.faucet(1_000 * 10**18)
        researcher.key_registry.register(researcher_home.encryption_public_key)
        source = tmp / "records.bin"
        source.write_bytes(b"de-identified cohort " * 20_000)
        with OwnerNode(owner) as node:
            policy = Policy(RESEARCH, False, 3 * 10**18, 3600, 3)
            published = node.publish(source, policy, {"title": "cohort"}, None)
            yield World(owner, researcher, node, node.gateway(), published.dataset_id, source, tmp)


def test_a_valid_grant_is_served_after_its_audit_entry(world: World) -> None:
    grant = world.grant()
    served = world.gateway.authorize(world.body(grant))
    entry = world.node.audit.entry(served.audit_index)
    assert (entry["kind"], entry["outcome"], entry["grant"]) == ("read", "served", grant)
    assert entry["requester"] == world.researcher.address
    assert b"".join(world.gateway.stream(served))[:4] == b"AILS"  # ciphertext, not data


def test_no_grant(world: World) -> None:
    assert "does not exist" in world.refused(world.body(10_000))


def test_wrong_purpose(world: World) -> None:
    grant = world.grant()
    assert "wrong purpose" in world.refused(world.body(grant, purpose=TRAINING))


def test_revoked_grant_is_refused_from_the_next_block(world: World) -> None:
    grant = world.grant()
    world.gateway.authorize(world.body(grant))
    world.owner.data_market.revoke(grant)
    assert "revoked" in world.refused(world.body(grant))


def test_a_patient_withdrawing_consent_stops_the_next_read(world: World) -> None:
    """A patient linked to records in the dataset withdraws research: the grant the
    researcher holds reads no more, and the refusal says why and what the owner does."""
    wallet = Account.create()
    patient = dataclasses.replace(world.researcher, account=wallet)  # the chain, another key
    fund_from_dev_account(world.owner.chain.web3, wallet.address, 10**19)
    link = b"\x5a" * 32
    world.owner.patients.propose_link(link, wallet.address)
    patient.patients.accept_link(link)
    patient.patients.set_consent(RESEARCH)
    world.owner.patients.add_to_cohort(world.dataset, {link: 1})
    grant = world.grant()
    world.gateway.authorize(world.body(grant))
    patient.patients.set_consent(0)
    reason = world.refused(world.body(grant))
    assert "withdrawn consent to this purpose" in reason and "publish it again" in reason
    patient.patients.set_consent(RESEARCH)  # consent back: the dataset reads again
    world.gateway.authorize(world.body(grant))


def test_expired_grant(world: World) -> None:
    with OwnerNode(world.owner) as other:
        short = Policy(RESEARCH, False, 0, 1, 0)
        dataset = other.publish(world.source, short, {"title": "short"}, None).dataset_id
    grant = world.grant(dataset)
    time.sleep(2.1)
    gateway = world.node.gateway()
    body = world.body(grant, dataset=dataset)
    with pytest.raises(AccessDeniedError, match="expired"):
        gateway.authorize(body)


def test_read_limit(world: World) -> None:
    grant = world.grant()
    for _ in range(3):
        world.gateway.authorize(world.body(grant))
    assert "read limit reached (3 reads" in world.refused(world.body(grant))


def test_replayed_request(world: World) -> None:
    grant = world.grant()
    body = world.body(grant)
    world.gateway.authorize(body)
    assert "replayed" in world.refused(body)


def test_request_signed_by_another_key(world: World) -> None:
    grant = world.grant()
    intruder = Account.create()
    assert "signed by" in world.refused(world.body(grant, account=intruder))
    entry = world.node.audit.entry(world.node.audit.size - 1)
    assert entry["requester"] == intruder.address  # the signer, not the researcher it named
    assert world.researcher.address not in json.dumps(entry)


def test_wrong_chain_id(world: World) -> None:
    grant = world.grant()
    other_chain = Domain(1, world.gateway.domain.contract)
    assert "signed by" in world.refused(world.body(grant, domain=other_chain))


def test_expired_request(world: World) -> None:
    grant = world.grant()
    assert "expired" in world.refused(world.body(grant, lifetime=-3600))


def test_garbage_is_refused_and_logged(world: World) -> None:
    assert "body must be" in world.refused({"nonsense": True})


def test_an_unsigned_request_is_logged_as_unauthenticated_with_its_peer(world: World) -> None:
    body = world.body(world.grant())
    body["signature"] = "0x1234"
    before = world.node.audit.size
    with pytest.raises(AccessDeniedError, match="signature is not valid"):
        world.gateway.authorize(body, peer="203.0.113.9")
    entry = world.node.audit.entry(before)
    assert (entry["authenticated"], entry["peer"]) == (False, "203.0.113.9")
    assert "requester" not in entry and world.researcher.address not in json.dumps(entry)


def test_no_read_without_a_durable_audit_entry(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    grant = world.grant()

    def broken(entry: dict[str, Any]) -> int:
        raise OSError("disk full")

    monkeypatch.setattr(world.node.audit, "append", broken)
    with pytest.raises(OSError, match="disk full"):
        world.gateway.authorize(world.body(grant))


@pytest.fixture
def served_gateway(world: World) -> Iterator[str]:
    """The gateway over HTTP, its URL registered on chain."""
    with BackgroundServer(create_app(world.gateway)) as url:
        announce(world.owner, url)
        yield url


def test_fetch_round_trip_over_http(world: World, served_gateway: str) -> None:
    grant = world.grant()
    out = world.tmp / "fetched.bin"
    got = fetch(world.researcher, world.dataset, grant, out)
    assert out.read_bytes() == world.source.read_bytes() and not got.is_directory


def test_access_receipt_proves_inclusion(world: World, served_gateway: str) -> None:
    grant = world.grant()
    got = fetch(world.researcher, world.dataset, grant, world.tmp / "receipted.bin")
    entry = check_receipt(world.researcher, world.dataset, got.audit_index, got.audit_entry)
    assert (entry["grant"], entry["outcome"]) == (grant, "served")
    kept = kept_receipt(world.researcher, world.dataset, got.audit_index)
    assert kept is not None and kept["entry"] == got.audit_entry
    with pytest.raises(TamperedDataError, match="not the entry"):
        check_receipt(world.researcher, world.dataset, got.audit_index, {**entry, "grant": 0})


def test_tampered_ciphertext_is_detected_before_decryption(
    world: World, served_gateway: str
) -> None:
    grant = world.grant()
    record = world.node.store.get(world.dataset)
    assert record is not None
    blob = world.node.blobs.path_of(record.blob_hash)
    original = blob.read_bytes()
    blob.chmod(0o600)
    blob.write_bytes(original[:100] + bytes([original[100] ^ 1]) + original[101:])
    try:
        with pytest.raises(TamperedDataError, match="does not match the hash registered"):
            fetch(world.researcher, world.dataset, grant, world.tmp / "tampered.bin")
        assert not (world.tmp / "tampered.bin").exists()
    finally:
        blob.write_bytes(original)


def test_tampered_wrapped_key_is_detected(
    world: World, served_gateway: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    grant = world.grant()
    real = Gateway.authorize

    def flip_key(self: Gateway, body: Any, peer: str = "") -> Any:
        granted = real(self, body, peer)
        key = bytearray(granted.wrapped_key)
        key[-1] ^= 1
        return dataclasses.replace(granted, wrapped_key=bytes(key))

    monkeypatch.setattr(Gateway, "authorize", flip_key)
    with pytest.raises(CryptoError):
        fetch(world.researcher, world.dataset, grant, world.tmp / "badkey.bin")
    assert not (world.tmp / "badkey.bin").exists()


# -- the checkpoint key is the one on chain, for receipts and for outside audits ----------


@contextmanager
def _impostor(
    world: World, served_gateway: str, key: Ed25519PrivateKey, change: bool
) -> Iterator[str]:
    """A gateway for the owner serving a copy of its log signed by ``key`` (with its first
    entry rewritten if ``change``), registered on chain as the owner's gateway URL."""
    real = world.node.audit
    with AuditLog(
        world.tmp / f"impostor-{secrets.token_hex(4)}", key, origin=real.origin
    ) as forged:
        entries = real.entries(0, real.size)
        if change:
            entries[0] = {**entries[0], "outcome": "rewritten"}
        forged.extend(entries)
        forged.checkpoint_now()
        impostor = copy.copy(world.gateway)
        impostor.audit = forged
        with BackgroundServer(create_app(impostor)) as url:
            world.owner.node_registry.register(url)
            try:
                yield url
            finally:
                world.owner.node_registry.register(served_gateway)


def _chain_view(world: World) -> tuple[Ed25519PublicKey, list[tuple[int, bytes]]]:
    anchors = world.researcher.audit_anchor
    raw = anchors.checkpoint_key(world.owner.address)
    assert raw is not None
    history = anchors.history(world.owner.address, world.owner.deployment.block)
    return Ed25519PublicKey.from_public_bytes(raw), history


def _audit_cli(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    import ailedger.cli.audit
    from ailedger.cli.app import main

    @contextmanager
    def researcher(ctx: Any, *, unlock: bool) -> Iterator[Session]:
        yield world.researcher

    monkeypatch.setattr(ailedger.cli.audit, "session", researcher)
    monkeypatch.setattr("sys.argv", ["ailedger", "audit", "verify", "--node", world.owner.address])
    monkeypatch.setenv("COLUMNS", "200")
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out + err


def test_an_outside_auditor_verifies_the_owners_log_against_the_chain(
    world: World,
    served_gateway: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fetch(world.researcher, world.dataset, world.grant(), world.tmp / "audited.bin")
    world.node.audit.checkpoint_now()
    assert world.node.anchor() is not None
    key, anchors = _chain_view(world)
    result = verify_served_log(GatewayLogSource(served_gateway), key, anchors)
    assert result.ok, result.problems
    assert result.signed_size >= result.anchored_size > 0
    code, out = _audit_cli(world, monkeypatch, capsys)
    assert code == 0, out
    assert "audit log verified against the chain" in out and "covered:" in out


def test_a_gateway_signing_with_another_key_is_reported(
    world: World,
    served_gateway: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    got = fetch(world.researcher, world.dataset, world.grant(), world.tmp / "impostor.bin")
    world.node.audit.checkpoint_now()
    world.node.anchor()
    key, anchors = _chain_view(world)
    # The impostor serves the log faithfully, but signs it (and offers) a key of its own.
    with _impostor(world, served_gateway, Ed25519PrivateKey.generate(), change=False) as url:
        with pytest.raises(TamperedDataError, match="does not verify"):
            check_receipt(world.researcher, world.dataset, got.audit_index, got.audit_entry)
        result = verify_served_log(GatewayLogSource(url), key, anchors)
        assert not result.ok and "not signed by the key the node bound on chain" in result.message
        code, out = _audit_cli(world, monkeypatch, capsys)
        assert code == 1 and "not signed by the key the node bound on chain" in out


def test_a_gateway_serving_a_log_unlike_its_anchors_is_reported(
    world: World, served_gateway: str
) -> None:
    world.grant()
    world.node.log_chain_decisions()
    world.node.audit.checkpoint_now()
    world.node.anchor()
    key, anchors = _chain_view(world)
    # Signed by the owner's own key, but the first entry rewritten: only the anchors tell.
    with _impostor(world, served_gateway, audit_signing_key(world.owner), change=True) as url:
        result = verify_served_log(GatewayLogSource(url), key, anchors)
    assert not result.ok
    assert "forks from the anchor" in result.message or "does not extend" in result.message


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        (wire.AUDIT_ENTRIES, {"start": -5, "stop": 2}, 200),
        (wire.AUDIT_ENTRIES, {"start": 2**70, "stop": 2**80}, 200),
        (wire.AUDIT_ENTRIES, {"start": 3, "stop": -1}, 200),
        (wire.AUDIT_CONSISTENCY, {"first": 0, "second": 1}, 404),
        (wire.AUDIT_CONSISTENCY, {"first": 1, "second": 2**70}, 404),
        (wire.AUDIT_CONSISTENCY, {"first": 2, "second": 1}, 404),
    ],
)
def test_audit_routes_take_hostile_ranges(
    world: World, served_gateway: str, path: str, params: dict[str, int], status: int
) -> None:
    import httpx

    response = httpx.get(served_gateway + path, params=params, timeout=30)
    assert response.status_code == status
    if path.endswith("entries"):
        served = response.json()["entries"]
        assert len(served) <= 2 and all(isinstance(e, str) for e in served)


def _failed(world: World, body: Any) -> str:
    before = world.node.audit.size
    with pytest.raises(ServeFailedError) as caught:
        world.gateway.authorize(body)
    assert world.node.audit.size == before + 1  # one entry, whatever failed
    entry = world.node.audit.entry(before)
    assert (entry["kind"], entry["outcome"]) == ("read", "failed")
    assert entry["reason"] == caught.value.reason
    return caught.value.reason


def _with_record(world: World, monkeypatch: pytest.MonkeyPatch, **changes: Any) -> None:
    record = world.node.store.get(world.dataset)
    assert record is not None
    damaged = dataclasses.replace(record, **changes)
    monkeypatch.setattr(world.gateway.store, "get", lambda dataset_id: damaged)


def test_a_damaged_wrapped_key_is_logged_as_failed_and_not_counted(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    grant = world.grant()
    record = world.node.store.get(world.dataset)
    assert record is not None
    key = bytearray(record.wrapped_key)
    key[-1] ^= 1
    with monkeypatch.context() as patch:
        _with_record(world, patch, wrapped_key=bytes(key))
        for _ in range(3):
            assert "stored key" in _failed(world, world.body(grant))
    for _ in range(3):  # the failures used none of the grant's 3 reads
        world.gateway.authorize(world.body(grant))
    assert "read limit reached" in world.refused(world.body(grant))


def test_a_missing_blob_is_logged_as_failed_and_not_counted(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    grant = world.grant()
    with monkeypatch.context() as patch:
        _with_record(world, patch, blob_hash="00" * 32)
        for _ in range(3):
            assert "ciphertext" in _failed(world, world.body(grant))
    for _ in range(3):
        world.gateway.authorize(world.body(grant))
    assert "read limit reached" in world.refused(world.body(grant))


def test_a_chain_that_does_not_answer_is_logged_as_failed(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    grant = world.grant()

    def unreachable(*args: Any) -> bool:
        raise ChainUnreachableError("the RPC endpoint does not answer")

    monkeypatch.setattr(world.gateway._market, "check_access", unreachable)
    assert "retry later" in _failed(world, world.body(grant))


def test_a_failed_serve_answers_500_with_its_reason_over_http(
    world: World, served_gateway: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    grant = world.grant()
    _with_record(world, monkeypatch, blob_hash="00" * 32)
    response = httpx.post(served_gateway + wire.ACCESS, json=world.body(grant))
    assert response.status_code == 500 and "ciphertext" in response.json()["error"]
    assert world.node.audit.entry(world.node.audit.size - 1)["outcome"] == "failed"


def test_an_oversized_body_is_refused_and_logged(world: World, served_gateway: str) -> None:
    before = world.node.audit.size
    response = httpx.post(served_gateway + wire.ACCESS, content=b"{" * (MAX_BODY + 1))
    assert response.status_code == 413
    assert world.node.audit.size == before + 1
    entry = world.node.audit.entry(before)
    assert (entry["outcome"], entry["reason"]) == (
        "refused",
        f"request body too large (over {MAX_BODY} bytes)",
    )


def _junk_naming(world: World, requester: str) -> dict[str, Any]:
    request = new_request(Account.create(), world.dataset, 1, RESEARCH)
    request = dataclasses.replace(request, requester=requester)
    return {"request": request.to_json(), "signature": "0x" + secrets.token_hex(65)}


def test_a_flood_naming_someone_else_is_throttled_and_never_blames_them(world: World) -> None:
    limiter = PeerRateLimiter(rate=1.0, burst=10, clock=lambda: 0.0)  # time stands still
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(gateway_router(world.gateway, limiter))
    victim = world.researcher.address
    before = world.node.audit.size
    statuses: Counter[int] = Counter()
    with BackgroundServer(app) as url, httpx.Client(base_url=url) as client:
        for _ in range(1_000):
            response = client.post(wire.ACCESS, json=_junk_naming(world, victim))
            statuses[response.status_code] += 1
            if response.status_code == 429:
                assert int(response.headers["Retry-After"]) >= 1
    assert statuses == {403: 10, 429: 990}
    added = world.node.audit.entries(before, world.node.audit.size)
    assert len(added) == 10
    assert not [entry for entry in added if entry.get("requester") == victim]


def test_the_node_throttles_one_peer_by_default(world: World, served_gateway: str) -> None:
    before = world.node.audit.size
    started = time.monotonic()
    with httpx.Client() as client:
        codes = [
            client.post(served_gateway + wire.ACCESS, content=b"junk").status_code
            for _ in range(200)
        ]
    elapsed = time.monotonic() - started
    assert set(codes) == {400, 429}
    allowed = DEFAULT_BURST + DEFAULT_RATE * elapsed  # what the bucket let through, at most
    assert codes.count(400) == world.node.audit.size - before <= allowed + 1


def test_a_token_bucket_refills_at_its_rate() -> None:
    now = [0.0]
    limiter = PeerRateLimiter(rate=2.0, burst=3, clock=lambda: now[0])
    for _ in range(3):
        limiter.admit("198.51.100.1")
    with pytest.raises(TooManyRequestsError) as caught:
        limiter.admit("198.51.100.1")
    assert caught.value.retry_after == pytest.approx(0.5)
    limiter.admit("198.51.100.2")  # another peer has its own bucket
    now[0] += 0.5
    limiter.admit("198.51.100.1")
    with pytest.raises(TooManyRequestsError):
        limiter.admit("198.51.100.1")


def test_the_limiter_forgets_idle_peers_so_its_memory_is_bounded() -> None:
    now = [0.0]
    limiter = PeerRateLimiter(rate=1.0, burst=1, clock=lambda: now[0], max_peers=100)
    for i in range(1_000):
        now[0] += 0.01
        limiter.admit(f"peer-{i}")
    assert len(limiter._buckets) <= 100


def test_compute_reads_count_against_the_fetch_limit(world: World) -> None:
    grant = world.grant()
    compute_read = {"kind": "compute-read", "grant": grant, "job": 1, "outcome": "served"}
    world.gateway.append_own(compute_read)  # as the node's own-entries route does
    world.gateway.authorize(world.body(grant))
    world.gateway.append_own(compute_read)
    assert world.gateway.grant_reads(grant)["remaining"] == 0
    assert "read limit reached (3 reads" in world.refused(world.body(grant))
    size = world.node.audit.size
    with pytest.raises(ReadLimitReachedError):
        world.gateway.append_own(compute_read)
    assert world.node.audit.size == size


def test_grant_reads_are_told_only_for_datasets_held_here(world: World) -> None:
    for grant in (10_000, 2**256, -1):
        with pytest.raises(NotFoundError):
            world.gateway.grant_reads(grant)


def test_a_compute_read_without_its_grant_is_not_logged(world: World) -> None:
    size = world.node.audit.size
    with pytest.raises(UnprocessableError):
        world.gateway.append_own({"kind": "compute-read", "job": 1, "outcome": "served"})
    assert world.node.audit.size == size

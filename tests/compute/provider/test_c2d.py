"""Compute-to-data reads count against the grant's read limit, with its fetches: one
counter, kept by the owner's audit log, whether the node runs (and holds the log) or not.
One embedded chain, an owner and a researcher, in one process."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from ailedger.chain.connection import open_embedded
from ailedger.chain.contracts.compute_policy import OutputPolicy
from ailedger.chain.contracts.data_market import PURPOSES, Policy
from ailedger.chain.transactions import fund_from_dev_account
from ailedger.compute.outputs import ReleaseRules
from ailedger.compute.provider.c2d import ComputeRefusedError, DataInputs
from ailedger.compute.requester.job import _grants_for
from ailedger.errors import ConfigError
from ailedger.keys.home import NodeHome
from ailedger.node.app import create_app
from ailedger.node.service import BackgroundServer, announce
from ailedger.session import Session
from ailedger.settings import load_settings
from ailedger.sharing.owner import OwnerNode
from ailedger.sharing.reads import ReadLimitReachedError
from ailedger.sharing.requester import fetch, reads_left, request_access

PASSPHRASE = "compute to data reads"
RESEARCH = PURPOSES["rare-disease-research"]
BUNDLE = b"\xb0" * 32  # the job's code hash: only its allowance on chain matters here
MAX_READS = 2


@dataclasses.dataclass
class World:
    owner: Session
    researcher: Session
    dataset: bytes
    tmp: Path

    def grant(self) -> int:
        grant, _ = request_access(self.researcher, self.dataset, RESEARCH)
        return grant

    def inputs(self, grant: int, job_id: int = 1) -> DataInputs:
        return DataInputs(
            self.owner, job_id, self.researcher.address, BUNDLE, [self.dataset], RESEARCH, [grant]
        )

    def compute_read(self, grant: int) -> dict[str, Any]:
        return {
            "kind": "compute-read",
            "dataset": "0x" + self.dataset.hex(),
            "grant": grant,
            "job": 99,
            "outcome": "served",
        }


def _session(home: NodeHome, connection: Any, cache: Path) -> Session:
    settings = load_settings(home=home.path, cache_dir=cache)
    return Session(settings, home, connection, home.unlock_account(PASSPHRASE), PASSPHRASE)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, contract_cache: Path) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("c2d")
    cache = contract_cache  # compiled once per run
    owner_home = NodeHome.init(tmp / "owner", PASSPHRASE, scrypt_n=2**12)
    researcher_home = NodeHome.init(tmp / "researcher", PASSPHRASE, scrypt_n=2**12)
    with open_embedded(owner_home.chain_dir, cache) as connection:
        owner = _session(owner_home, connection, cache)
        researcher = _session(researcher_home, connection, cache)
        for party in (owner, researcher):
            fund_from_dev_account(connection.web3, party.address, 10**20)
        researcher.key_registry.register(researcher_home.encryption_public_key)
        source = tmp / "cohort.csv"
        source.write_text("age\n" + "".join(f"{30 + i}\n" for i in range(20)))
        with OwnerNode(owner) as node:
            policy = Policy(RESEARCH, False, 0, 3600, MAX_READS)
            dataset = node.publish(source, policy, {"title": "cohort"}, None).dataset_id
        owner.compute_policy.allow_algorithm(dataset, BUNDLE)
        yield World(owner, researcher, dataset, tmp)


@pytest.fixture
def running_node(world: World) -> Iterator[OwnerNode]:
    """The owner's node serving its gateway (and holding the audit log), URL on chain."""
    with OwnerNode(world.owner) as node, BackgroundServer(create_app(node.gateway())) as url:
        announce(world.owner, url)
        yield node


def test_compute_reads_and_fetches_share_one_limit_while_the_node_runs(
    world: World, running_node: OwnerNode
) -> None:
    grant = world.grant()
    audit = running_node.audit
    world.inputs(grant).prepare(world.tmp / "run-1")  # logged through the running node
    logged = audit.entry(audit.size - 1)
    assert (logged["kind"], logged["grant"]) == ("compute-read", grant)
    assert reads_left(world.researcher, world.dataset, grant) == 1
    fetched = fetch(world.researcher, world.dataset, grant, world.tmp / "fetched.csv")
    assert fetched.audit_entry["outcome"] == "served"
    assert reads_left(world.researcher, world.dataset, grant) == 0

    size = audit.size
    with pytest.raises(ComputeRefusedError, match="no read left"):
        world.inputs(grant, job_id=2).prepare(world.tmp / "run-2")
    with OwnerNode(world.owner) as other, pytest.raises(ReadLimitReachedError):
        other.append_own(world.compute_read(grant))  # past the check: the node refuses
    assert audit.size == size  # nothing was read, nothing logged
    assert not (world.tmp / "run-2" / ("0x" + world.dataset.hex())).exists()


def test_the_limit_holds_without_the_node_too(world: World) -> None:
    grant = world.grant()
    for job_id in (1, 2):
        world.inputs(grant, job_id).prepare(world.tmp / f"direct-{job_id}")
    with pytest.raises(ComputeRefusedError, match="no read left"):
        world.inputs(grant, 3).prepare(world.tmp / "direct-3")
    with OwnerNode(world.owner) as node:
        assert node.reads_left(grant) == 0
        with pytest.raises(ReadLimitReachedError):
            node.append_own(world.compute_read(grant))
        # The gateway, started later, counts the same log: no fetch is left either.
        assert node.gateway().reads.count(grant) == MAX_READS


def test_a_job_without_its_grant_id_is_not_run(world: World) -> None:
    world.grant()
    inputs = DataInputs(
        world.owner, 5, world.researcher.address, BUNDLE, [world.dataset], RESEARCH, []
    )
    with pytest.raises(ComputeRefusedError, match="grant is unknown"):
        inputs.prepare(world.tmp / "no-grant")


def test_the_requester_will_not_post_a_job_its_grants_cannot_cover(
    world: World, running_node: OwnerNode
) -> None:
    used = world.grant()
    for grant in range(1, used + 1):  # this and the earlier tests' grants: use them up
        while running_node.reads_left(grant):
            running_node.append_own(world.compute_read(grant))
    with pytest.raises(ConfigError, match="fewer than 1 reads left"):
        _grants_for(world.researcher, [world.dataset], RESEARCH, 1)
    fresh = world.grant()
    assert _grants_for(world.researcher, [world.dataset], RESEARCH, 2) == [fresh]
    with pytest.raises(ConfigError, match="fewer than 3 reads left"):
        _grants_for(world.researcher, [world.dataset], RESEARCH, 3)


class _Policies:
    """A ComputePolicy with fixed output policies per dataset."""

    def __init__(self, rules: dict[bytes, OutputPolicy]) -> None:
        self.rules = rules

    def output_policy(self, dataset: bytes) -> OutputPolicy:
        return self.rules[dataset]


def test_release_rules_take_the_strictest_of_every_dataset() -> None:
    rules = {
        b"\x01" * 32: OutputPolicy(4096, False, 5),
        b"\x02" * 32: OutputPolicy(1 << 20, True, 25),
        b"\x03" * 32: OutputPolicy(8192, False, 10),
    }
    session = SimpleNamespace(compute_policy=_Policies(rules), data_market=None)
    inputs = DataInputs(session, 1, "0x" + "00" * 20, BUNDLE, list(rules), RESEARCH, [1, 2, 3])  # type: ignore[arg-type]
    assert inputs.release_rules() == ReleaseRules(
        max_output_bytes=4096, aggregate_only=True, min_cell_size=25
    )


def test_a_job_posted_past_the_client_over_a_private_dataset_is_not_run(world: World) -> None:
    """`job submit` refuses a private dataset before paying; a requester posting to the
    contract directly gets no further: the owner's node refuses before reading."""
    import secrets

    private = secrets.token_bytes(32)
    policy = Policy(RESEARCH, False, 0, 86400, 0)
    world.owner.data_market.register_dataset(private, b"\x01" * 32, b"\x02" * 32, policy)
    world.owner.compute_policy.allow_algorithm(private, BUNDLE)
    world.owner.privacy_ledger.set_cap(private, 1.0, 1e-6)
    grant, _ = request_access(world.researcher, private, RESEARCH)
    inputs = DataInputs(
        world.owner, 7, world.researcher.address, BUNDLE, [private], RESEARCH, [grant]
    )
    with pytest.raises(ComputeRefusedError, match="is private: its rows go into no job"):
        inputs.check()

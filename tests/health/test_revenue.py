"""The patients' share of a published de-identified dataset: the hospital finds the linked
patients behind the surrogates of the file it published, names their links with their
record counts for the dataset, and each sale pays them; patients without a link neither
earn nor block; a file the hospital's keys do not know is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ailedger.chain.contracts.data_market import PURPOSES, Policy
from ailedger.errors import ConfigError
from ailedger.health.deidentify import deidentify, write_dataset
from ailedger.health.revenue import cohort_of, share_revenue
from ailedger.sharing.owner import OwnerNode
from ailedger.sharing.requester import request_access
from tests.health.test_patient_links import World, _linked, world  # noqa: F401 (fixture)

pytestmark = pytest.mark.integration
AIL = 10**18
RESEARCH = PURPOSES["rare-disease-research"]


def test_a_sale_of_a_published_export_pays_its_linked_patients(
    world: World,  # noqa: F811
    tmp_path: Path,
) -> None:
    link = _linked(world)  # alice's wallet, linked to the hospital's record pat-alice
    world.alice.patients.set_consent(RESEARCH)
    result = deidentify(world.node.store.consented_for_research(), world.node.directory)
    export = tmp_path / "deidentified.json"
    write_dataset(result.records, export)  # pat-alice and pat-bob (carol did not consent)
    with OwnerNode(world.hospital) as node:
        policy = Policy(RESEARCH, False, 10 * AIL, 3600, 0)
        dataset = node.publish(export, policy, {"title": "registry"}, None).dataset_id

    cohort = cohort_of(export, world.node.directory, world.node.links)
    assert cohort.weights == {link.link_bytes: 1} and cohort.unlinked == 1
    shared = share_revenue(world.hospital, dataset, cohort, 1_000)
    assert (shared.added, shared.already, shared.unlinked, shared.bps) == (1, 0, 1, 1_000)
    again = share_revenue(world.hospital, dataset, cohort, 1_000)
    assert (again.added, again.already) == (0, 1)  # each link is named once

    buyer = world.mallory
    buyer.token.faucet(100 * AIL)
    request_access(buyer, dataset, RESEARCH)
    assert world.alice.patients.claimable(world.alice.address) == AIL  # 10 % of 10 AIL
    with pytest.raises(ConfigError, match="not this home's"):
        share_revenue(buyer, dataset, cohort, 5_000)


def test_a_file_the_hospitals_keys_do_not_know_is_refused(
    world: World,  # noqa: F811
    tmp_path: Path,
) -> None:
    deidentify(world.node.store.consented_for_research(), world.node.directory)
    foreign = tmp_path / "foreign.json"
    foreign.write_text(json.dumps({"records": [{"id": "DEID-0000000000000000", "fhir": []}]}))
    with pytest.raises(ConfigError, match="key file does not know"):
        cohort_of(foreign, world.node.directory, world.node.links)
    garbage = tmp_path / "garbage.json"
    garbage.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="cannot read"):
        cohort_of(garbage, world.node.directory, world.node.links)

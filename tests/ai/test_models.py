"""Registering a model from a completed training job and verifying it end to end, on an
embedded chain with a real compute-to-data job over a dataset granted for training; and
each lie a passport could tell, refused with its reason."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ailedger.ai.lineage import DatasetUse, Lineage
from ailedger.ai.models import read_evaluation, register_model, verify_model
from ailedger.ai.passport import SignatureInvalidError, passport_key, sign_passport
from ailedger.ai.provenance import jobs_lineage
from ailedger.chain.contracts.data_market import PURPOSES, Policy
from ailedger.chain.deploy import COMPUTE_MIN_STAKE
from ailedger.compute.outputs import output_hash
from ailedger.errors import ConfigError
from ailedger.session import Session
from tests.completed_jobs import AIL, BUNDLE, completed_job
from tests.web.homes import embedded_chain

pytestmark = pytest.mark.integration

TRAINING = PURPOSES["model-training"]
RARE = PURPOSES["rare-disease-research"]


@dataclass
class World:
    owner: Session  # the data owner, also the provider that runs the jobs
    researcher: Session
    dataset: bytes
    root: Path


def _model_dir(root: Path, name: str, weights: list[float]) -> Path:
    model = root / name
    model.mkdir()
    (model / "model.json").write_text(json.dumps({"weights": weights, "bias": 0.1}))
    (model / "ailedger-exit.json").write_text('{"exit_code": 0, "reason": "exited"}\n')
    return model


def _completed_job(world: World, model: Path, purpose: int) -> int:
    """A k = 1 job by the researcher over the dataset under a grant for ``purpose``, run
    by the owner and settled on ``model``'s output hash: COMPLETED."""
    return completed_job(
        world.researcher.data_market,
        world.researcher.compute_market,
        world.owner.compute_market,
        world.dataset,
        purpose,
        output_hash(model),
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, contract_cache: Path) -> Iterator[World]:
    root = tmp_path_factory.mktemp("models")
    with embedded_chain(root, contract_cache) as chain:
        owner, researcher = chain.party("owner"), chain.party("researcher")
        dataset = b"\x64" * 32
        owner.data_market.register_dataset(
            dataset, b"\x22" * 32, b"\x33" * 32, Policy(RARE | TRAINING, False, 0, 86400, 0)
        )
        owner.compute_policy.allow_algorithm(dataset, BUNDLE)
        for s in (owner, researcher):
            s.token.faucet(1_000 * AIL)
            s.token.approve(s.deployment.address("ComputeMarket"), 1_000 * AIL)
        owner.token.approve(owner.deployment.address("ComputeProviders"), 1_000 * AIL)
        owner.compute_providers.register_provider(COMPUTE_MIN_STAKE)
        owner.compute_providers.post_offer(2, 4096, "", 0, 3 * AIL, True)
        yield World(owner, researcher, dataset, root)


def test_a_jobs_output_becomes_a_verified_model_in_one_call(world: World) -> None:
    model = _model_dir(world.root, "good", [0.5, -0.25])
    job = _completed_job(world, model, TRAINING)
    report = world.root / "eval.json"
    report.write_text(json.dumps({"accuracy": 0.93, "auc": 0.97}))

    done = register_model(world.researcher, model, [job], name="risk", evaluation=report)
    assert done.version == 1 and [j.job for j in done.lineage.training_jobs] == [job]
    assert [d.dataset for d in done.lineage.datasets] == ["0x" + world.dataset.hex()]

    check = verify_model(world.owner, model, done.passport.path, done.public_key.read_bytes())
    assert check.ok, [h for h in check.hops if not h.ok]
    assert check.version is not None and check.version.owner == world.researcher.address
    assert any("granted for model training" in h.what for h in check.hops)

    # A card edit re-registers as version 2; the old passport still verifies as version 1.
    (world.root / "card.md").write_text("# risk\n\nNow with a limitations section.\n")
    again = register_model(
        world.researcher,
        model,
        [job],
        name="risk",
        evaluation=report,
        card=(world.root / "card.md").read_text(),
        model_id=done.model_id,
    )
    assert again.version == 2 and again.passport.sha256 != done.passport.sha256
    assert verify_model(world.owner, model, again.passport.path, again.public_key.read_bytes()).ok


def test_a_card_edited_after_signing_is_refused_naming_it(world: World) -> None:
    model = _model_dir(world.root, "edited", [1.0])
    job = _completed_job(world, model, TRAINING)
    done = register_model(world.researcher, model, [job], name="edited")
    card = model / "MODEL_CARD.md"
    card.write_text(card.read_text() + "\nAlso safe for children.\n")
    with pytest.raises(SignatureInvalidError, match=r"MODEL_CARD\.md"):
        verify_model(world.owner, model, done.passport.path, done.public_key.read_bytes())


def test_forged_or_wrong_jobs_are_refused_before_signing(world: World) -> None:
    model = _model_dir(world.root, "forged", [2.0])
    job = _completed_job(world, model, TRAINING)
    with pytest.raises(ConfigError, match="not a job this home posted"):
        register_model(world.owner, model, [job], name="not mine")  # the researcher's job
    other = _model_dir(world.root, "other-weights", [3.0])
    with pytest.raises(ConfigError, match="not the output job"):
        register_model(world.researcher, other, [job], name="swapped weights")
    research_only = _model_dir(world.root, "research", [4.0])
    rare_job = _completed_job(world, research_only, RARE)
    with pytest.raises(ConfigError, match="not model training"):
        register_model(world.researcher, research_only, [rare_job], name="wrong purpose")


def test_a_lineage_naming_an_ungranted_dataset_fails_its_hop(world: World) -> None:
    """The contract checks the jobs; what else the signed lineage claims is checked
    against the chain by the verifier."""
    model = _model_dir(world.root, "claims", [5.0])
    job = _completed_job(world, model, TRAINING)
    training, datasets = jobs_lineage(world.researcher, [job])
    bogus = DatasetUse("0x" + ("ab" * 32), 999)
    report, _ = read_evaluation(None)
    lineage = Lineage("claims", "1", training, (*datasets, bogus), (), report, int(time.time()))
    key, public_pem = passport_key(world.researcher.home.path)
    passport = sign_passport(model, lineage, "# claims\n", key, world.root / "claims.sig")
    world.researcher.model_registry.register_version(
        bytes.fromhex("cd" * 32),
        bytes.fromhex(passport.sha256[2:]),
        hashlib.sha256(b"# claims\n").digest(),
        bytes.fromhex(report.sha256[2:]),
        b"\x01" * 32,
        [job],
    )
    check = verify_model(world.owner, model, passport.path, public_pem)
    assert not check.ok
    failed = [h for h in check.hops if not h.ok]
    assert len(failed) == 1 and "no job of the lineage read" in failed[0].reason


def test_a_passport_never_registered_is_not_verified(world: World) -> None:
    model = _model_dir(world.root, "unregistered", [6.0])
    job = _completed_job(world, model, TRAINING)
    training, datasets = jobs_lineage(world.researcher, [job])
    lineage = Lineage("x", "1", training, datasets, (), read_evaluation(None)[0], 0)
    key, public_pem = passport_key(world.researcher.home.path)
    passport = sign_passport(model, lineage, "# x\n", key, world.root / "x.sig")
    check = verify_model(world.owner, model, passport.path, public_pem)
    assert not check.ok and check.version is None
    assert check.hops[0].reason == "no version has it"


def test_the_models_page_lists_versions_and_checks_a_patients_receipt(world: World) -> None:
    from ailedger.ai.serving import serve
    from ailedger.sharing.owner import OwnerNode
    from ailedger.web.api import models as models_api
    from ailedger.web.deps import WebContext
    from ailedger.web.pages import models as models_pages
    from tests.web.homes import operator_of, router_client

    model = _model_dir(world.root, "served", [0.5, -0.25])
    (model / "model.json").write_text(
        json.dumps({"weights": [0.5, -0.25], "bias": 0.1, "features": ["age", "bmi"]})
    )
    job = _completed_job(world, model, TRAINING)
    done = register_model(world.researcher, model, [job], name="served")
    with OwnerNode(world.researcher) as node:
        served = serve(
            world.researcher,
            node,
            model,
            done.passport.path,
            done.public_key.read_bytes(),
            [{"age": 1.0, "bmi": 2.0}],
        )
    (receipt,) = served.receipts
    routers = [models_api.router(), models_pages.pages()]
    page = router_client(WebContext(world.owner), routers, operator_of(world.owner))

    html = page.get("/models").text
    assert done.passport.sha256[:18] in html and str(job) in html
    listed = page.get("/api/v1/models").json()["models"]
    assert "0x" + done.model_id.hex() in [m["model"] for m in listed]

    ok = page.post("/models/receipt", data={"receipt": json.dumps(receipt)})
    assert 'class="ok"' in ok.text and "verified" in ok.text and "your input matches" in ok.text
    someone_else = {**receipt, "features": {"age": 1.0, "bmi": 3.0}}
    refused = page.post("/models/receipt", data={"receipt": json.dumps(someone_else)})
    assert 'class="error"' in refused.text and "NOT verified" in refused.text
    assert 'class="error"' in page.post("/models/receipt", data={"receipt": "{no"}).text
    checked = page.post("/api/v1/decisions/verify", json={"receipt": receipt}).json()
    assert checked["ok"] and checked["anchored"]

"""The market for models and algorithms end to end: a seller's node on an embedded chain
serving its gateway and prediction desk over HTTP, a buyer paying through the data
market, and each lie or overreach a seller, a buyer or a stranger could try, refused.

One world per module (publishing and serving cost seconds); each test makes its own
offers and grants, so the tests read in any order.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from ailedger.ai.market import (
    BUNDLE_FILE,
    MODEL_FILES,
    PUBLIC_KEY_FILE,
    OfferRefusedError,
    PredictionRefusedError,
    buy,
    fetch_offer,
    predict,
    sell_algorithm,
    sell_model,
)
from ailedger.ai.models import register_model
from ailedger.ai.offers import algorithm_metadata, find_offers, model_metadata
from ailedger.ai.prediction_desk import new_nonce
from ailedger.ai.serving import verify_receipt_file
from ailedger.chain.contracts.data_market import PURPOSES, Policy
from ailedger.errors import ConfigError
from ailedger.peer import wire
from ailedger.peer.signing import sign_request
from ailedger.session import Session
from ailedger.sharing.desk import synced_catalog
from ailedger.sharing.owner import publish
from ailedger.sharing.requester import AccessRefusedError, fetch
from tests.web.homes import embedded_chain

pytestmark = pytest.mark.integration

AIL = 10**18
CARE = PURPOSES["clinical-care"]
MODEL = {
    "features": ["age", "bmi"],
    "weights": [1.5, -0.75],
    "bias": 0.2,
    "lower": [0.0, 10.0],
    "upper": [120.0, 50.0],
}


@dataclass
class Registered:
    model_dir: Path
    bundle: Path
    pem: bytes
    passport: str
    model_id: bytes
    version: int


@dataclass
class World:
    seller: Session
    buyer: Session
    mallory: Session
    model: Registered
    other: Registered  # a second version of the same model (other weights)
    root: Path
    url: str


def _register(
    seller: Session, root: Path, name: str, weights: list[float], **kw: Any
) -> Registered:
    model_dir = root / name
    model_dir.mkdir()
    (model_dir / "model.json").write_text(json.dumps({**MODEL, "weights": weights}))
    done = register_model(seller, model_dir, [], name=name, **kw)
    return Registered(
        model_dir,
        done.passport.path,
        done.public_key.read_bytes(),
        done.passport.sha256,
        done.model_id,
        done.version,
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, contract_cache: Path) -> Iterator[World]:
    from ailedger.node.app import create_app
    from ailedger.node.service import BackgroundServer, announce, prediction_desk
    from ailedger.sharing.owner import OwnerNode

    root = tmp_path_factory.mktemp("market")
    with embedded_chain(root, contract_cache) as chain:
        seller, buyer, mallory = (chain.party(n) for n in ("seller", "buyer", "mallory"))
        for s in (seller, buyer, mallory):
            s.key_registry.register(s.home.encryption_public_key)
            s.token.faucet(100 * AIL)
        model = _register(seller, root, "risk", [1.5, -0.75])
        other = _register(seller, root, "risk-v2", [0.5, 0.5], model_id=model.model_id)
        with OwnerNode(seller) as node:
            desk = prediction_desk(node)
            assert desk is not None
            with BackgroundServer(create_app(node.gateway(), predictions=desk)) as url:
                announce(seller, url)
                yield World(seller, buyer, mallory, model, other, root, url)


def _policy(price: int, uses: int) -> Policy:
    return Policy(CARE, needs_approval=False, price=price, duration_s=86400, max_reads=uses)


def _sell(world: World, *, predictions: bool, price: int = 2 * AIL, uses: int = 3) -> bytes:
    m = world.model
    listed = sell_model(
        world.seller,
        m.model_dir,
        m.bundle,
        m.pem,
        _policy(price, uses),
        predictions=predictions,
        title="risk of readmission",
    )
    return listed.dataset_id


def _probability(features: dict[str, float], weights: list[float]) -> float:
    names, lower, upper = ["age", "bmi"], [0.0, 10.0], [120.0, 50.0]  # as in MODEL
    z = 0.2 + sum(
        w * (2 * (features[n] - lo) / (hi - lo) - 1)
        for w, n, lo, hi in zip(weights, names, lower, upper, strict=True)
    )
    return 1 / (1 + math.exp(-z))


def _tree(path: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()
    }


def test_a_licence_is_paid_fetched_verified_and_limited_to_its_uses(world: World) -> None:
    offer = _sell(world, predictions=False, uses=2)
    listed = {o.offer_id: o for o in find_offers(world.buyer)}["0x" + offer.hex()]
    assert (
        listed.trusted
        and listed.kind == "model-licence"
        and listed.passport == world.model.passport
    )

    seller_before = world.seller.token.balance_of(world.seller.address)
    _, grant, status = buy(world.buyer, offer, "clinical-care")
    assert status == "granted"
    assert world.seller.token.balance_of(world.seller.address) == seller_before + 2 * AIL

    got = fetch_offer(world.buyer, grant, world.root / "bought")
    assert got.passport == world.model.passport
    assert _tree(got.path / MODEL_FILES) == _tree(world.model.model_dir)
    fetch_offer(world.buyer, grant, world.root / "bought-again")
    with pytest.raises(AccessRefusedError, match="read limit reached"):
        fetch_offer(world.buyer, grant, world.root / "bought-thrice")
    assert not (world.root / "bought-thrice").exists()


def test_predictions_come_with_receipts_and_never_the_files(world: World) -> None:
    offer = _sell(world, predictions=True, uses=3)
    _, grant, _ = buy(world.buyer, offer, "clinical-care")
    patients = [{"age": 61.0, "bmi": 31.0}, {"age": 25.0, "bmi": 20.0}]

    answer = predict(world.buyer, grant, patients)  # receipts checked against the chain inside
    for output, patient in zip(answer["outputs"], patients, strict=True):
        assert output == pytest.approx(_probability(patient, [1.5, -0.75]), abs=1e-9)
    assert answer["uses_left"] == 1 and answer["passport"] == world.model.passport
    for receipt in answer["receipts"]:
        entry = json.loads(receipt["entry"])
        assert entry["deployer"] == world.buyer.address and entry["model"] == world.model.passport
        assert verify_receipt_file(world.mallory, receipt).ok  # anyone can check it

    with pytest.raises(PredictionRefusedError, match="1 of its 3 uses left; 2 were asked for"):
        predict(world.buyer, grant, patients)
    assert predict(world.buyer, grant, patients[:1])["uses_left"] == 0

    with pytest.raises(ConfigError, match="never its files"):
        fetch_offer(world.buyer, grant, world.root / "files")
    with pytest.raises(AccessRefusedError, match="never sent"):  # past the client's refusal
        fetch(world.buyer, offer, grant, world.root / "raw")


def _post(world: World, signer: Session, body: dict[str, Any]) -> httpx.Response:
    raw = json.dumps(body).encode()
    header = sign_request(
        signer.require_account(), world.seller.address, "POST", wire.MODEL_PREDICT, raw
    )
    return httpx.post(
        world.url + wire.MODEL_PREDICT,
        content=raw,
        headers={wire.SIGNATURE_HEADER: header},
        timeout=60,
    )


def test_the_desk_refuses_replays_strangers_and_inputs_it_cannot_decide(world: World) -> None:
    offer = _sell(world, predictions=True, uses=5)
    _, grant, _ = buy(world.buyer, offer, "clinical-care")
    body = {
        "offer": "0x" + offer.hex(),
        "grant": grant,
        "inputs": [{"age": 40, "bmi": 22}],
        "nonce": new_nonce(),
    }
    assert _post(world, world.buyer, body).status_code == 200
    replay = _post(world, world.buyer, body)
    assert replay.status_code == 403 and "replayed" in replay.json()["error"]

    stolen = _post(world, world.mallory, {**body, "nonce": new_nonce()})
    assert stolen.status_code == 403 and "is not a grant of" in stolen.json()["error"]
    unsigned = httpx.post(world.url + wire.MODEL_PREDICT, json=body, timeout=30)
    assert unsigned.status_code == 401

    outside = {**body, "nonce": new_nonce(), "inputs": [{"age": 140, "bmi": 22}]}
    refused = _post(world, world.buyer, outside)
    assert refused.status_code == 422 and "outside the bounds" in refused.json()["error"]
    not_numbers = {**body, "nonce": new_nonce(), "inputs": [{"age": "forty"}]}
    assert _post(world, world.buyer, not_numbers).status_code == 400
    # Refused requests took no use: 5 bought, 1 served.
    left = predict(world.buyer, grant, [{"age": 50.0, "bmi": 25.0}])["uses_left"]
    assert left == 3


def test_nobody_sells_anothers_model_and_a_forged_claim_is_refused_before_paying(
    world: World,
) -> None:
    m = world.model
    with pytest.raises(ConfigError, match="only its owner may sell it"):
        sell_model(
            world.mallory,
            m.model_dir,
            m.bundle,
            m.pem,
            _policy(AIL, 1),
            predictions=False,
            title="copy",
        )

    # Mallory lists the files herself, claiming the seller's passport in her metadata.
    package = world.root / "mallory-package"
    shutil.copytree(m.model_dir, package / MODEL_FILES)
    shutil.copyfile(m.bundle, package / BUNDLE_FILE)
    (package / PUBLIC_KEY_FILE).write_bytes(m.pem)
    meta = model_metadata("model-licence", "cheap risk", m.model_id, m.version, m.passport)
    forged = publish(world.mallory, package, _policy(AIL, 0), meta).dataset_id
    # As if Mallory's node served that metadata (it matches the hash she registered).
    assert synced_catalog(world.buyer).keep_metadata("0x" + forged.hex(), meta)
    listed = {o.offer_id: o for o in find_offers(world.buyer)}["0x" + forged.hex()]
    assert not listed.trusted and "nobody may sell another's model" in listed.problems[0]

    before = world.buyer.token.balance_of(world.buyer.address)
    with pytest.raises(OfferRefusedError, match="nobody may sell another's model"):
        buy(world.buyer, forged, "clinical-care")
    assert world.buyer.token.balance_of(world.buyer.address) == before


def test_files_that_are_not_the_offers_model_are_not_kept(world: World) -> None:
    # The seller's own listing names version 1's passport but packs version 2's files.
    v1, v2 = world.model, world.other
    package = world.root / "swapped"
    shutil.copytree(v2.model_dir, package / MODEL_FILES)
    shutil.copyfile(v2.bundle, package / BUNDLE_FILE)
    (package / PUBLIC_KEY_FILE).write_bytes(v2.pem)
    meta = model_metadata("model-licence", "swapped", v1.model_id, v1.version, v1.passport)
    offer = publish(world.seller, package, _policy(AIL, 0), meta).dataset_id
    _, grant, _ = buy(world.buyer, offer, "clinical-care")
    with pytest.raises(OfferRefusedError, match="not the offer's"):
        fetch_offer(world.buyer, grant, world.root / "swapped-bought")
    assert not (world.root / "swapped-bought").exists()


def _bundle(root: Path, name: str) -> Path:
    bundle = root / name
    bundle.mkdir()
    (bundle / "main.py").write_text("print('cohort statistics')\n")
    (bundle / "job.toml").write_text(
        '[job]\nentry = "main.py"\nruntime = "python"\ninputs = []\n'
        "[resources]\ncpu_cores = 1\nram_mb = 256\nmax_hours = 1\n"
        '[market]\nmax_price_per_hour = "1"\ndeadline_hours = 1\n'
    )
    return bundle


def test_an_algorithm_is_sold_and_checked_against_its_bundle_hash(world: World) -> None:
    from ailedger.compute.jobs import bundle_hash

    bundle = _bundle(world.root, "stats-bundle")
    offer = sell_algorithm(world.seller, bundle, _policy(AIL, 0), title="cohort stats").dataset_id
    _, grant, _ = buy(world.buyer, offer, "clinical-care")
    got = fetch_offer(world.buyer, grant, world.root / "stats-bought")
    assert got.bundle == "0x" + bundle_hash(bundle).hex() == "0x" + bundle_hash(got.path).hex()

    # A listing whose bundle is not the one its metadata names is not kept.
    other = _bundle(world.root, "other-bundle")
    (other / "main.py").write_text("print('something else')\n")
    claim = algorithm_metadata("cohort stats", bundle_hash(bundle))
    lying = publish(world.seller, other, _policy(0, 0), claim).dataset_id
    _, grant, _ = buy(world.buyer, lying, "clinical-care")
    with pytest.raises(OfferRefusedError, match="not the offer's"):
        fetch_offer(world.buyer, grant, world.root / "lying-bought")
    assert not (world.root / "lying-bought").exists()


def test_a_retired_version_is_no_longer_bought_or_served(world: World) -> None:
    old = _register(world.seller, world.root, "old-risk", [0.1, 0.2])
    listed = sell_model(
        world.seller,
        old.model_dir,
        old.bundle,
        old.pem,
        _policy(AIL, 2),
        predictions=True,
        title="old risk",
    )
    offer = listed.dataset_id
    _, grant, _ = buy(world.buyer, offer, "clinical-care")
    world.seller.model_registry.retire_version(old.model_id, old.version)
    with pytest.raises(OfferRefusedError, match="retired"):
        buy(world.buyer, offer, "clinical-care")
    body = {
        "offer": "0x" + offer.hex(),
        "grant": grant,
        "inputs": [{"age": 40, "bmi": 22}],
        "nonce": new_nonce(),
    }
    refused = _post(world, world.buyer, body)
    assert refused.status_code == 422 and "retired" in refused.json()["error"]

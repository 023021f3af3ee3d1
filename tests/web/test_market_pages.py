"""The market's web face (``/models``'s "On offer" and ``/api/v1/models/...``): offers
listed with what the chain confirms, a buyer paying for predictions and getting outputs
with receipts that verify, and the refusals: a read-only user buys nothing, a forged
offer is refused before paying, inputs the model cannot take are a clear 4xx."""

from __future__ import annotations

import base64
import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ailedger.ai.market import BUNDLE_FILE, MODEL_FILES, PUBLIC_KEY_FILE, sell_model
from ailedger.ai.models import register_model
from ailedger.ai.offers import model_metadata
from ailedger.ai.serving import verify_receipt_file
from ailedger.chain.contracts.data_market import PURPOSES, Policy
from ailedger.session import Session
from ailedger.sharing.desk import synced_catalog
from ailedger.sharing.owner import publish
from ailedger.web.api import market as market_api
from ailedger.web.api import models as models_api
from ailedger.web.deps import WebContext
from ailedger.web.pages import models as models_pages
from tests.web.homes import auditor, embedded_chain, operator_of, router_client

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

pytestmark = pytest.mark.integration

AIL = 10**18
MODEL = {
    "features": ["age", "bmi"],
    "weights": [1.5, -0.75],
    "bias": 0.2,
    "lower": [0.0, 10.0],
    "upper": [120.0, 50.0],
}
PATIENTS = [{"age": 61.0, "bmi": 31.0}, {"age": 25.0, "bmi": 20.0}]


@dataclass
class Site:
    seller: Session
    buyer: Session
    passport: str
    offer: str  # predictions of the seller's model, 4 uses per grant
    forged: str  # Mallory's listing claiming the seller's model
    buyer_page: TestClient
    read_only: TestClient


def _policy(price: int, uses: int) -> Policy:
    return Policy(PURPOSES["clinical-care"], False, price, 86400, uses)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, contract_cache: Path) -> Iterator[Site]:
    from ailedger.node.app import create_app
    from ailedger.node.service import BackgroundServer, announce, prediction_desk
    from ailedger.sharing.owner import OwnerNode

    root = tmp_path_factory.mktemp("market-pages")
    model_dir = root / "risk"
    model_dir.mkdir()
    (model_dir / "model.json").write_text(json.dumps(MODEL))
    with embedded_chain(root, contract_cache) as chain:
        seller, buyer, mallory = (chain.party(n) for n in ("seller", "buyer", "mallory"))
        for s in (seller, buyer, mallory):
            s.key_registry.register(s.home.encryption_public_key)
            s.token.faucet(100 * AIL)
        done = register_model(seller, model_dir, [], name="risk")
        pem = done.public_key.read_bytes()
        with OwnerNode(seller) as node:
            desk = prediction_desk(node)
            assert desk is not None
            with BackgroundServer(create_app(node.gateway(), predictions=desk)) as url:
                announce(seller, url)
                offer = sell_model(
                    seller,
                    model_dir,
                    done.passport.path,
                    pem,
                    _policy(2 * AIL, 4),
                    predictions=True,
                    title="risk of readmission",
                ).dataset_id
                # Mallory lists the seller's files as her own, naming the seller's passport.
                package = root / "mallory-package"
                shutil.copytree(model_dir, package / MODEL_FILES)
                shutil.copyfile(done.passport.path, package / BUNDLE_FILE)
                (package / PUBLIC_KEY_FILE).write_bytes(pem)
                meta = model_metadata(
                    "model-licence", "cheap risk", done.model_id, done.version, done.passport.sha256
                )
                forged = publish(mallory, package, _policy(AIL, 0), meta).dataset_id
                # As if Mallory's node served that metadata (it matches the hash on chain).
                assert synced_catalog(buyer).keep_metadata("0x" + forged.hex(), meta)
                routers = [market_api.router(), models_api.router(), models_pages.pages()]
                context = WebContext(buyer)
                yield Site(
                    seller,
                    buyer,
                    done.passport.sha256,
                    "0x" + offer.hex(),
                    "0x" + forged.hex(),
                    router_client(context, routers, operator_of(buyer)),
                    router_client(context, routers, auditor("0x" + "ef" * 20)),
                )


def test_offers_are_listed_with_what_the_chain_confirms(site: Site) -> None:
    listed = site.read_only.get("/api/v1/models/offers").json()["offers"]
    by_id = {o["offer"]: o for o in listed}
    good, forged = by_id[site.offer], by_id[site.forged]
    assert good["kind"] == "model-predictions" and good["problems"] == []
    assert good["passport"] == site.passport and good["max_uses"] == 4
    assert good["purposes"] == ["clinical-care"] and good["price"] == str(2 * AIL)
    assert "nobody may sell another's model" in forged["problems"][0]
    licences = site.read_only.get("/api/v1/models/offers", params={"kind": "model-licence"})
    assert [o["offer"] for o in licences.json()["offers"]] == [site.forged]
    assert site.read_only.get("/api/v1/models/offers", params={"kind": "x"}).status_code == 422

    html = site.buyer_page.get("/models").text
    assert "On offer" in html and "risk of readmission" in html and "2 AIL per 1 d" in html
    assert "confirmed on chain" in html and "nobody may sell another&#39;s model" in html
    # A buy form for the trusted offer only; the page's own parts are still there.
    assert re.findall(r'name="offer" value="(0x[0-9a-f]+)"', html) == [site.offer]
    assert 'id="predict-form"' in html and 'id="receipt-form"' in html
    assert 'id="registered"' in html and site.passport[:18] in html
    seen = site.read_only.get("/models").text
    assert "risk of readmission" in seen
    assert "/models/buy" not in seen and 'id="predict-form"' not in seen


def test_the_operator_buys_predictions_and_gets_receipts_that_verify(site: Site) -> None:
    paid_before = site.seller.token.balance_of(site.seller.address)
    bought = site.buyer_page.post(
        f"/api/v1/models/offers/{site.offer}/buy", json={"purpose": "clinical-care"}
    )
    assert bought.status_code == 200, bought.text
    grant = bought.json()["grant"]
    assert bought.json()["status"] == "granted" and "predictions" in bought.json()["next"]
    assert site.seller.token.balance_of(site.seller.address) == paid_before + 2 * AIL

    answer = site.buyer_page.post(
        "/api/v1/models/predict", json={"grant": grant, "inputs": PATIENTS}
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["uses_left"] == 2 and body["passport"] == site.passport
    for output, receipt in zip(body["outputs"], body["receipts"], strict=True):
        assert output == json.loads(receipt["entry"])["output"]
        assert verify_receipt_file(site.seller, receipt).ok  # anyone can check it

    # The page asks too (one object is one input), and offers each receipt as a file.
    form = {"grant": str(grant), "inputs": json.dumps(PATIENTS[0])}
    html = site.buyer_page.post("/models/predict", data=form).text
    assert 'class="ok"' in html and "Uses left: 1" in html
    (link,) = re.findall(r'href="data:application/json;base64,([A-Za-z0-9+/=]+)"', html)
    receipt = json.loads(base64.b64decode(link))
    assert verify_receipt_file(site.seller, receipt).ok
    assert f"{json.loads(receipt['entry'])['output']:.4f}" in html

    # The owner refuses more than the grant has left: said, and no use taken.
    over = site.buyer_page.post("/api/v1/models/predict", json={"grant": grant, "inputs": PATIENTS})
    assert over.status_code == 422 and "1 of its 4 uses left" in over.json()["error"]
    outside = {"grant": grant, "inputs": [{"age": 140.0, "bmi": 22.0}]}
    refused = site.buyer_page.post("/api/v1/models/predict", json=outside)
    assert refused.status_code == 422 and "outside the bounds" in refused.json()["error"]
    in_page = site.buyer_page.post(
        "/models/predict", data={"grant": str(grant), "inputs": json.dumps(outside["inputs"])}
    )
    assert 'class="error"' in in_page.text and "outside the bounds" in in_page.text


def test_a_read_only_user_buys_and_asks_nothing(site: Site) -> None:
    buy = site.read_only.post(
        f"/api/v1/models/offers/{site.offer}/buy", json={"purpose": "clinical-care"}
    )
    assert buy.status_code == 403
    ask = site.read_only.post("/api/v1/models/predict", json={"grant": 1, "inputs": PATIENTS})
    assert ask.status_code == 403
    form = {"offer": site.offer, "purpose": "clinical-care"}
    assert site.read_only.post("/models/buy", data=form).status_code == 403


def test_a_forged_offer_is_refused_before_paying(site: Site) -> None:
    before = site.buyer.token.balance_of(site.buyer.address)
    refused = site.buyer_page.post(
        f"/api/v1/models/offers/{site.forged}/buy", json={"purpose": "clinical-care"}
    )
    assert refused.status_code == 422
    assert "not buying" in refused.json()["error"]
    assert "nobody may sell another's model" in refused.json()["error"]
    in_page = site.buyer_page.post(
        "/models/buy", data={"offer": site.forged, "purpose": "clinical-care"}
    )
    assert 'class="error"' in in_page.text and "not buying" in in_page.text
    assert site.buyer.token.balance_of(site.buyer.address) == before


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"grant": 1, "inputs": []}, "inputs"),
        ({"grant": 1, "inputs": [{"age": "forty"}]}, "inputs.0.age"),
        ({"grant": 1, "inputs": [{"age": True}]}, "inputs.0.age"),
        ({"grant": 1, "inputs": [{}]}, "inputs.0"),
        ({"grant": "1", "inputs": PATIENTS}, "grant"),
        ({"grant": -1, "inputs": PATIENTS}, "grant"),
        ({"grant": 1, "inputs": PATIENTS, "offer": "0x00"}, "offer"),
        ({"grant": 10**9, "inputs": PATIENTS}, "no grant 1000000000"),
    ],
)
def test_bad_predictions_requests_are_a_clear_4xx(
    site: Site, body: dict[str, object], says: str
) -> None:
    answer = site.buyer_page.post("/api/v1/models/predict", json=body)
    assert answer.status_code == 422 and says in answer.json()["error"]


def test_bad_forms_and_ids_are_explained_not_a_500(site: Site) -> None:
    page = site.buyer_page
    for form, says in [
        ({"grant": "seven", "inputs": "[]"}, "grant or inputs"),
        ({"grant": "1", "inputs": "{no"}, "grant or inputs"),
        ({"grant": "1", "inputs": '[{"age": "old"}]'}, "inputs.0.age"),
        ({"grant": "1", "inputs": "[" * 200_000}, "at most 100 are accepted"),
    ]:
        html = page.post("/models/predict", data=form).text
        assert 'class="error"' in html and says in html
    # The receipt form's JSON too: deep nesting is refused before it reaches json.loads.
    deep = page.post("/models/receipt", data={"receipt": "[" * 200_000})
    assert 'class="error"' in deep.text and "at most 100 are accepted" in deep.text
    bad_purpose = page.post("/models/buy", data={"offer": site.offer, "purpose": "spying"})
    assert 'class="error"' in bad_purpose.text and "purpose" in bad_purpose.text
    bad_offer = page.post("/models/buy", data={"offer": "0x12", "purpose": "clinical-care"})
    assert 'class="error"' in bad_offer.text and "64 hex digits" in bad_offer.text
    assert page.post("/api/v1/models/offers/0x12/buy", json={"purpose": "x"}).status_code == 422
    nowhere = page.post(
        f"/api/v1/models/offers/0x{'ab' * 32}/buy", json={"purpose": "public-health"}
    )
    assert nowhere.status_code == 422 and "no listing" in nowhere.json()["error"]

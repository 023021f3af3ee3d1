"""The demo's model-market chapter: the researcher sells the predictions of its registered
model, the hospital buys a pack for clinical care and asks about a patient; the model's
files never leave the researcher's node, and each answer is a receipt checked on chain."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from ailedger.ai.models import Registered
from ailedger.demo.compute import HOSPITAL_MODEL
from ailedger.demo.models import PATIENT
from ailedger.session import Session

Say = Callable[[str], None]
AIL = 10**18
PACK = 3  # predictions per grant


def sell_predictions(
    researcher: Session, hospital: Session, model: Registered, root: Path, say: Say
) -> None:
    from ailedger.ai.market import buy, fetch_offer, predict, sell_model
    from ailedger.ai.offers import find_offers
    from ailedger.chain.contracts.data_market import PURPOSES, Policy
    from ailedger.errors import AiledgerError
    from ailedger.node.app import create_app
    from ailedger.node.service import BackgroundServer, announce, prediction_desk
    from ailedger.sharing.owner import OwnerNode
    from ailedger.units import format_amount

    say("\n[bold]14. A market for models: predictions sold by the use[/bold]")
    care = PURPOSES["clinical-care"]
    policy = Policy(care, needs_approval=False, price=PACK * AIL, duration_s=30 * 86400,
                    max_reads=PACK)  # fmt: skip
    listed = sell_model(
        researcher,
        root / HOSPITAL_MODEL,
        model.passport.path,
        model.public_key.read_bytes(),
        policy,
        predictions=True,
        title="Rare-disease regression risk",
    )
    offer = listed.dataset_id
    with (
        OwnerNode(researcher) as node,
        BackgroundServer(create_app(node.gateway(), predictions=prediction_desk(node))) as url,
    ):
        announce(researcher, url)
        say(
            f"  the researcher lists the model's predictions: {PACK} for "
            f"{format_amount(policy.price)}, for clinical care; the files stay encrypted at "
            f"its node (offer 0x{offer.hex()[:16]}…)"
        )
        (seen,) = [o for o in find_offers(hospital) if o.offer_id == "0x" + offer.hex()]
        checks = "confirmed on chain" if seen.trusted else "; ".join(seen.problems)
        say(
            "  the hospital checks the offer before paying: the model is the seller's, "
            f"current: {checks}"
        )
        _, grant, _ = buy(hospital, offer, "clinical-care")
        answer = predict(hospital, grant, [PATIENT])
        receipt = answer["receipts"][0]
        say(
            f"  the hospital asks about a patient: risk {answer['outputs'][0]:.3f}, with a "
            f"decision receipt (audit entry {receipt['index']} at the researcher's node) "
            f"verified against the chain; {answer['uses_left']} of {PACK} predictions left "
            f"under grant {grant}"
        )
        (root / "hospital-receipt.json").write_text(json.dumps(receipt, indent=2))
        try:
            fetch_offer(hospital, grant, root / "model-files")
            outcome = "[bold red]served (it should not be)[/bold red]"
        except AiledgerError as exc:
            outcome = f"refused ({str(exc).split(':')[0]})"
        say(f"  the hospital asks for the model's files with the same grant: {outcome}")

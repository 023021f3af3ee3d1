"""The market for models and algorithms: sell, buy, fetch and ask for predictions.

Sellers list through the data market (:mod:`ailedger.ai.offers` says what an offer is):

- :func:`sell_model` packs a registered model version (its files with their card and
  lineage, the passport bundle and the owner's public key) and publishes it encrypted
  at this home, as a licence (the files, fetched under a grant) or as predictions (the
  files stay here; the owner's node serves each prediction with a decision receipt);
- :func:`sell_algorithm` publishes a job bundle.

Buyers check an offer's claims on chain before paying (:func:`buy`), check what they
fetched against the claims (:func:`fetch_offer`: the model's passport must verify and be
the one the offer names; a bundle must hash to the one it names), and ask the owner's
node for predictions with a signed request (:func:`predict`).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ailedger.ai.offers import (
    ALGORITHM,
    MODEL_LICENCE,
    MODEL_PREDICTIONS,
    Offer,
    algorithm_metadata,
    model_metadata,
    offer_of,
)
from ailedger.errors import AiledgerError, ConfigError, PeerUnreachableError

if TYPE_CHECKING:
    from ailedger.chain.contracts.data_market import Policy
    from ailedger.session import Session
    from ailedger.sharing.owner import Published

# The layout of a packed model offer.
MODEL_FILES = "model"
BUNDLE_FILE = "passport.sig"
PUBLIC_KEY_FILE = "passport.pub.pem"
PREDICT_TIMEOUT_S = 120.0
ANSWER_LIMIT = 16 * 1024 * 1024  # receipts with their proofs, for at most MAX_INPUTS


class OfferRefusedError(AiledgerError):
    """The offer's claims do not hold on chain, or what was fetched is not what it
    claims: nothing was paid for, or the fetched files were not kept."""


class PredictionRefusedError(AiledgerError):
    """The owner's node refused the predictions; the message says why."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class FetchedOffer:
    kind: str
    path: Path
    passport: str | None  # a model's verified passport
    bundle: str | None  # an algorithm's verified bundle hash


# ------------------------------------------------------------------------ sellers


def sell_model(
    session: Session,
    model_dir: Path,
    bundle: Path,
    public_pem: bytes,
    policy: Policy,
    *,
    predictions: bool,
    title: str,
    description: str = "",
) -> Published:
    """List this home's registered, current model version for sale. The passport is
    verified over ``model_dir`` first, so what is sold is exactly what was registered."""
    from ailedger.ai.passport import verify_passport
    from ailedger.sharing.owner import publish

    verified = verify_passport(model_dir, bundle, public_pem)
    record = session.model_registry.by_passport(bytes.fromhex(verified.sha256[2:]))
    if record is None or record.retired:
        state = "retired" if record else "not registered on chain"
        raise ConfigError(f"the passport {verified.sha256} is {state}: sell a current model")
    if record.owner.lower() != session.address.lower():
        raise ConfigError(f"the model belongs to {record.owner}: only its owner may sell it")
    if predictions and not policy.max_reads:
        raise ConfigError("a predictions offer sells a number of predictions: give --uses N")
    kind = MODEL_PREDICTIONS if predictions else MODEL_LICENCE
    metadata = model_metadata(
        kind, title, record.model_id, record.version, verified.sha256, description
    )
    with tempfile.TemporaryDirectory(prefix="ailedger-offer-") as scratch:
        package = Path(scratch) / "offer"
        shutil.copytree(model_dir, package / MODEL_FILES, symlinks=True)
        shutil.copyfile(bundle, package / BUNDLE_FILE)
        (package / PUBLIC_KEY_FILE).write_bytes(public_pem)
        return publish(session, package, policy, metadata)


def sell_algorithm(
    session: Session, bundle_dir: Path, policy: Policy, *, title: str, description: str = ""
) -> Published:
    """List a job bundle for sale; buyers run it with ``ailedger job submit``."""
    from ailedger.compute.jobs import JobBundle, bundle_hash
    from ailedger.sharing.owner import publish

    JobBundle.read(bundle_dir)  # a valid bundle, or a ConfigError saying what is off
    metadata = algorithm_metadata(title, bundle_hash(bundle_dir), description)
    return publish(session, bundle_dir, policy, metadata)


# ------------------------------------------------------------------------- buyers


def checked_offer(session: Session, offer_id: bytes) -> Offer:
    """The offer ``offer_id`` with its claims checked on chain; refuses one whose claims
    do not hold, or a listing that is not an offer."""
    from ailedger.sharing.desk import synced_catalog

    entry = synced_catalog(session).get("0x" + offer_id.hex())
    if entry is None:
        raise ConfigError(f"no listing 0x{offer_id.hex()} on chain; find offers with `market list`")
    offer = offer_of(session, entry)
    if offer is None:
        raise ConfigError(
            f"0x{offer_id.hex()} is not a model or algorithm offer (or its owner's node has not "
            "served its description yet); `ailedger data show` tells what it is"
        )
    if offer.problems:
        raise OfferRefusedError(f"not buying: {'; '.join(offer.problems)}")
    return offer


def buy(session: Session, offer_id: bytes, purpose: str) -> tuple[Offer, int, str]:
    """Pay for a grant of a checked offer for ``purpose``; (offer, grant id, status)."""
    from ailedger.sharing.desk import ask_access

    offer = checked_offer(session, offer_id)
    made = ask_access(session, offer_id, purpose)
    return offer, made.request_id, made.status


def fetch_offer(session: Session, grant_id: int, dest: Path) -> FetchedOffer:
    """Fetch what grant ``grant_id`` bought into the new directory ``dest``, and keep it
    only if it is what the offer claims."""
    from ailedger.sharing.requester import fetch

    if dest.exists():
        raise ConfigError(f"{dest} already exists; choose a new directory")
    grant = session.data_market.grant_info(grant_id)
    if grant is None or grant.requester.lower() != session.address.lower():
        raise ConfigError(f"no grant {grant_id} of this home")
    offer = checked_offer(session, grant.dataset_id)
    if offer.kind == MODEL_PREDICTIONS:
        raise ConfigError(
            "this grant buys predictions served by the model's owner, never its files: "
            f"use `ailedger market predict {grant_id} INPUTS`"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ailedger-fetch-", dir=dest.parent) as scratch:
        fetched = Path(scratch) / "offer"
        fetch(session, grant.dataset_id, grant_id, fetched)
        checked = _check_fetched(offer, fetched)
        fetched.rename(dest)
    return FetchedOffer(
        offer.kind,
        dest,
        checked if offer.kind == MODEL_LICENCE else None,
        checked if offer.kind == ALGORITHM else None,
    )


def _check_fetched(offer: Offer, fetched: Path) -> str:
    """The verified passport (model) or bundle hash (algorithm) of what was fetched,
    which must be the offer's; :class:`OfferRefusedError` otherwise."""
    if offer.kind == ALGORITHM:
        from ailedger.compute.jobs import bundle_hash

        got = "0x" + bundle_hash(fetched).hex() if fetched.is_dir() else "(not a directory)"
        if got != offer.bundle:
            raise OfferRefusedError(
                f"the fetched bundle hashes to {got}, not the offer's {offer.bundle}: not kept"
            )
        return got
    from ailedger.ai.errors import PassportError
    from ailedger.ai.passport import verify_passport

    try:
        verified = verify_passport(
            fetched / MODEL_FILES,
            fetched / BUNDLE_FILE,
            (fetched / PUBLIC_KEY_FILE).read_bytes(),
        )
    except (PassportError, OSError) as exc:
        raise OfferRefusedError(f"the fetched model does not verify: {exc}; not kept") from exc
    if verified.sha256 != offer.passport:
        raise OfferRefusedError(
            f"the fetched model's passport is {verified.sha256}, not the offer's "
            f"{offer.passport}: not kept"
        )
    return verified.sha256


def predict(session: Session, grant_id: int, inputs: list[dict[str, float]]) -> dict[str, Any]:
    """Ask the owner's node to decide ``inputs`` under a predictions grant; the answer
    holds one output and one decision receipt per input (each checkable with
    ``ailedger decision verify``), and the uses the grant has left."""
    from ailedger.ai.prediction_desk import new_nonce
    from ailedger.peer import wire
    from ailedger.peer.signed_json import post_signed_json, refusal_text

    grant = session.data_market.grant_info(grant_id)
    if grant is None or grant.requester.lower() != session.address.lower():
        raise ConfigError(f"no grant {grant_id} of this home")
    offer = checked_offer(session, grant.dataset_id)
    if offer.kind != MODEL_PREDICTIONS:
        raise ConfigError(f"grant {grant_id} is for a {offer.kind} offer, not predictions")
    url = session.node_registry.url_of(offer.owner)
    if url is None:
        raise PeerUnreachableError(f"the model's owner {offer.owner} has registered no node URL")
    body = {"offer": offer.offer_id, "grant": grant_id, "inputs": inputs, "nonce": new_nonce()}
    status, answer, raw = post_signed_json(
        session.require_account(),
        offer.owner,
        str(url),
        wire.MODEL_PREDICT,
        body,
        limit=ANSWER_LIMIT,
        timeout=PREDICT_TIMEOUT_S,
    )
    if status != 200:
        raise PredictionRefusedError(refusal_text(status, answer, raw), status)
    if not isinstance(answer, dict) or not isinstance(answer.get("receipts"), list):
        raise PredictionRefusedError("the owner's node answered something that is not predictions")
    _check_receipts(session, offer, inputs, answer["receipts"])
    # The outputs shown are the receipts' own, as checked: never the list beside them.
    answer["outputs"] = [float(json.loads(r["entry"])["output"]) for r in answer["receipts"]]
    return answer


def _check_receipts(
    session: Session, offer: Offer, inputs: list[dict[str, float]], receipts: list[Any]
) -> None:
    """Each receipt must prove, against the owner's anchors on chain, a decision by the
    offer's model on the very input sent: an owner's node cannot pass off another
    model's output, or an output it never logged."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from ailedger.ai.decisions import verify_decision

    if len(receipts) != len(inputs):
        raise PredictionRefusedError(
            f"the owner's node answered {len(receipts)} receipts for {len(inputs)} inputs"
        )
    raw_key = session.audit_anchor.checkpoint_key(offer.owner)
    if not raw_key:
        raise PredictionRefusedError(f"{offer.owner} has bound no checkpoint key on chain")
    key = Ed25519PublicKey.from_public_bytes(raw_key)
    anchors = session.audit_anchor.history(offer.owner, session.deployment.block)
    for n, (receipt, features) in enumerate(zip(receipts, inputs, strict=True)):
        if not isinstance(receipt, dict):
            raise PredictionRefusedError(f"receipt {n} is not a receipt")
        check = verify_decision(receipt, anchors, key, features)
        problems = list(check.problems)
        if check.anchored is not True:
            problems.append("its checkpoint is not anchored on chain")
        if check.entry is not None and check.entry.get("model") != offer.passport:
            problems.append(f"it names model {check.entry.get('model')}, not the offer's")
        if problems:
            raise PredictionRefusedError(
                f"receipt {n} does not prove the prediction: {'; '.join(problems)}"
            )

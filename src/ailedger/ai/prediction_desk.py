"""The prediction desk: a model's owner serves predictions sold by the use.

A buyer holding a grant for a *predictions* offer (:mod:`ailedger.ai.offers`) sends a
request signed for this node (:mod:`ailedger.peer.signing`) whose body is::

    {"offer": "0x<32 bytes>", "grant": 7, "inputs": [{"age": 61, ...}, ...],
     "nonce": "0x<32 bytes>"}

The desk decides in this order, and stops at the first refusal:

1. who signed, and whether the nonce is new (a replay would spend the buyer's uses);
2. the offer is held here and sells predictions; the grant is the signer's, for this
   offer, and valid now;
3. the model is unpacked from this node's encrypted store and its passport verified
   (once, then kept in memory), and its version is still current on chain;
4. every input is a JSON object of numbers within the bounds the model was trained in;
5. the uses are taken: one ``served-use`` audit entry with ``uses`` = the number of
   inputs, appended only if the grant has that many left (the same counter as fetches
   and compute-to-data reads, :mod:`ailedger.sharing.reads`);
6. each input is decided and recorded as a decision receipt naming the buyer as the
   deployer, the log checkpointed and anchored on chain, and the receipts answered.

The model's files never leave the node. A crash between 5 and 6 leaves uses taken and
no prediction made: the buyer asks the owner, whose log shows both.
"""

from __future__ import annotations

import re
import secrets
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ailedger.ai.market import BUNDLE_FILE, MODEL_FILES, PUBLIC_KEY_FILE
from ailedger.ai.offers import MODEL_PREDICTIONS
from ailedger.ai.serving import (
    DECISION_SALTS,
    MAX_INPUTS,
    LinearModel,
    decide_all,
    load_linear_model,
    require_current,
)
from ailedger.errors import (
    ConfigError,
    ForbiddenError,
    MalformedRequestError,
    NotFoundError,
    UnprocessableError,
)
from ailedger.sharing.grants import purpose_in_force
from ailedger.sharing.reads import SERVED, SERVED_USE, ReadLimitReachedError

if TYPE_CHECKING:
    from ailedger.ai.salts import SaltStore
    from ailedger.sharing.owner import OwnerNode

NONCE_LIFETIME_S = 600
MAX_REQUEST_INPUTS = 1_000  # one answer's receipts stay a few megabytes
_HEX32 = re.compile(r"0x[0-9a-fA-F]{64}")


@dataclass(frozen=True)
class PredictionRequest:
    offer_id: bytes
    grant_id: int
    inputs: list[dict[str, float]]
    nonce: bytes


@dataclass(frozen=True)
class _Loaded:
    passport: str
    model: LinearModel


def new_nonce() -> str:
    return "0x" + secrets.token_hex(32)


def parse_prediction(body: Any) -> PredictionRequest:
    """The request in ``body``, or :class:`MalformedRequestError` saying what is off."""
    if not isinstance(body, dict):
        raise MalformedRequestError('the body must be {"offer", "grant", "inputs", "nonce"}')
    unknown = set(body) - {"offer", "grant", "inputs", "nonce"}
    if unknown:
        raise MalformedRequestError(f"unknown field(s): {', '.join(sorted(unknown))[:200]}")
    offer, grant, nonce = body.get("offer"), body.get("grant"), body.get("nonce")
    if not isinstance(offer, str) or not _HEX32.fullmatch(offer):
        raise MalformedRequestError("offer must be 0x and 64 hex digits")
    if not isinstance(nonce, str) or not _HEX32.fullmatch(nonce):
        raise MalformedRequestError("nonce must be 0x and 64 hex digits, fresh for each request")
    if isinstance(grant, bool) or not isinstance(grant, int) or not 0 <= grant < 2**256:
        raise MalformedRequestError("grant must be the id of your grant (a whole number)")
    return PredictionRequest(
        bytes.fromhex(offer[2:]), grant, _inputs(body.get("inputs")), bytes.fromhex(nonce[2:])
    )


def _inputs(raw: Any) -> list[dict[str, float]]:
    limit = min(MAX_INPUTS, MAX_REQUEST_INPUTS)
    if not isinstance(raw, list) or not 1 <= len(raw) <= limit:
        raise MalformedRequestError(f"inputs must be a list of 1 to {limit} objects")
    rows = []
    for row in raw:
        if (
            not isinstance(row, dict)
            or not row
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in row.values())
        ):
            raise MalformedRequestError("each input is a JSON object of numbers by feature name")
        rows.append({str(k): float(v) for k, v in row.items()})
    return rows


class PredictionDesk:
    """Serves the predictions offers of one owner node."""

    def __init__(self, node: OwnerNode, salts: SaltStore | None = None) -> None:
        from ailedger.ai.salts import SaltStore

        self.node = node
        self.session = node.session
        self.salts = salts or SaltStore(node.session.home.path / DECISION_SALTS)
        self._models: dict[bytes, _Loaded] = {}
        self._lock = threading.Lock()  # one model unpacked at a time

    def close(self) -> None:
        self.salts.close()

    def answer(self, body: Any, signer: str) -> dict[str, Any]:
        """Decide and, if allowed, serve one request's predictions for ``signer``."""
        request = parse_prediction(body)
        store = self.node.store
        if not store.use_nonce(request.nonce, int(time.time()) + NONCE_LIFETIME_S):
            raise ForbiddenError("replayed request: this nonce was used before; sign a new one")
        record = store.get(request.offer_id)
        if record is None or record.metadata.get("offer") != MODEL_PREDICTIONS:
            raise NotFoundError(f"no predictions offer 0x{request.offer_id.hex()} at this node")
        purpose = self._check_grant(request, signer)
        loaded = self._model(request.offer_id, str(record.metadata.get("passport")))
        try:
            require_current(self.session, loaded.passport)
            for features in request.inputs:
                loaded.model.check(features)
        except ConfigError as exc:
            raise UnprocessableError(str(exc)) from exc
        uses_entry = self._take_uses(request, signer, purpose)
        receipts, anchored = decide_all(
            self.node, self.salts, loaded.passport, loaded.model, request.inputs, deployer=signer
        )
        reads = self.node.reads
        return {
            "offer": "0x" + request.offer_id.hex(),
            "passport": loaded.passport,
            "outputs": [_output(r) for r in receipts],
            "receipts": receipts,
            "uses_entry": uses_entry,
            "uses_left": reads.remaining(request.grant_id),
            "anchored_size": anchored[0] if anchored else None,
        }

    def _check_grant(self, request: PredictionRequest, signer: str) -> int:
        return purpose_in_force(
            self.session.data_market,
            request.grant_id,
            signer,
            request.offer_id,
            "buy predictions again",
        )

    def _take_uses(self, request: PredictionRequest, signer: str, purpose: int) -> int:
        entry: dict[str, Any] = {
            "kind": SERVED_USE,
            "dataset": "0x" + request.offer_id.hex(),
            "grant": request.grant_id,
            "requester": signer,
            "purpose": purpose,
            "uses": len(request.inputs),
            "outcome": SERVED,
            "time": int(time.time()),
        }
        try:
            return self.node.reads.append_read(entry)
        except ReadLimitReachedError as exc:
            raise ForbiddenError(exc.reason) from exc

    def _model(self, offer_id: bytes, claimed: str) -> _Loaded:
        """The offer's model, unpacked from the encrypted store and verified once."""
        with self._lock:
            loaded = self._models.get(offer_id)
            if loaded is None:
                loaded = self._unpack(offer_id, claimed)
                self._models[offer_id] = loaded
            return loaded

    def _unpack(self, offer_id: bytes, claimed: str) -> _Loaded:
        from ailedger.ai.passport import verify_passport

        with tempfile.TemporaryDirectory(prefix="ailedger-model-") as scratch:
            package = Path(scratch) / "offer"
            self.node.decrypt_own(offer_id, package)
            verified = verify_passport(
                package / MODEL_FILES,
                package / BUNDLE_FILE,
                (package / PUBLIC_KEY_FILE).read_bytes(),
            )
            if verified.sha256 != claimed:
                raise UnprocessableError(
                    f"the stored model's passport {verified.sha256} is not the one its offer "
                    f"names ({claimed}): list it again"
                )
            return _Loaded(verified.sha256, load_linear_model(package / MODEL_FILES))


def _output(receipt: dict[str, Any]) -> float:
    import json

    return float(json.loads(receipt["entry"])["output"])

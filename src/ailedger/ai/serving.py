"""Serving a registered model: each decision recorded, explained and anchored.

:func:`serve` runs a model over inputs for this home (the deployer). In order:

1. It verifies the passport over the served files, so a decision names the exact files
   that made it.
2. It checks that the passport is registered and current on chain.
3. It records each decision as one leaf of the home's audit log
   (:mod:`ailedger.ai.decisions`): a salted digest of the input, the output, and an exact
   SHAP explanation that must add up.
4. It checkpoints the log and anchors it on chain.
5. It hands back one receipt per decision: the salt, the features and the inclusion
   proof, which the person checks offline (``ailedger decision verify``).

Served models are linear classifiers in ``model.json`` (the compute market's training
jobs and DP training write them: ``weights``, ``bias``, optionally ``features``, and
``lower``/``upper`` when inputs are scaled by declared bounds). ``weights``, ``lower`` and
``upper`` may also be objects by feature name: a model trained by a compute-to-data job
over an aggregate-only dataset leaves as numbers at places its job declared, which
cannot be a list or a string. They are rebuilt as
scikit-learn estimators and explained by linear SHAP against a background of zeros, so
each attribution is exactly its weight times its (scaled) input.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ailedger.ai.decisions import decision_receipt, record_decision
from ailedger.ai.explain import ShapExplainer
from ailedger.ai.passport import verify_passport
from ailedger.ai.salts import SaltStore
from ailedger.errors import ConfigError
from ailedger.untrusted_json import parse_untrusted

if TYPE_CHECKING:
    from ailedger.session import Session
    from ailedger.sharing.owner import OwnerNode

MODEL_FILE = "model.json"
DECISION_SALTS = "decisions"  # under the home: the salts of its decision receipts
MAX_INPUTS = 10_000


@dataclass(frozen=True)
class Served:
    passport: str
    receipts: list[dict[str, Any]]
    anchored: tuple[int, str] | None


@dataclass(frozen=True)
class LinearModel:
    """A served linear classifier: the estimator, its feature order, its explainer, and
    the declared bounds its inputs must lie in (None: any finite input)."""

    estimator: Any
    features: list[str]
    explainer: ShapExplainer
    bounds: tuple[list[float], list[float]] | None

    def check(self, features: Mapping[str, float]) -> None:
        """Refuse an input outside the bounds the model was trained within: it was never
        taught anything there, and training clamped such values."""
        if self.bounds is None:
            return
        for name, lo, hi in zip(self.features, *self.bounds, strict=True):
            value = features.get(name)
            if value is not None and not lo <= value <= hi:
                raise ConfigError(
                    f"{name} = {value:g} is outside the bounds the model was trained "
                    f"within ({lo:g} .. {hi:g}); this model cannot decide it"
                )


def load_linear_model(model_dir: Path) -> LinearModel:
    """The linear classifier in ``model_dir/model.json``, ready to decide and explain.

    A model trained on inputs scaled to [-1, 1] by declared bounds gets the scaling
    folded into its weights (``w * 2 / (hi - lo)``, the offset into the bias), so it
    takes the person's own values and its attributions are in their units."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    try:
        raw = parse_untrusted((model_dir / MODEL_FILE).read_bytes())
        bias = float(raw["bias"])
        if isinstance(raw["weights"], dict):
            weights, names, bounds = _by_name(raw)
        else:
            weights = [float(w) for w in raw["weights"]]
            names = [str(n) for n in raw.get("features", [f"x{i}" for i in range(len(weights))])]
            bounds = None
            if "lower" in raw and "upper" in raw:
                bounds = ([float(v) for v in raw["lower"]], [float(v) for v in raw["upper"]])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(
            f"{model_dir / MODEL_FILE} is not a served model "
            f'({{"weights": [...] or {{"feature": w, ...}}, "bias": b}}): {exc}'
        ) from None
    if len(names) != len(weights) or not weights:
        raise ConfigError(f"{MODEL_FILE} names {len(names)} features for {len(weights)} weights")
    if bounds is not None:
        weights, bias = _unscaled(weights, bias, *bounds)
    estimator = LogisticRegression()
    estimator.classes_ = np.array([0, 1])
    estimator.coef_ = np.array([weights])
    estimator.intercept_ = np.array([bias])
    estimator.n_features_in_ = len(weights)
    explainer = ShapExplainer.linear(estimator, names, np.zeros((1, len(weights))))
    return LinearModel(estimator, names, explainer, bounds)


def _by_name(
    raw: dict[str, Any],
) -> tuple[list[float], list[str], tuple[list[float], list[float]] | None]:
    """Weights, feature names and bounds of a model whose ``weights`` (and ``lower`` and
    ``upper``) are objects by feature name. A suppressed value (``null``) or a missing
    bound raises, so a model with a withheld weight is never served."""
    by_name: dict[str, Any] = raw["weights"]
    names = [str(n) for n in raw.get("features", list(by_name))]
    if sorted(names) != sorted(by_name):
        raise ValueError("features must name exactly the keys of weights")
    weights = [float(by_name[n]) for n in names]
    if "lower" not in raw and "upper" not in raw:
        return weights, names, None
    lower = [float(raw["lower"][n]) for n in names]
    upper = [float(raw["upper"][n]) for n in names]
    return weights, names, (lower, upper)


def _unscaled(
    weights: list[float], bias: float, lower: list[float], upper: list[float]
) -> tuple[list[float], float]:
    """Weights and bias over raw inputs for a model over ``2 (x - lo) / (hi - lo) - 1``."""
    if len(lower) != len(weights) or len(upper) != len(weights):
        raise ConfigError("model.json's bounds do not match its weights")
    out, offset = [], bias
    for w, lo, hi in zip(weights, lower, upper, strict=True):
        if not hi > lo:
            raise ConfigError(f"model.json declares an empty range {lo:g} .. {hi:g}")
        scale = 2 / (hi - lo)
        out.append(w * scale)
        offset += w * (-lo * scale - 1)
    return out, offset


def read_inputs(path: Path) -> list[dict[str, float]]:
    """Inputs as one JSON object of numbers, a list of them, or JSON lines."""
    text = path.read_text("utf-8")
    try:
        parsed = parse_untrusted(text.encode())
        rows = parsed if isinstance(parsed, list) else [parsed]
    except ValueError:
        rows = [parse_untrusted(line.encode()) for line in text.splitlines() if line.strip()]
    if not rows or len(rows) > MAX_INPUTS:
        raise ConfigError(f"{path} holds {len(rows)} inputs; give 1 to {MAX_INPUTS}")
    for row in rows:
        if not isinstance(row, dict) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in row.values()
        ):
            raise ConfigError(f"{path}: each input is a JSON object of numbers by feature name")
    return [{str(k): float(v) for k, v in row.items()} for row in rows]


def serve(
    session: Session,
    node: OwnerNode,
    model_dir: Path,
    bundle: Path,
    public_pem: bytes,
    inputs: Sequence[Mapping[str, float]],
) -> Served:
    """Decide each input with the registered model in ``model_dir``; one receipt each."""
    verified = verify_passport(model_dir, bundle, public_pem)
    require_current(session, verified.sha256)
    model = load_linear_model(model_dir)
    for features in inputs:
        model.check(features)
    salts = SaltStore(session.home.path / DECISION_SALTS)
    try:
        receipts, anchored = decide_all(
            node, salts, verified.sha256, model, inputs, deployer=session.address
        )
    finally:
        salts.close()
    return Served(verified.sha256, receipts, anchored)


def require_current(session: Session, passport: str) -> None:
    """Refuse a passport that is not registered, or whose version its owner retired."""
    record = session.model_registry.by_passport(bytes.fromhex(passport[2:]))
    if record is None or record.retired:
        state = "retired" if record else "not registered on chain"
        raise ConfigError(f"the passport {passport} is {state}: serve a current model")


def decide_all(
    node: OwnerNode,
    salts: SaltStore,
    passport: str,
    model: LinearModel,
    inputs: Sequence[Mapping[str, float]],
    *,
    deployer: str,
) -> tuple[list[dict[str, Any]], tuple[int, str] | None]:
    """Record a decision for each (checked) input, then checkpoint the log and anchor it,
    so every receipt handed back is provable against the chain at once."""
    decided = [
        record_decision(
            node.audit,
            salts,
            passport,
            model.estimator,
            features,
            deployer=deployer,
            explainer=model.explainer,
        )
        for features in inputs
    ]
    node.audit.checkpoint_now()
    anchored = node.anchor()
    receipts = [
        decision_receipt(node.audit, salts, d.index, features) | {"node": node.session.address}
        for d, features in zip(decided, inputs, strict=True)
    ]
    return receipts, anchored


def verify_receipt_file(session: Session, receipt: dict[str, Any]) -> Any:
    """Check a decision receipt against the key and anchors its node has on chain; the
    node itself is not asked anything."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from ailedger.ai.decisions import verify_decision

    node = receipt.get("node")
    if not isinstance(node, str):
        raise ConfigError('the receipt names no "node" (the account that logged it)')
    raw = session.audit_anchor.checkpoint_key(node)
    if not raw:
        raise ConfigError(f"{node} has bound no checkpoint key on chain: nothing to check against")
    anchors = session.audit_anchor.history(node, session.deployment.block)
    return verify_decision(receipt, anchors, Ed25519PublicKey.from_public_bytes(raw))


def dump_receipt(receipt: Mapping[str, Any]) -> str:
    return json.dumps(receipt, indent=2, sort_keys=True) + "\n"

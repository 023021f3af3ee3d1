"""The model a federated job made, as a file: ``model.json`` in a directory of its own.

`ailedger fl run` writes it; ``ailedger model serve`` reads it (a linear classifier with
its features and the bounds its inputs were scaled by); its weights then bias, as
little-endian float64, hash to the global model the job's last round anchored, which is
how `fl result` and a model passport's verifier tell it is that model.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from ailedger.federated.coordinator import weights_digest
from ailedger.federated.task import Task
from ailedger.untrusted_json import parse_untrusted

MODEL_FILE = "model.json"


def write_model(
    model_dir: Path, task: Task, weights: Sequence[float], accuracy: float, rounds: int
) -> Path:
    """``weights`` is the coordinator's vector: one weight per feature, then the bias."""
    document = {
        "features": list(task.features),
        "weights": [float(w) for w in weights[:-1]],
        "bias": float(weights[-1]),
        "lower": list(task.lower),
        "upper": list(task.upper),
        "validation_accuracy": accuracy,
        "rounds": rounds,
    }
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / MODEL_FILE).write_text(json.dumps(document, indent=2) + "\n")
    return model_dir


def is_anchored_model(model_dir: Path, model_hash: str) -> bool:
    """Whether ``model_dir/model.json`` holds exactly the model anchored as ``model_hash``
    (``0x`` + 64 hex digits); a missing or unreadable file is not it."""
    try:
        raw = parse_untrusted((model_dir / MODEL_FILE).read_bytes())
        weights = [float(w) for w in raw["weights"]] + [float(raw["bias"])]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False
    return "0x" + weights_digest(weights).hex() == model_hash.lower()

"""The model a federated job made, as a file: ``model.json`` in a directory of its own.

`ailedger fl run` writes it; ``ailedger model serve`` reads it (a linear classifier with
its features and the bounds its inputs were scaled by). It is that job's model when its
weights then bias, as little-endian float64, hash to the global model the job's last round
anchored, and the task it carries hashes to the task the job posted, with the same
features and bounds as the file serves by: `fl result` and a model passport's verifier
check both, so neither the weights nor how inputs are read can change unseen.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from ailedger.federated.coordinator import weights_digest
from ailedger.federated.task import Task, task_from_json
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
        "task": task.as_json(),
    }
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / MODEL_FILE).write_text(json.dumps(document, indent=2) + "\n")
    return model_dir


def anchored_model_mismatch(model_dir: Path, model_hash: str, task_hash: bytes) -> str | None:
    """Why ``model_dir/model.json`` is not the model anchored as ``model_hash`` (``0x`` +
    64 hex digits) for the task hashed ``task_hash``; None when it is."""
    from ailedger.errors import ConfigError

    try:
        raw = parse_untrusted((model_dir / MODEL_FILE).read_bytes())
        weights = [float(w) for w in raw["weights"]] + [float(raw["bias"])]
        task = task_from_json(raw["task"])
        served = (list(raw["features"]), list(raw["lower"]), list(raw["upper"]))
    except (OSError, ValueError, KeyError, TypeError, AttributeError, ConfigError) as exc:
        return f"{model_dir / MODEL_FILE} is not a federated model file ({exc})"
    if "0x" + weights_digest(weights).hex() != model_hash.lower():
        return "its weights hash to another model than the one anchored"
    if task.digest() != task_hash:
        return "the task it carries is not the one the job posted"
    if served != (list(task.features), list(task.lower), list(task.upper)):
        return "its features or bounds are not the task's"
    return None


def is_anchored_model(model_dir: Path, model_hash: str, task_hash: bytes) -> bool:
    return anchored_model_mismatch(model_dir, model_hash, task_hash) is None

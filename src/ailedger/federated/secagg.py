"""An institution's side of SecAgg+ (Flower's secure aggregation), kept at its desk.

The requester's ClientApp relays each protocol message's ``secaggplus`` ConfigRecord (as
Flower's protobuf, base64) to the desk; :class:`SecAggParty` runs Flower's own client
protocol on it (``flowerdesk/secagg_worker.py``, in the institution's Flower venv) and
answers what goes back to the server. This node's keys, mask seed and the key shares it
holds stay in the party's state, in this process: the relay, like the server, sees public
keys, encrypted shares, the masked vector and the shares for unmasking, from which no
single update can be recovered while enough institutions stay honest.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from ailedger.errors import ConfigError

# Not a module of the package (no __init__ beside it): it imports flwr, which lives only in
# Flower's venv, and runs there, as the institution's own code.
WORKER = Path(__file__).with_name("flowerdesk") / "secagg_worker.py"
STEP_TIMEOUT_S = 120.0


class SecAggParty:
    """One institution's SecAgg+ state across a job's rounds."""

    def __init__(self) -> None:
        self._state: str | None = None

    def step(
        self,
        node_id: int,
        configs: str,
        update: list[float] | None = None,
        num_examples: int | None = None,
    ) -> dict[str, Any]:
        """``{"configs": b64}`` to send back, or ``{"needs_update": True}`` when this is the
        stage that masks the round's update and none was given (nothing changed then)."""
        order = {
            "node_id": node_id,
            "state": self._state,
            "configs": configs,
            "update": update,
            "num_examples": num_examples,
        }
        answer = _run_worker(order)
        if "needs_update" in answer:
            return {"needs_update": True}
        self._state = str(answer["state"])
        return {"configs": str(answer["configs"])}


def _run_worker(order: dict[str, Any]) -> dict[str, Any]:
    from ailedger.federated.flower import flower_venv

    python = flower_venv() / "bin" / "python"
    try:
        done = subprocess.run(
            # -I: the worker's own directory is not put on sys.path (its http.py would
            # shadow the standard library's), and no PYTHON* variable or user site applies.
            [str(python), "-I", str(WORKER)],
            input=json.dumps(order),
            capture_output=True,
            text=True,
            timeout=STEP_TIMEOUT_S,
            check=False,
            env={"PATH": "/usr/bin:/bin", "PYTHONNOUSERSITE": "1"},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"the SecAgg+ step could not run: {exc}") from None
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
        raise ConfigError(f"the SecAgg+ step was refused: {tail[0][:300]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result

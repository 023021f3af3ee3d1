"""The rounds an institution's desk has served in one federated job, kept on disk.

Each update is a look at the data, and under secure aggregation a round's update masked
twice (set up anew among other nodes) could be unmasked by subtracting one sum from the
other. So a desk serves each round once and masks each once, and must still know it after
a restart (``fl serve`` again, a crash): what it served is written durably
(:func:`ailedger._durable.atomic_write_json`, 0600) before the answer leaves. A retry with
the same weights gets the same answer back, from disk; anything else for a served round
is refused. A file that cannot be read stops the desk rather than being taken as empty,
which would let every round be served again.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from ailedger._durable import atomic_write_json
from ailedger.errors import ConfigError


class ServedRounds:
    """What one desk served in one job: per round, the digest of the weights it started
    from and its answer; and the rounds whose update went out masked."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._served: dict[int, tuple[str, dict[str, Any]]] = {}
        self._masked: set[int] = set()
        if path.exists():
            self._load()

    def _load(self) -> None:
        try:
            document = json.loads(self.path.read_text("utf-8"))
            served = {
                int(r): (str(entry["weights"]), dict(entry["answer"]))
                for r, entry in document["served"].items()
            }
            masked = {int(r) for r in document["masked"]}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(
                f"cannot read the rounds this institution served ({self.path}: {exc}); "
                "without it a round could be served twice, so the desk does not start: "
                "restore the file from a backup"
            ) from None
        self._served, self._masked = served, masked

    def answer(self, round_no: int) -> tuple[bytes, dict[str, Any]] | None:
        """(digest of the weights it started from, answer) of a served round, or None."""
        with self._lock:
            found = self._served.get(round_no)
        return None if found is None else (bytes.fromhex(found[0]), found[1])

    def record(self, round_no: int, weights: bytes, answer: dict[str, Any]) -> None:
        """Remember a round's answer, on disk before it returns (before the answer leaves)."""
        with self._lock:
            self._served[round_no] = (weights.hex(), answer)
            self._save()

    def masked(self, round_no: int) -> bool:
        with self._lock:
            return round_no in self._masked

    def record_masked(self, round_no: int) -> None:
        """Remember that a round's update is being masked, on disk before the masked vector
        leaves: masked once, even across a restart."""
        with self._lock:
            self._masked.add(round_no)
            self._save()

    def _save(self) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        document = {
            "served": {
                str(r): {"weights": digest, "answer": answer}
                for r, (digest, answer) in sorted(self._served.items())
            },
            "masked": sorted(self._masked),
        }
        atomic_write_json(self.path, document)

"""What a desk served survives a restart: a round is served once and masked once, and a
file it cannot read stops it rather than letting every round be served again."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from ailedger.errors import ConfigError
from ailedger.federated.served import ServedRounds


def test_served_and_masked_rounds_are_on_disk_before_the_call_returns(tmp_path: Path) -> None:
    path = tmp_path / "federated" / "job-1.json"
    served = ServedRounds(path)
    assert served.answer(1) is None and not served.masked(1)
    answer = {"ok": True, "weights": [0.25, -1.5], "num_examples": 150, "epsilon_spent": 0.5}
    served.record(1, b"\x01" * 32, answer)
    served.record_masked(2)

    again = ServedRounds(path)  # a restarted desk
    assert again.answer(1) == (b"\x01" * 32, answer)
    assert again.masked(2) and not again.masked(1) and again.answer(2) is None
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


@pytest.mark.parametrize(
    "content",
    [
        "",
        "{",
        '{"served": {}}',
        '{"served": {"x": {}}, "masked": []}',
        '{"served": [], "masked": 3}',
    ],
    ids=["empty", "cut", "no-masked", "bad-round", "wrong-types"],
)
def test_an_unreadable_record_stops_the_desk(tmp_path: Path, content: str) -> None:
    path = tmp_path / "job-1.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match="served twice"):
        ServedRounds(path)

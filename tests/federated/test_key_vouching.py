"""SecAgg+ keys vouched for by the job's members: a desk gives shares of its secrets only
to nodes whose public keys a distinct member of the job signed for this job and round.

Without it, a requester running one honest institution's node among SuperNodes of its
own would hold the key shares of every other node of the round and unmask the honest
update (a sybil attack); these are the ways such a server could try to pass its nodes."""

from __future__ import annotations

from dataclasses import replace

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from ailedger.errors import MalformedRequestError
from ailedger.federated.institution import parse_secagg_order
from ailedger.federated.secagg import KeyVouching

CONTRACT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
JOB, ROUND = 4, 2


def _accounts(n: int) -> list[LocalAccount]:
    return [Account.from_key(bytes([i + 1]) * 32) for i in range(n)]


MEMBERS = _accounts(3)
OUTSIDER = Account.from_key(b"\x77" * 32)
KEYS = {str(node): [f"{node:02x}" * 33, f"{node + 100:02x}" * 33] for node in (11, 12, 13)}


def _vouching(account: LocalAccount, members: list[LocalAccount] = MEMBERS) -> KeyVouching:
    return KeyVouching(CONTRACT, JOB, account, lambda: [m.address for m in members])


def _signed(by: dict[str, LocalAccount], round_no: int = ROUND) -> dict[str, str]:
    return {node: _vouching(a).sign(round_no, int(node), KEYS[node]) for node, a in by.items()}


HONEST = {"11": MEMBERS[0], "12": MEMBERS[1], "13": MEMBERS[2]}


def test_neighbours_each_signed_by_a_distinct_member_get_shares() -> None:
    assert _vouching(MEMBERS[0]).refusal(ROUND, 11, KEYS, _signed(HONEST)) is None


@pytest.mark.parametrize(
    ("signers", "why"),
    [
        ({"11": MEMBERS[0], "12": MEMBERS[1], "13": OUTSIDER}, "not a member of job 4"),
        ({"11": MEMBERS[0], "12": MEMBERS[1], "13": MEMBERS[1]}, "both vouched for by"),
        ({"11": MEMBERS[1], "12": MEMBERS[0], "13": MEMBERS[2]}, "own node is not the one"),
        ({"11": MEMBERS[0], "12": MEMBERS[1]}, "vouched for by no one"),
    ],
    ids=["outsider", "one-member-two-nodes", "own-node-swapped", "unsigned"],
)
def test_a_node_no_member_vouches_for_gets_no_share(
    signers: dict[str, LocalAccount], why: str
) -> None:
    refusal = _vouching(MEMBERS[0]).refusal(ROUND, 11, KEYS, _signed(signers))
    assert refusal is not None and why in refusal


def test_a_signature_is_good_for_its_own_job_round_node_and_keys_only() -> None:
    """A member's signature of other keys, or of the same keys for another round, job or
    node, vouches for nothing here: a server cannot reuse one to seat its own node."""
    signatures = _signed(HONEST)
    mine = _vouching(MEMBERS[0])
    assert mine.refusal(ROUND + 1, 11, KEYS, signatures) is not None
    assert replace(mine, job_id=JOB + 1).refusal(ROUND, 11, KEYS, signatures) is not None
    swapped = {**signatures, "12": signatures["13"], "13": signatures["12"]}
    assert mine.refusal(ROUND, 11, KEYS, swapped) is not None
    forged = {**KEYS, "13": [KEYS["13"][0], "ff" * 33]}
    refusal = mine.refusal(ROUND, 11, forged, signatures)
    assert refusal is not None and "node 13" in refusal


def test_membership_is_read_at_each_key_sharing() -> None:
    """The members are read when keys are shared, not once when the desk opened: it
    trusts the chain's list of the moment, nothing it cached."""
    members = list(MEMBERS)
    vouching = KeyVouching(CONTRACT, JOB, MEMBERS[0], lambda: [m.address for m in members])
    assert vouching.refusal(ROUND, 11, KEYS, _signed(HONEST)) is None
    members.pop()
    refusal = vouching.refusal(ROUND, 11, KEYS, _signed(HONEST))
    assert refusal is not None and "node 13" in refusal


def test_garbage_in_place_of_a_signature_is_a_refusal_not_an_error() -> None:
    for junk in ("", "zz" * 65, "00" * 65, "0x" + "ab" * 64 + "1c"):
        signatures = {**_signed(HONEST), "12": junk}
        refusal = _vouching(MEMBERS[0]).refusal(ROUND, 11, KEYS, signatures)
        assert refusal is not None and "node 12" in refusal


TASK = {
    "features": ["a", "b"], "label": "y", "positive": "1", "lower": [0.0, 0.0],
    "upper": [1.0, 1.0], "rule": "fedavg", "local_epochs": 1, "learning_rate": 0.1,
    "batch_size": 8, "secure_aggregation": True,
}  # fmt: skip


def _order(signatures: object) -> dict[str, object]:
    return {
        "node_id": 11, "configs": "c2V0dXA=", "round": 1, "weights": [0.0] * 3,
        "task": TASK, "signatures": signatures,
    }  # fmt: skip


def test_the_relay_passes_signatures_as_node_ids_to_hex_or_is_refused() -> None:
    good = _signed(HONEST)
    assert parse_secagg_order(_order(good)).signatures == good
    assert parse_secagg_order(_order({})).signatures == {}
    for bad in (
        None,
        ["ab" * 65],
        {"eleven": good["11"]},
        {"11": 7},
        {"11": "ab" * 66},
        {str(n): good["11"] for n in range(65)},  # more nodes than a round may have
    ):
        with pytest.raises(MalformedRequestError, match="signatures maps"):
            parse_secagg_order(_order(bad))
    without = _order(good)
    del without["signatures"]
    with pytest.raises(MalformedRequestError, match="a SecAgg\\+ order is"):
        parse_secagg_order(without)

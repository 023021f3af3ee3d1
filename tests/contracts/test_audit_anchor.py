"""AuditAnchor.vy: forward-only checkpoints of each node's audit log, per node."""

from __future__ import annotations

import functools
from typing import Any

import boa
import pytest
from boa.contracts.vyper.vyper_contract import VyperContract, VyperDeployer
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from ailedger.chain.compiler import EVM_VERSION, source_path

ZERO32 = b"\x00" * 32
ROOT_A = b"\xaa" * 32
ROOT_B = b"\xbb" * 32


@functools.cache
def _deployer() -> VyperDeployer:
    return boa.load_partial(
        str(source_path("AuditAnchor")), compiler_args={"evm_version": EVM_VERSION}
    )


@pytest.fixture
def anchor() -> VyperContract:
    return _deployer().deploy()


@pytest.fixture
def node() -> Any:
    return boa.env.generate_address("node")


@pytest.fixture
def other() -> Any:
    return boa.env.generate_address("other")


def _anchor(contract: VyperContract, who: Any, size: int, root: bytes) -> list[Any]:
    with boa.env.prank(who):
        contract.anchor(size, root)
    logs: list[Any] = contract.get_logs()
    return logs


def test_latest_is_zero_before_any_anchor(anchor: VyperContract, node: Any) -> None:
    cp = anchor.latest(node)
    assert (cp.size, cp.root, cp.block_number, cp.timestamp) == (0, ZERO32, 0, 0)


def test_anchor_stores_and_logs(anchor: VyperContract, node: Any) -> None:
    [log] = _anchor(anchor, node, 10, ROOT_A)
    assert type(log).__name__ == "Anchored"
    assert (log.node, log.size, log.root) == (node, 10, ROOT_A)
    cp = anchor.latest(node)
    assert (cp.size, cp.root) == (10, ROOT_A)
    assert cp.block_number == boa.env.evm.patch.block_number
    assert cp.timestamp == boa.env.evm.patch.timestamp


def test_anchor_moves_forward(anchor: VyperContract, node: Any) -> None:
    _anchor(anchor, node, 10, ROOT_A)
    boa.env.time_travel(seconds=60)  # 5 blocks of 12 s
    [log] = _anchor(anchor, node, 11, ROOT_B)
    assert (log.size, log.root) == (11, ROOT_B)
    cp = anchor.latest(node)
    assert (cp.size, cp.root) == (11, ROOT_B)
    assert cp.block_number == boa.env.evm.patch.block_number
    assert cp.timestamp == boa.env.evm.patch.timestamp


def test_smaller_size_rejected(anchor: VyperContract, node: Any) -> None:
    _anchor(anchor, node, 10, ROOT_A)
    with boa.reverts("anchor: size below latest"):
        _anchor(anchor, node, 9, ROOT_A)
    with boa.reverts("anchor: size below latest"):
        _anchor(anchor, node, 1, ROOT_B)
    assert anchor.latest(node).size == 10


def test_same_size_other_root_rejected(anchor: VyperContract, node: Any) -> None:
    _anchor(anchor, node, 10, ROOT_A)
    with boa.reverts("anchor: root differs at same size"):
        _anchor(anchor, node, 10, ROOT_B)
    assert anchor.latest(node).root == ROOT_A


def test_same_size_same_root_is_idempotent_noop(anchor: VyperContract, node: Any) -> None:
    _anchor(anchor, node, 10, ROOT_A)
    first = anchor.latest(node)
    boa.env.time_travel(seconds=60)  # 5 blocks of 12 s
    logs = _anchor(anchor, node, 10, ROOT_A)  # accepted...
    assert logs == []  # ...without an event
    assert anchor.latest(node) == first  # ...and keeps the first block and time


@pytest.mark.parametrize(
    ("size", "root", "reason"),
    [
        (0, ROOT_A, "anchor: size is zero"),
        (1, ZERO32, "anchor: root is zero"),
    ],
)
def test_empty_checkpoint_rejected(
    anchor: VyperContract, node: Any, size: int, root: bytes, reason: str
) -> None:
    with boa.reverts(reason):
        _anchor(anchor, node, size, root)


def test_nodes_are_isolated(anchor: VyperContract, node: Any, other: Any) -> None:
    _anchor(anchor, node, 100, ROOT_A)
    # Another node starts from nothing: a smaller size and another root are fine for it.
    [log] = _anchor(anchor, other, 5, ROOT_B)
    assert log.node == other
    assert (anchor.latest(node).size, anchor.latest(node).root) == (100, ROOT_A)
    assert (anchor.latest(other).size, anchor.latest(other).root) == (5, ROOT_B)
    with boa.reverts("anchor: size below latest"):
        _anchor(anchor, other, 4, ROOT_B)
    _anchor(anchor, node, 101, ROOT_B)
    assert anchor.latest(other).size == 5


def _set_key(contract: VyperContract, who: Any, key: bytes) -> list[Any]:
    with boa.env.prank(who):
        contract.set_checkpoint_key(key)
    logs: list[Any] = contract.get_logs()
    return logs


def test_checkpoint_key_is_set_by_the_node_and_rotation_is_an_event(
    anchor: VyperContract, node: Any, other: Any
) -> None:
    assert anchor.checkpoint_key(node) == ZERO32
    [log] = _set_key(anchor, node, ROOT_A)
    assert type(log).__name__ == "CheckpointKeySet" and (log.node, log.key) == (node, ROOT_A)
    assert _set_key(anchor, node, ROOT_A) == []  # the same key again: no event
    [rotated] = _set_key(anchor, node, ROOT_B)
    assert (rotated.node, rotated.key) == (node, ROOT_B)
    assert anchor.checkpoint_key(node) == ROOT_B
    assert anchor.checkpoint_key(other) == ZERO32  # only the node itself sets its key
    with boa.reverts("anchor: key is zero"):
        _set_key(anchor, node, ZERO32)


class AnchorMachine(RuleBasedStateMachine):
    """Random anchors from a few nodes against a per-node model of the forward-only rule."""

    @initialize()
    def deploy(self) -> None:
        self.contract = _deployer().deploy()
        self.nodes = [boa.env.generate_address(f"anchor-node{i}") for i in range(3)]
        self.model: dict[Any, tuple[int, bytes, int, int]] = {
            n: (0, ZERO32, 0, 0) for n in self.nodes
        }
        self.keys: dict[Any, bytes] = {n: ZERO32 for n in self.nodes}

    @rule(
        n=st.integers(0, 2),
        size=st.integers(0, 8),
        root=st.sampled_from([ZERO32, ROOT_A, ROOT_B, b"\xcc" * 32]),
    )
    def anchor(self, n: int, size: int, root: bytes) -> None:
        node = self.nodes[n]
        cur_size, cur_root, _, _ = self.model[node]
        if size == 0:
            reason: str | None = "anchor: size is zero"
        elif root == ZERO32:
            reason = "anchor: root is zero"
        elif size < cur_size:
            reason = "anchor: size below latest"
        elif size == cur_size and root != cur_root:
            reason = "anchor: root differs at same size"
        else:
            reason = None
        if reason is not None:
            with boa.reverts(reason):
                _anchor(self.contract, node, size, root)
            return
        logs = _anchor(self.contract, node, size, root)
        if size == cur_size:
            assert logs == []
        else:
            [log] = logs
            assert (log.node, log.size, log.root) == (node, size, root)
            self.model[node] = (
                size,
                root,
                boa.env.evm.patch.block_number,
                boa.env.evm.patch.timestamp,
            )

    @rule(n=st.integers(0, 2), key=st.sampled_from([ZERO32, ROOT_A, ROOT_B]))
    def set_key(self, n: int, key: bytes) -> None:
        node = self.nodes[n]
        if key == ZERO32:
            with boa.reverts("anchor: key is zero"):
                _set_key(self.contract, node, key)
            return
        logs = _set_key(self.contract, node, key)
        assert len(logs) == (0 if key == self.keys[node] else 1)
        self.keys[node] = key

    @rule(seconds=st.integers(12, 1000))
    def wait(self, seconds: int) -> None:
        boa.env.time_travel(seconds=seconds)

    @invariant()
    def latest_matches_model(self) -> None:
        for node in self.nodes:
            assert tuple(self.contract.latest(node)) == self.model[node]
            assert self.contract.checkpoint_key(node) == self.keys[node]


AnchorMachine.TestCase.settings = settings(max_examples=30, stateful_step_count=25, deadline=None)
TestAnchor = AnchorMachine.TestCase

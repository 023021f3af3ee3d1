# pragma version ~=0.4.3
"""
@title ailedger audit anchor
@notice Each node (msg.sender) anchors checkpoints of its append-only audit log: the log's
        size (number of entries) and its Merkle root at that size. Once anchored, a node
        cannot later present a different history of the same length, nor a shorter one,
        without the chain showing it.
@dev Anchors only move forward:
     - a size smaller than the latest anchored one is rejected;
     - the same size with a different root is rejected (that would be a forked log);
     - the same size with the same root is accepted as an idempotent no-op: nothing is
       written and no event is emitted, so the stored block and time stay those of the
       first anchoring (the earliest proof that the log had this state), and a node
       that re-sends a checkpoint after a lost receipt does not fail;
     - a larger size with any root is accepted. Whether the new root extends the old one
       (an RFC 9162 consistency proof) is checked off chain by whoever audits the log:
       verifying it here would cost gas on every anchor.
     Size 0 (an empty log) and the zero root are rejected: they are nothing to anchor.
"""


struct Checkpoint:
    size: uint256
    root: bytes32
    block_number: uint256
    timestamp: uint256


event Anchored:
    node: indexed(address)
    size: uint256
    root: bytes32


_latest: HashMap[address, Checkpoint]


@external
def anchor(size: uint256, root: bytes32):
    """
    @notice Anchor the caller's audit log at `size` entries with Merkle root `root`.
    """
    assert size != 0, "anchor: size is zero"
    assert root != empty(bytes32), "anchor: root is zero"
    current: Checkpoint = self._latest[msg.sender]
    assert size >= current.size, "anchor: size below latest"
    if size == current.size:
        assert root == current.root, "anchor: root differs at same size"
        return
    self._latest[msg.sender] = Checkpoint(
        size=size, root=root, block_number=block.number, timestamp=block.timestamp
    )
    log Anchored(node=msg.sender, size=size, root=root)


@view
@external
def latest(node: address) -> Checkpoint:
    """
    @notice The node's latest checkpoint: (size, root, block_number, timestamp), all zero
            if it never anchored.
    """
    return self._latest[node]

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

     Checkpoint keys: each node registers the raw Ed25519 public key (32 bytes) that signs
     its checkpoints (C2SP signed notes) with `set_checkpoint_key`, from its own account,
     so the key is bound to the node's on-chain identity: receipts and remote audits check
     signatures against `checkpoint_key(node)`, never against a key the node's gateway
     hands out. Setting a new key is a rotation and emits `CheckpointKeySet`, so the events
     give the key's whole history; re-sending the current key is a no-op (no event).
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


event CheckpointKeySet:
    node: indexed(address)
    key: bytes32


_latest: HashMap[address, Checkpoint]

checkpoint_key: public(HashMap[address, bytes32])


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


@external
def set_checkpoint_key(key: bytes32):
    """
    @notice Register (or rotate to) `key`, the raw Ed25519 public key that signs the
            caller's audit checkpoints.
    """
    assert key != empty(bytes32), "anchor: key is zero"
    if key == self.checkpoint_key[msg.sender]:
        return
    self.checkpoint_key[msg.sender] = key
    log CheckpointKeySet(node=msg.sender, key=key)

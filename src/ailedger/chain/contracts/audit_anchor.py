"""Typed client for the AuditAnchor contract: on-chain anchors of audit logs."""

from __future__ import annotations

from ailedger.chain.contracts._base import ContractClient
from ailedger.chain.transactions import TxResult


class AuditAnchorClient(ContractClient):
    """On-chain anchors of each node's audit log: (size, root), only ever moving forward,
    and the Ed25519 key each node signs its checkpoints with."""

    contract_name = "AuditAnchor"

    def anchor(self, size: int, root: bytes) -> TxResult:
        return self._write("anchor", size, root)

    def latest(self, node: str) -> tuple[int, bytes] | None:
        raw = self._read("latest", self.web3.to_checksum_address(node))
        size, root = (raw["size"], raw["root"]) if isinstance(raw, dict) else (raw[0], raw[1])
        return None if int(size) == 0 else (int(size), bytes(root))

    def history(self, node: str, from_block: int = 0) -> list[tuple[int, bytes]]:
        """Every (size, root) the node anchored, oldest first, from the Anchored events."""
        logs = self._contract.events.Anchored().get_logs(
            from_block=from_block, argument_filters={"node": self.web3.to_checksum_address(node)}
        )
        return [(int(e["args"]["size"]), bytes(e["args"]["root"])) for e in logs]

    def history_with_times(
        self, node: str, from_block: int = 0
    ) -> list[tuple[int, bytes, int, int]]:
        """Every (size, root, block, block time) the node anchored, oldest first."""
        logs = self._contract.events.Anchored().get_logs(
            from_block=from_block, argument_filters={"node": self.web3.to_checksum_address(node)}
        )
        times: dict[int, int] = {}
        out = []
        for e in logs:
            block = int(e["blockNumber"])
            if block not in times:
                times[block] = int(self.web3.eth.get_block(block)["timestamp"])
            out.append((int(e["args"]["size"]), bytes(e["args"]["root"]), block, times[block]))
        return out

    def set_checkpoint_key(self, key: bytes) -> TxResult:
        """Register (or rotate to) the raw 32-byte Ed25519 key that signs our checkpoints."""
        return self._write("set_checkpoint_key", key)

    def checkpoint_key(self, node: str) -> bytes | None:
        """The node's registered checkpoint key (raw Ed25519), or None if it set none."""
        raw = bytes(self._read("checkpoint_key", self.web3.to_checksum_address(node)))
        return None if raw == bytes(32) else raw

"""This home's audit log next to what the chain says of it: what ``ailedger audit`` and
the web app's audit page show, from the same functions.

The log is read from the home's store (:mod:`ailedger.audit.browse`); what is trusted
comes from the chain: the key each node bound (``AuditAnchor.checkpoint_key``) and the
``(size, root)`` pairs it anchored, with the block times they were anchored at. Another
node's log is read through its gateway (:mod:`ailedger.audit.remote`), found in the
on-chain ``NodeRegistry``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ailedger.audit import browse
from ailedger.audit.receipt import ReceiptVerdict, receipt_checks
from ailedger.audit.remote import GatewayLogSource, RemoteVerifyResult, verify_served_log
from ailedger.audit.verify import verify_directory
from ailedger.errors import ConfigError, NotFoundError, UnprocessableError

if TYPE_CHECKING:
    from ailedger.session import Session

_HELD = re.compile(r"0x([0-9a-f]{64})-(\d{1,19})\.json")


@dataclass(frozen=True)
class Anchor:
    size: int
    root: bytes
    block: int
    time: int


@dataclass
class LogVerification:
    """What ``ailedger audit verify`` reports of this home's log."""

    ok: bool
    checkpoint_key_on_chain: str
    size: int
    checkpoints: int
    anchored: int
    signed_size: int
    anchored_size: int
    unsigned_tail: int
    first_bad_index: int | None
    message: str
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class NodeVerification:
    """What ``ailedger audit verify --node`` reports of another node's served log."""

    node: str
    url: str
    checkpoint_key: str | None
    result: RemoteVerifyResult


@dataclass(frozen=True)
class HeldReceipt:
    """What the owner's gateway said it logged when it served this home a dataset."""

    dataset: str
    index: int
    entry: dict[str, Any]


def key_state(on_chain: bytes | None, ours: bytes) -> str:
    """Receipts and outside audits check checkpoints against the key on chain, not ours."""
    if on_chain is None:
        return "not bound yet (the node binds it when it starts)"
    return "bound" if on_chain == ours else "DIFFERENT"


class HomeAudit:
    """The audit log of ``session``'s home, whose checkpoints ``public_key`` signs
    (without it, only other nodes' logs and receipts can be checked)."""

    def __init__(self, session: Session, public_key: Ed25519PublicKey | None = None) -> None:
        self.session = session
        self._public_key = public_key
        self.directory = session.home.layout.audit

    @property
    def public_key(self) -> Ed25519PublicKey:
        if self._public_key is None:
            raise ConfigError("reading this home's own log needs its unlocked key")
        return self._public_key

    # -- this home's log -------------------------------------------------------------

    def history(
        self,
        *,
        dataset: str | None = None,
        kind: str | None = None,
        offset: int = 0,
        limit: int | None = 50,
        newest_first: bool = True,
    ) -> browse.HistoryPage:
        return browse.history_page(
            self.directory,
            self.public_key,
            dataset=dataset,
            kind=kind,
            offset=offset,
            limit=limit,
            newest_first=newest_first,
        )

    def entry(self, index: int) -> browse.EntryReceipt:
        """Entry ``index`` with a receipt under the latest anchor covering it."""
        anchors = [(a.size, a.root) for a in self.anchors()]
        return browse.entry_receipt(self.directory, self.public_key, index, anchors)

    def timeline(self, bucket_s: int) -> list[tuple[int, int]]:
        return browse.timeline(self.directory, bucket_s)

    def checkpoints(self) -> list[tuple[int, int, bytes]]:
        return browse.checkpoint_series(self.directory)

    def anchors(self, node: str | None = None) -> list[Anchor]:
        """What ``node`` (default: this home) anchored on chain, oldest first."""
        s = self.session
        found = s.audit_anchor.history_with_times(node or s.address, s.deployment.block)
        return [Anchor(*a) for a in found]

    def verify(self) -> LogVerification:
        """Re-derive the whole log, check its checkpoints, its anchors and its key on chain."""
        s = self.session
        anchored = s.audit_anchor.history(s.address, s.deployment.block)
        result = verify_directory(self.directory, self.public_key, anchored)
        on_chain = s.audit_anchor.checkpoint_key(s.address)
        state = key_state(on_chain, self.public_key.public_bytes_raw())
        if state == "DIFFERENT":
            result.ok = False
            result.problems.append(
                f"the checkpoint key on chain ({on_chain.hex() if on_chain else ''}) is not this "
                "log's key: receipts will not verify; start the node to bind this log's key again"
            )
            if result.message == "audit log verified":
                result.message = "audit log verified, but its key on chain is another"
        return LogVerification(
            ok=result.ok,
            checkpoint_key_on_chain=state,
            size=result.size,
            checkpoints=result.checkpoints,
            anchored=len(anchored),
            signed_size=result.signed_size,
            anchored_size=result.anchored_size,
            unsigned_tail=result.unsigned_tail,
            first_bad_index=result.first_bad_index,
            message=result.message,
            problems=result.problems,
            notes=result.notes,
        )

    # -- any node's log, as the chain vouches for it -----------------------------------

    def verify_node(self, node: str) -> NodeVerification:
        """Audit another node's log through its gateway against the chain."""
        s = self.session
        url = s.node_registry.url_of(node)
        if url is None:
            raise ConfigError(f"the node {node} has registered no gateway URL on chain")
        raw = s.audit_anchor.checkpoint_key(node)
        key = Ed25519PublicKey.from_public_bytes(raw) if raw else None
        anchors = s.audit_anchor.history(node, s.deployment.block)
        result = verify_served_log(GatewayLogSource(url), key, anchors)
        return NodeVerification(node, url, raw.hex() if raw else None, result)

    def verify_receipt(self, receipt: object, node: str | None = None) -> ReceiptVerdict:
        """Check a receipt of ``node``'s log (default: this home's) against the key and
        anchors ``node`` has on chain; a later anchor is checked with a consistency proof
        from this home's log, or from ``node``'s gateway."""
        s = self.session
        node = node or s.address
        raw = s.audit_anchor.checkpoint_key(node)
        key = Ed25519PublicKey.from_public_bytes(raw) if raw else None
        anchors = s.audit_anchor.history(node, s.deployment.block)
        if node.lower() == s.address.lower():

            def proof(size1: int, size2: int) -> list[bytes]:
                return browse.consistency(self.directory, size1, size2)

        else:
            url = s.node_registry.url_of(node)

            def proof(size1: int, size2: int) -> list[bytes]:
                if url is None:
                    raise ConfigError(f"the node {node} has registered no gateway URL")
                return GatewayLogSource(url).consistency_proof(size1, size2)

        verdict = receipt_checks(receipt, key, anchors, proof)
        if verdict.checks[0].ok is False:  # not a receipt at all: nothing was checked
            raise UnprocessableError(
                f"not an audit receipt: {verdict.checks[0].detail}",
                {"failed": verdict.failed},
            )
        return verdict

    def receipt_problems(self, receipt: object, node: str) -> tuple[list[str], bool]:
        """(what fails, whether the checkpoint is anchored) for a receipt of ``node``'s log
        carried inside another proof (a reading's, a feedback's): a problem, never a raise."""
        try:
            verdict = self.verify_receipt(receipt, node)
        except (UnprocessableError, ConfigError) as exc:
            return [str(exc)], False
        problems = [f"{c.name}: {c.detail}" for c in verdict.checks if c.ok is False]
        anchored = any(c.name == "anchor" and c.ok is True for c in verdict.checks)
        return problems, anchored

    # -- receipts this home holds (as a requester) -------------------------------------

    def held_receipts(self) -> list[HeldReceipt]:
        """What owners' gateways said they logged when they served this home, newest
        dataset-and-index last."""
        folder = self.session.home.layout.receipts
        found = []
        for path in sorted(folder.glob("0x*.json")) if folder.is_dir() else []:
            if _HELD.fullmatch(path.name) is None:
                continue
            try:
                kept = json.loads(path.read_text())
                index, entry = int(kept["index"]), kept["entry"]
            except (OSError, ValueError, KeyError, TypeError):
                continue  # not a receipt this home wrote: skip it, never fail the list
            if isinstance(entry, dict):
                found.append(HeldReceipt("0x" + path.name[2:66], index, entry))
        return found

    def held_receipt(self, dataset: str, index: int) -> tuple[HeldReceipt, str, dict[str, Any]]:
        """A receipt this home holds, the owner that logged it and the full receipt (entry,
        signed checkpoint, inclusion path) its gateway gives for it now."""
        wanted = dataset.lower()
        held = next(
            (h for h in self.held_receipts() if h.dataset == wanted and h.index == index), None
        )
        if held is None:
            raise NotFoundError(f"this home holds no receipt for entry {index} of {dataset}")
        record = self.session.data_market.dataset(bytes.fromhex(wanted[2:]))
        if record is None:
            raise NotFoundError(f"no dataset {dataset} on chain")
        url = self.session.node_registry.url_of(record.owner)
        if url is None:
            raise ConfigError(f"the owner {record.owner} has registered no gateway URL on chain")
        return held, str(record.owner), GatewayLogSource(url).receipt(index)

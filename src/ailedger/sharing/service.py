"""The node service: the gateway over HTTP plus periodic anchoring of the audit log."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from ailedger.errors import AiledgerError

if TYPE_CHECKING:
    from ailedger.session import Session
    from ailedger.sharing.owner import OwnerNode

log = logging.getLogger(__name__)


def announce(session: Session, url: str) -> list[str]:
    """Make sure the chain knows this node's gateway URL and encryption key."""
    done = []
    registry = session.client("NodeRegistry")
    if registry.url_of(session.address) != url:
        registry.register(url)
        done.append(f"registered gateway URL {url}")
    if session.key_registry.key_of(session.address) != session.home.encryption_public_key:
        session.key_registry.register(session.home.encryption_public_key)
        done.append("registered encryption key")
    return done


def _anchor_loop(node: OwnerNode, every: float, stop: threading.Event) -> None:
    """Log on-chain decisions about our datasets, then anchor the log, every ``every`` s."""
    while not stop.wait(every):
        try:
            node.log_chain_decisions()
            node.anchor()
        except AiledgerError as exc:  # the chain may be briefly away; try again later
            log.warning("anchoring the audit log failed: %s", exc)


def run_node(
    session: Session,
    host: str,
    port: int,
    url: str,
    anchor_every: float,
    say: Callable[[str], None],
) -> None:
    import uvicorn

    from ailedger.sharing.gateway_app import make_gateway_app
    from ailedger.sharing.owner import OwnerNode

    with OwnerNode(session) as node:
        for line in announce(session, url):
            say(line)
        node.log_chain_decisions()
        app = make_gateway_app(node.gateway())
        stop = threading.Event()
        if anchor_every > 0:
            threading.Thread(
                target=_anchor_loop, args=(node, anchor_every, stop), daemon=True
            ).start()
        say(f"gateway for {session.address} serving at {url} (Ctrl-C stops)")
        try:
            uvicorn.run(app, host=host, port=port, log_level="warning")
        finally:
            stop.set()
            node.anchor()

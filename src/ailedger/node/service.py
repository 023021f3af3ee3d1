"""Running a node: announce it on chain, compose its app, serve it, do its chores.

``run_node`` is ``ailedger node start`` (foreground, until Ctrl-C); the demo and tests
serve the same app with :class:`BackgroundServer`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from ailedger.node.app import create_app
from ailedger.node.chores import Chores

# Re-exported: the demo and tests serve the node's app with it.
from ailedger.peer.background import BackgroundServer as BackgroundServer

if TYPE_CHECKING:
    from fastapi import FastAPI

    from ailedger.ai.prediction_desk import PredictionDesk
    from ailedger.compute.expiry import PostedJobs
    from ailedger.compute.requester.inbox import JobInbox
    from ailedger.health.mme import MatchmakerService
    from ailedger.privacy.desk import PrivacyDesk
    from ailedger.session import Session
    from ailedger.sharing.owner import OwnerNode


def announce(session: Session, url: str) -> list[str]:
    """Make sure the chain knows this node's gateway URL, encryption key and the key
    that signs its audit checkpoints."""
    from ailedger.sharing.owner import register_checkpoint_key

    done = []
    registry = session.node_registry
    if registry.url_of(session.address) != url:
        registry.register(url)
        done.append(f"registered gateway URL {url}")
    if session.key_registry.key_of(session.address) != session.home.encryption_public_key:
        session.key_registry.register(session.home.encryption_public_key)
        done.append("registered encryption key")
    if register_checkpoint_key(session) is not None:
        done.append("registered audit checkpoint key")
    return done


def matchmaker(session: Session, node: OwnerNode) -> MatchmakerService | None:
    """The MME service, if this home holds patients (`ailedger health import`); incoming
    queries are logged in the node's audit log."""
    if not session.home.layout.health.exists():
        return None
    from ailedger.health.consent import chain_consent
    from ailedger.health.federation import known_party
    from ailedger.health.mme import MatchmakerService
    from ailedger.health.mme_auth import authenticator
    from ailedger.health.node import HealthNode

    # Linked patients' consent is the chain's, read at each match: a withdrawal counts at
    # the next query this node answers.
    health = HealthNode(
        session.home.path,
        session.settings.database_url,
        consent_oracle=chain_consent(session),
    )
    authenticate = authenticator(health.tokens, session.address, known_party(session))
    return MatchmakerService(health.cohort, authenticate, node.audit)


def posted_jobs(session: Session) -> PostedJobs:
    """This home's compute jobs, for the chores to expire when they get stuck."""
    from ailedger.compute.expiry import PostedJobs

    return PostedJobs(session.compute_market, session.address, session.deployment.block)


def job_inbox(session: Session) -> JobInbox:
    """Where providers fetch this home's job bundles and send its jobs' results."""
    from ailedger.compute.requester.files import JobFiles
    from ailedger.compute.requester.inbox import JobInbox

    return JobInbox(
        JobFiles(session.home.path),
        session.address,
        session.compute_market,
        session.compute_providers,
    )


def privacy_desk(node: OwnerNode) -> PrivacyDesk | None:
    """The node's privacy desk, on a chain that has the PrivacyLedger contract."""
    from ailedger.errors import NotDeployedError
    from ailedger.privacy.desk import PrivacyDesk

    try:
        node.session.deployment.address("PrivacyLedger")
    except NotDeployedError:
        return None
    return PrivacyDesk(node)


def prediction_desk(node: OwnerNode) -> PredictionDesk | None:
    """The node's prediction desk, on a chain that has the ModelRegistry contract; its
    store of decision salts closes with the node."""
    from ailedger.ai.prediction_desk import PredictionDesk
    from ailedger.errors import NotDeployedError

    try:
        node.session.deployment.address("ModelRegistry")
    except NotDeployedError:
        return None
    desk = PredictionDesk(node)
    node.on_close(desk.close)
    return desk


def node_app(
    session: Session,
    node: OwnerNode,
    health: MatchmakerService | None = None,
    *,
    web: bool = True,
    auditors: Iterable[str] = (),
    hosts: Iterable[str] = (),
) -> FastAPI:
    """What `ailedger node start` serves: the node-to-node routes and, unless ``web`` is
    False, the web app beside them on the same port."""
    app = create_app(
        node.gateway(),
        matchmaker=health,
        jobs=job_inbox(session),
        privacy=privacy_desk(node),
        predictions=prediction_desk(node),
    )
    if web:
        from ailedger.web.app import mount_web
        from ailedger.web.deps import WebContext

        context = WebContext(session, node=node, matchmaker=health)
        mount_web(app, context, auditors=auditors, hosts=hosts)
    return app


def web_address(host: str, port: int) -> str:
    """Where a browser on this machine opens the web app."""
    local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return f"http://{'[' + local + ']' if ':' in local else local}:{port}"


def run_node(
    session: Session,
    host: str,
    port: int,
    url: str,
    anchor_every: float,
    say: Callable[[str], None],
    *,
    web: bool = True,
    auditors: Iterable[str] = (),
) -> None:
    import uvicorn

    from ailedger.sharing.owner import OwnerNode
    from ailedger.web.login_links import record_address

    with OwnerNode(session) as node:
        for line in announce(session, url):
            say(line)
        node.log_chain_decisions()
        health = matchmaker(session, node)
        if health is not None:
            count = len(health.cohort.patients)
            say(f"matchmaking (MME /mme/match) over {count} consented patients")
        hosts = [] if host in ("0.0.0.0", "::") else [host]
        app = node_app(session, node, health, web=web, auditors=auditors, hosts=hosts)
        say(f"gateway for {session.address} serving at {url} (Ctrl-C stops)")
        if web:
            address = web_address(host, port)
            record_address(session.home.path, address)
            say(
                f"web app at {address}: sign in with the link `ailedger node login-link` "
                "prints (`--read-only` for an auditor), or with a browser wallet"
            )
        try:
            with Chores(node, anchor_every, posted_jobs(session)):
                uvicorn.run(app, host=host, port=port, log_level="warning")
        finally:
            node.anchor()

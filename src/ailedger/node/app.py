"""The node's HTTP app: one router per capability, errors mapped in one place.

``create_app`` composes what this node serves: the data gateway and its audit proofs
(``sharing.http``), the node's own audit entries (``node.own_entries``), matchmaking
when the home holds patients (``health.http``), the job inbox of the jobs it posted
(``compute.http``), the privacy desk that answers differentially private queries
and trainings over its private datasets (``privacy.http``) and the prediction desk that
serves the models it sells by the prediction (``ai.http``). Its description is at
``/openapi.json``; the web app, when served, shows it at ``/api/docs``
(``web.pages.api_docs``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI

from ailedger import __version__
from ailedger.peer.http_errors import install_error_handlers

if TYPE_CHECKING:
    from ailedger.ai.prediction_desk import PredictionDesk
    from ailedger.compute.requester.inbox import JobInbox
    from ailedger.health.mme import MatchmakerService
    from ailedger.privacy.desk import PrivacyDesk
    from ailedger.sharing.gateway import Gateway


def create_app(
    gateway: Gateway | None = None,
    *,
    matchmaker: MatchmakerService | None = None,
    jobs: JobInbox | None = None,
    privacy: PrivacyDesk | None = None,
    predictions: PredictionDesk | None = None,
) -> FastAPI:
    """The node's API over what it holds; a part given as None is not served."""
    # FastAPI's own docs page would load its script from a CDN onto the node's origin;
    # the web app serves a vendored one instead.
    app = FastAPI(
        title="ailedger node",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,  # no OAuth here: signatures and tokens
    )
    install_error_handlers(app)
    # Each capability is imported only when served: a home without patients never loads
    # the health code (and its ontology).
    if gateway is not None:
        from ailedger.node.own_entries import own_entries_router
        from ailedger.sharing.http import gateway_router

        app.include_router(gateway_router(gateway))
        app.include_router(own_entries_router(gateway.append_own, gateway.owner_address))
    if matchmaker is not None:
        from ailedger.health.http import matchmaking_router

        app.include_router(matchmaking_router(matchmaker))
    if jobs is not None:
        from ailedger.compute.requester.http import job_router

        app.include_router(job_router(jobs))
    if privacy is not None:
        from ailedger.privacy.http import privacy_router

        app.include_router(privacy_router(privacy))
    if predictions is not None:
        from ailedger.ai.http import prediction_router

        app.include_router(prediction_router(predictions))
    return app

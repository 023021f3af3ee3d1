"""``/api/docs``: the REST API described and tried out, from Swagger UI vendored in the
package (``static/swagger/``), under the same Content-Security-Policy as every page: no
script from another origin ever runs on the node's."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from ailedger.web.render import page

DOCS_PATH = "/api/docs"


def pages() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get(DOCS_PATH, response_class=HTMLResponse)
    def api_docs(request: Request) -> HTMLResponse:
        return page(request, "api_docs.html")

    return router

"""Errors become HTTP statuses here, once, for every route of the node and of its loopback desks.

Each error a node answers with names its status itself (``http_status`` in
:mod:`ailedger.errors`); these handlers only render it, as ``{"error": reason}``, the
body every ailedger client reads. The MME route answers its refusals in the MME API's
own shape (``ailedger.health.http``). Back-pressure tells the caller when to come back
(``Retry-After``, RFC 9110 section 10.2.3) rather than queueing without bound, and so
does a peer that is throttled (429, RFC 6585 section 4).
"""

from __future__ import annotations

import math

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from ailedger.errors import BackPressureError, RequestRefusedError, TooManyRequestsError


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestRefusedError, _refused)  # type: ignore[arg-type]
    app.add_exception_handler(BackPressureError, _back_pressure)  # type: ignore[arg-type]
    app.add_exception_handler(TooManyRequestsError, _back_pressure)  # type: ignore[arg-type]


async def _refused(request: Request, exc: RequestRefusedError) -> Response:
    return JSONResponse({"error": exc.reason, **exc.details}, status_code=exc.http_status)


async def _back_pressure(
    request: Request, exc: BackPressureError | TooManyRequestsError
) -> Response:
    retry_after = str(max(1, math.ceil(exc.retry_after)))  # whole seconds, at least one
    return JSONResponse(
        {"error": str(exc)}, status_code=exc.http_status, headers={"Retry-After": retry_after}
    )

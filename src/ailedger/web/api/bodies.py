"""JSON request bodies read as untrusted input: bounded in size and in nesting before
they are parsed.

FastAPI parses a body with ``json.loads`` before validating it, and the node's process
runs with a raised recursion limit (py-evm and py_ecc set it to 100,000), so a body of a
few hundred kilobytes of ``[`` would recurse in C until the process crashes. Routes
that take JSON read it through :func:`json_body` instead: at most ``max_bytes``,
parsed by :func:`ailedger.untrusted_json.parse_untrusted` (which refuses deep nesting),
then validated by the route's Pydantic model, each failure a clear 413, 400 or 422.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from ailedger.errors import MalformedRequestError, PayloadTooLargeError, UnprocessableError
from ailedger.untrusted_json import parse_untrusted

M = TypeVar("M", bound=BaseModel)


def json_body(model: type[M], max_bytes: int) -> Callable[[Request], Awaitable[M]]:
    """A dependency that reads the request's JSON body as ``model``."""

    async def read(request: Request) -> M:
        raw = bytearray()
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > max_bytes:
                raise PayloadTooLargeError(f"the body is over {max_bytes} bytes")
        try:
            data = parse_untrusted(bytes(raw))
        except ValueError as exc:
            raise MalformedRequestError(f"the body is not usable JSON: {exc}") from None
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            where = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}"
                for e in exc.errors()[:5]
            )
            raise UnprocessableError(f"invalid request: {where}") from None

    return read


def documented(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` that documents ``model`` as the route's JSON body."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }

"""A body nested deep enough to overflow the C stack is refused before any route parses
it, signed in or not. The process runs with the recursion limit py_ecc sets (100,000), so
without the guard ``json.loads`` inside the framework kills the node: each case runs in a
process of its own, and the unguarded control shows the crash the guard prevents."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

APP = textwrap.dedent(
    """
    import sys, warnings
    sys.setrecursionlimit(100_000)  # as py_ecc leaves it in the node's process
    warnings.simplefilter("ignore")
    from fastapi import FastAPI
    from fastapi.testclient import TestClient
    from pydantic import BaseModel
    from ailedger.web.security import WebGuard
    from ailedger.web.sessions import SessionStore

    class Code(BaseModel):
        code: str

    app = FastAPI()

    @app.post("/api/v1/auth/link")
    def link(body: Code) -> dict[str, str]:
        return {"code": body.code}

    served = WebGuard(app, SessionStore()) if sys.argv[1] == "guarded" else app
    client = TestClient(served, base_url="http://127.0.0.1")
    body = sys.argv[2].encode() * int(sys.argv[3])
    answer = client.post("/api/v1/auth/link", content=body, headers={"content-type": sys.argv[4]})
    print(answer.status_code, answer.text[:200])
    """
)


def _post(
    guarded: bool, unit: str, times: int, content_type: str
) -> subprocess.CompletedProcess[str]:
    mode = "guarded" if guarded else "bare"
    return subprocess.run(
        [sys.executable, "-c", APP, mode, unit, str(times), content_type],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", ""])
def test_a_deep_body_is_refused_before_it_is_parsed(content_type: str) -> None:
    done = _post(True, "[", 300_000, content_type)
    assert done.returncode == 0, done.stderr[-2000:]
    status, _, text = done.stdout.partition(" ")
    assert status == "400" and "nested" in text


def test_an_oversized_body_is_refused() -> None:
    done = _post(True, " ", 2 * 1024 * 1024, "application/json")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("413 ")


def test_a_shallow_body_reaches_the_route() -> None:
    done = _post(True, '{"code": "x"}', 1, "application/json")
    assert done.stdout.startswith("200 "), done.stdout + done.stderr[-2000:]


def test_without_the_guard_the_same_body_kills_the_process() -> None:
    done = _post(False, "[", 300_000, "application/json")
    assert done.returncode != 0 and not done.stdout.startswith("4")

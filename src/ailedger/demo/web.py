"""The demo's web chapter: the hospital opens its own web app, signed in with its
account, sees its datasets and who read them, and has a receipt verified, through the
same REST API its pages use; then the demo says how to open it in a browser."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ailedger.session import Session

Say = Callable[[str], None]
PAGES = ("/owner", "/research", "/research/jobs", "/provider", "/clinic", "/audit")


def open_the_web_app(hospital: Session, say: Say) -> None:
    from ailedger.node.service import BackgroundServer, announce, node_app
    from ailedger.sharing.owner import OwnerNode
    from ailedger.web.client import sign_in

    say("\n[bold]17. The hospital opens its web app: the same work, in the browser[/bold]")
    assert hospital.account is not None
    with OwnerNode(hospital) as node, BackgroundServer(node_app(hospital, node)) as url:
        announce(hospital, url)
        node.log_chain_decisions()  # what `node start` does as it starts,
        node.anchor()  # and its chores every --anchor-every seconds
        with sign_in(url, hospital.account) as api:
            me = _get(api, "/api/v1/auth/me")
            say(f"  signed in at {url} as {me['address']} ({me['role']}), Sign-In with Ethereum")
            for d in _get(api, "/api/v1/owner/datasets")["datasets"]:
                say(
                    f"  /owner: {d['title']!r}: {d['reads']} read(s), {d['grants']} grant(s), "
                    f"{int(d['earned_base_units']) / 10**18:g} AIL earned"
                )
            history = _get(api, "/api/v1/owner/history", limit=50)
            say(
                f"  who read what: {len(history['entries'])} entries, each with its inclusion "
                f"proof under checkpoint {history['checkpoint_size']}"
            )
            _verify_a_receipt(api, say)
            sizes = [f"{path} {len(_page(api, path)) // 1024} KiB" for path in PAGES]
            say("  each role's page renders: " + ", ".join(sizes))


def _verify_a_receipt(api: Any, say: Say) -> None:
    """The receipt of the newest entry the chain has an anchor for (entries logged since
    then wait for the next anchor: their anchor check is not decided yet)."""
    anchors = _get(api, "/api/v1/audit/anchors")["anchors"]
    if not anchors:
        return
    index = int(anchors[-1]["size"]) - 1
    receipt = _get(api, f"/api/v1/audit/entries/{index}")["receipt"]
    verdict = api.post("/api/v1/audit/receipts/verify", json={"receipt": receipt})
    verdict.raise_for_status()
    checks = ", ".join(f"{c['name']} {_verdict(c['ok'])}" for c in verdict.json()["checks"])
    say(f"  receipt of audit entry #{index} verified: {checks}")


def _verdict(ok: bool | None) -> str:
    return "ok" if ok else "not decided yet" if ok is None else "FAILED"


def _get(api: Any, path: str, **params: object) -> dict[str, Any]:
    answer = api.get(path, params=params)
    answer.raise_for_status()
    body: dict[str, Any] = answer.json()
    return body


def _page(api: Any, path: str) -> str:
    answer = api.get(path)
    answer.raise_for_status()
    return str(answer.text)

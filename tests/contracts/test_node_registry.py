"""NodeRegistry: each account sets only its own gateway URL."""

from __future__ import annotations

from pathlib import Path

import boa
import pytest

from ailedger.chain.compiler import source_path


@pytest.fixture
def registry():  # type: ignore[no-untyped-def]
    return boa.load(str(source_path("NodeRegistry")))


def test_register_change_and_withdraw(registry) -> None:  # type: ignore[no-untyped-def]
    alice, bob = boa.env.generate_address(), boa.env.generate_address()
    with boa.env.prank(alice):
        registry.register_node("http://127.0.0.1:8700")
    # get_logs() reads the most recent computation, so it comes before any view call
    [event] = registry.get_logs()
    assert (event.node, event.url) == (alice, "http://127.0.0.1:8700")
    assert registry.urls(alice) == "http://127.0.0.1:8700"
    assert registry.urls(bob) == ""
    with boa.env.prank(alice):
        registry.register_node("https://hospital.example/ailedger")
        registry.register_node("")
    assert registry.urls(alice) == ""


@pytest.mark.parametrize("url", ["ftp://x", "127.0.0.1:8700", "https:/", "javascript:alert(1)"])
def test_non_http_urls_are_refused(registry, url: str) -> None:  # type: ignore[no-untyped-def]
    with boa.reverts("node: url must start with http:// or https://"):
        registry.register_node(url)


def test_source_is_the_repository_contract() -> None:
    assert Path(source_path("NodeRegistry")).name == "NodeRegistry.vy"

"""Shared fixtures for the titanoboa contract tests."""

from __future__ import annotations

from collections.abc import Iterator

import boa
import pytest


@pytest.fixture(autouse=True)
def _forget_storage_traces() -> Iterator[None]:
    """titanoboa keeps a per-address record of storage writes across its test isolation;
    when a later test deploys another contract at the same address and a call reverts,
    boa decodes that record with the wrong layout and crashes. Start each test clean."""
    boa.env.sstore_trace = {}
    yield
    boa.env.sstore_trace = {}

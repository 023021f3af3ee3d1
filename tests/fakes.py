"""Fakes shared by several test modules (fakes over mocks: they behave, they do not record
expectations)."""

from __future__ import annotations

from typing import Any


class ListAudit:
    """An audit log's append over a list: the index of each entry, in order."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def append(self, entry: dict[str, Any]) -> int:
        self.entries.append(entry)
        return len(self.entries) - 1

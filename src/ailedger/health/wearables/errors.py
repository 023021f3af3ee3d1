"""The one error of wearable import: the file as a whole cannot be read."""

from __future__ import annotations

from ailedger.errors import ConfigError


class WearableImportError(ConfigError):
    """A wearable export is malformed, hostile (entity declarations, deep nesting), too
    large or truncated; the message says where. Nothing from it was imported: export the
    file again (or fix it) and import it whole."""

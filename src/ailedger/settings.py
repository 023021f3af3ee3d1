"""Settings from ``AILEDGER_*`` environment variables (pydantic-settings).

CLI flags default from these; nothing is read at import time: call :func:`load_settings`.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

EMBEDDED = "embedded"


class Settings(BaseSettings):
    """Process-wide configuration. Every field maps to ``AILEDGER_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="AILEDGER_", extra="ignore")

    home: Path = Field(default_factory=lambda: Path.home() / ".ailedger")
    """The node home: keys, config, and (for the embedded chain) the chain data."""

    chain: str | None = None
    """``embedded`` for the chain kept in the home, or an ``http(s)://`` JSON-RPC URL.
    Unset: the chain recorded in the home's config.toml at ``ailedger init``."""

    passphrase: str | None = None
    """Passphrase of the home's keystore; prompted for when unset and a terminal is attached."""

    cache_dir: Path = Field(default_factory=lambda: Path.home() / ".cache" / "ailedger")
    """Compiled-contract cache, keyed by source hash."""

    database_url: str | None = None
    """Where the shared stores (catalog, owner records, patients) live: a
    ``postgresql://USER@HOST:PORT/NAME`` URL for an organisation's server, or unset for
    ``node.sqlite`` in the home."""


def load_settings(**overrides: object) -> Settings:
    """Read the environment, then apply explicit overrides (CLI flags) that are not None."""
    given = {k: v for k, v in overrides.items() if v is not None}
    return Settings(**given)  # type: ignore[arg-type]

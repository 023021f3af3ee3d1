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

    decision_retention_days: int = 183
    """How long a decision receipt's salt is kept before it may be destroyed (redaction):
    at least the six months the EU AI Act asks of deployers (Art. 19, 26(6)); longer if
    the deployer's own rules say so. Below 183 is refused."""

    database_url: str | None = None
    """Where the shared stores (catalog, owner records, patients) live: a
    ``postgresql://USER@HOST:PORT/NAME`` URL for an organisation's server, or unset for
    ``node.sqlite`` in the home."""


def load_settings(**overrides: object) -> Settings:
    """Read the environment, then apply explicit overrides (CLI flags) that are not None."""
    given = {k: v for k, v in overrides.items() if v is not None}
    return Settings(**given)  # type: ignore[arg-type]

"""Where everything lives in a node home: every path under the home is named here, once.

::

    keystore.json           Ethereum account, keystore v3               (keys/)
    encryption-key.json     X25519 key pair for wrapped data keys       (keys/)
    config.toml             chain, address, public key; written last    (keys/)
    keys/passport-signing.pem  P-256 key signing model passports, 0600,
                            its public PEM beside it (.pub.pem)         (ai/)
    node.sqlite             the shared stores, unless AILEDGER_DATABASE_URL names
                            PostgreSQL: catalog, owner records, patients (db/)
    chain/                  the embedded chain: its own SQLite, lock     (chain/embedded/)
    deployments/            contract manifests of external chains       (chain/)
    audit/                  the RFC 6962 audit log, its own SQLite      (audit/)
    data/blobs/             ciphertext, content-addressed               (store/)
    receipts/               audit receipts the requester kept           (sharing/)
    jobs/                   bundles posted, logs and outputs received   (compute/)
    provider/               the provider agent's progress and salts     (compute/)
    health/                 MME secret, peer tokens, saved queries,
                            notifications, de-identification keys       (health/)
    web-login/              one-time sign-in links (hashed), where the
                            web app is served                           (web/)

A layout is only names: it creates nothing. Each part creates its directories when it
first writes there. Homes made before ``node.sqlite`` kept owner records and patients in
files of their own; those are adopted into the database on first open (``legacy_*``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class HomeLayout:
    """The paths of the home at ``root``."""

    root: Path

    @property
    def keystore(self) -> Path:
        return self.root / "keystore.json"

    @property
    def encryption_key(self) -> Path:
        return self.root / "encryption-key.json"

    @property
    def config(self) -> Path:
        return self.root / "config.toml"

    @property
    def passport_key(self) -> Path:
        """The P-256 private key (PEM, 0600) that signs this node's model passports."""
        return self.root / "keys" / "passport-signing.pem"

    @property
    def passport_public_key(self) -> Path:
        return self.root / "keys" / "passport-signing.pub.pem"

    @property
    def database(self) -> Path:
        """The SQLite file of the shared stores (when no database URL is configured)."""
        return self.root / "node.sqlite"

    @property
    def chain(self) -> Path:
        return self.root / "chain"

    @property
    def deployments(self) -> Path:
        return self.root / "deployments"

    @property
    def audit(self) -> Path:
        return self.root / "audit"

    @property
    def blobs(self) -> Path:
        return self.root / "data" / "blobs"

    @property
    def receipts(self) -> Path:
        return self.root / "receipts"

    @property
    def jobs(self) -> Path:
        return self.root / "jobs"

    @property
    def federated(self) -> Path:
        """What this home's institution desks served, a file per federated job."""
        return self.root / "federated"

    @property
    def provider(self) -> Path:
        return self.root / "provider"

    @property
    def provider_jobs(self) -> Path:
        """One JSON file per assignment: phase and salt, on disk before each step."""
        return self.provider / "jobs"

    @property
    def provider_progress(self) -> Path:
        """The next block the provider agent reads."""
        return self.provider / "agent.json"

    @property
    def health(self) -> Path:
        return self.root / "health"

    @property
    def mme_secret(self) -> Path:
        """Key for match result surrogates (random, 0600)."""
        return self.health / "mme-secret"

    @property
    def mme_tokens(self) -> Path:
        """Digests of tokens issued to Matchmaker Exchange peers."""
        return self.health / "mme-tokens.json"

    @property
    def saved_queries(self) -> Path:
        return self.health / "saved-queries.json"

    @property
    def notifications(self) -> Path:
        """New matches found for saved queries, one JSON object a line."""
        return self.health / "notifications.jsonl"

    @property
    def web_login(self) -> Path:
        """One-time sign-in links of the web app (a file per link, named by the hash of
        its code) and ``serving.json``, where the node serves the web app."""
        return self.root / "web-login"

    @property
    def legacy_owner_store(self) -> Path:
        """Owner records of a home made before ``node.sqlite``."""
        return self.root / "data" / "owner.sqlite"

    @property
    def legacy_patient_store(self) -> Path:
        """Patients of a home made before ``node.sqlite``."""
        return self.health / "patients.sqlite3"

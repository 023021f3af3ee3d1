"""The node home: one private directory holding a node's keys, config and chain data.

The directory is 0700 and its key files 0600; :class:`~ailedger.home_layout.HomeLayout`
names every path in it. This module writes three of them::

    keystore.json        Ethereum account, keystore v3 (see ``wallet``)
    encryption-key.json  X25519 key pair for wrapped data keys (see ``encryption``)
    config.toml          chain, address, public key, creation time

``init`` writes every file atomically and ``config.toml`` last: it is the commit marker.
A crash before it leaves keys without a config, which ``open`` reports as an interrupted
init; a crash after it leaves a complete home. Reading the address or the public key never
needs the passphrase; only unlocking the keys does.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from eth_utils.address import is_hex_address, to_checksum_address

from ailedger._durable import atomic_write
from ailedger.errors import ConfigError, HomeError, KeyError_
from ailedger.home_layout import HomeLayout
from ailedger.keys import encryption, wallet
from ailedger.keys._files import make_private_dir
from ailedger.settings import EMBEDDED

CONFIG_VERSION = 1

_T = TypeVar("_T")


@dataclass(frozen=True)
class HomeConfig:
    """The contents of ``config.toml``."""

    chain: str
    address: ChecksumAddress
    encryption_public_key: bytes
    created: datetime
    version: int = CONFIG_VERSION

    def to_toml(self) -> str:
        """Render as TOML; by hand, since the standard library only reads TOML."""
        return (
            "# ailedger node home, written by `ailedger init`.\n"
            f"version = {self.version}\n"
            f"chain = {_toml_string(self.chain)}\n"
            f'address = "{self.address}"\n'
            f'encryption_public_key = "{self.encryption_public_key.hex()}"\n'
            f"created = {self.created.isoformat()}\n"
        )


class NodeHome:
    """A node home on disk, complete and consistent. Get one from :meth:`init` or :meth:`open`."""

    def __init__(self, path: Path, config: HomeConfig) -> None:
        self.path = path
        self.config = config

    @classmethod
    def init(
        cls,
        path: Path,
        passphrase: str,
        *,
        chain: str = EMBEDDED,
        scrypt_n: int = wallet.DEFAULT_SCRYPT_N,
    ) -> NodeHome:
        """Create a new home with fresh keys, both encrypted under ``passphrase``."""
        path = path.expanduser()
        try:
            chain = _parse_chain(chain)
        except ValueError as exc:
            raise ConfigError(f"the chain setting (AILEDGER_CHAIN) is invalid: {exc}") from None
        if not passphrase:
            raise KeyError_("an empty passphrase would leave the keys unprotected; choose one")
        _check_can_init(path)
        layout = HomeLayout(path)
        try:
            make_private_dir(path)
            address = wallet.create_keystore(layout.keystore, passphrase, scrypt_n=scrypt_n)
            public_key = encryption.create_encryption_key(
                layout.encryption_key, passphrase, scrypt_n=scrypt_n
            )
            created = datetime.now(UTC).replace(microsecond=0)
            config = HomeConfig(chain, address, public_key, created)
            atomic_write(layout.config, config.to_toml().encode("utf-8"))
        except OSError as exc:
            raise HomeError(
                f"cannot create the ailedger home at {path}: {exc}; "
                "choose a writable directory with AILEDGER_HOME"
            ) from exc
        return cls(path, config)

    @classmethod
    def open(cls, path: Path) -> NodeHome:
        """Open an existing home; :class:`HomeError` if it is missing or incomplete."""
        path = path.expanduser()
        _check_complete(path)
        config = read_config(HomeLayout(path).config)
        home = cls(path, config)
        home._check_keys_match_config()
        return home

    @property
    def layout(self) -> HomeLayout:
        """Every path in this home."""
        return HomeLayout(self.path)

    @property
    def keystore_path(self) -> Path:
        return self.layout.keystore

    @property
    def encryption_key_path(self) -> Path:
        return self.layout.encryption_key

    @property
    def config_path(self) -> Path:
        return self.layout.config

    @property
    def chain_dir(self) -> Path:
        """Where the embedded chain keeps its data."""
        return self.layout.chain

    @property
    def address(self) -> ChecksumAddress:
        """The node's Ethereum address (no passphrase needed)."""
        return self.config.address

    @property
    def encryption_public_key(self) -> bytes:
        """The raw 32-byte X25519 public key (no passphrase needed)."""
        return self.config.encryption_public_key

    def unlock_account(self, passphrase: str) -> LocalAccount:
        """The node's Ethereum account, able to sign."""
        return wallet.unlock_account(self.keystore_path, passphrase)

    def unlock_encryption_key(self, passphrase: str) -> X25519PrivateKey:
        """The node's X25519 private key, able to unwrap data keys."""
        return encryption.unlock_encryption_key(self.encryption_key_path, passphrase)

    def __repr__(self) -> str:
        return f"NodeHome({str(self.path)!r}, address={self.address})"

    def _check_keys_match_config(self) -> None:
        # The config is plaintext and user-editable; the key files are the truth.
        found = {
            "account": (wallet.read_address(self.keystore_path), self.address),
            "encryption public key": (
                encryption.read_public_key(self.encryption_key_path).hex(),
                self.encryption_public_key.hex(),
            ),
        }
        for what, (in_key_file, in_config) in found.items():
            if in_key_file != in_config:
                raise HomeError(
                    f"the ailedger home at {self.path} is inconsistent: the key file holds "
                    f"{what} {in_key_file} but {self.config_path.name} names {in_config}; "
                    "restore the home from one backup"
                )


def read_config(path: Path) -> HomeConfig:
    """Parse ``config.toml``; :class:`ConfigError` names the file and the bad field."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML ({exc}); fix or restore it") from exc

    def get(name: str, parse: Callable[[object], _T]) -> _T:
        if name not in data:
            raise ConfigError(f"{path}: the field '{name}' is missing; add it or restore the file")
        try:
            return parse(data[name])
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{path}: the field '{name}' is invalid: {exc}") from None

    return HomeConfig(
        version=get("version", _parse_version),
        chain=get("chain", _parse_chain),
        address=get("address", _parse_address),
        encryption_public_key=get("encryption_public_key", _parse_public_key),
        created=get("created", _parse_created),
    )


def _missing_home(path: Path) -> HomeError:
    return HomeError(
        f"no ailedger home at {path}; run `ailedger init` first (or set AILEDGER_HOME)"
    )


def _interrupted_init(path: Path) -> HomeError:
    return HomeError(
        f"the ailedger home at {path} is incomplete: {HomeLayout(path).config.name} is "
        "missing, so an "
        f"`ailedger init` was interrupted; delete {path} and run `ailedger init` again "
        "(or set AILEDGER_HOME to another directory)"
    )


def _check_complete(path: Path) -> None:
    if not path.is_dir():
        raise _missing_home(path)
    layout = HomeLayout(path)
    keys = (layout.keystore, layout.encryption_key)
    if not layout.config.exists():
        if not any(key.exists() for key in keys):
            raise _missing_home(path)
        raise _interrupted_init(path)
    for key in keys:
        if not key.exists():
            raise HomeError(
                f"the ailedger home at {path} is incomplete: {key.name} is missing; "
                "restore it from your backup"
            )


def _check_can_init(path: Path) -> None:
    layout = HomeLayout(path)
    if layout.config.exists():
        raise HomeError(
            f"an ailedger home already exists at {path}; use it, or set AILEDGER_HOME "
            "to another directory to create a new one"
        )
    if path.exists() and not path.is_dir():
        raise HomeError(f"{path} exists and is not a directory; set AILEDGER_HOME elsewhere")
    if layout.keystore.exists() or layout.encryption_key.exists():
        raise _interrupted_init(path)
    if path.is_dir() and any(path.iterdir()):
        raise HomeError(
            f"{path} exists and is not empty; `ailedger init` needs a new or empty "
            "directory (set AILEDGER_HOME to choose one)"
        )


def _toml_string(value: str) -> str:
    """A TOML basic string (TOML 1.0, "String"): escape quote, backslash and controls."""
    out = []
    for char in value:
        if char in '"\\':
            out.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _parse_version(value: object) -> int:
    if type(value) is not int or value != CONFIG_VERSION:
        raise ValueError(f"expected {CONFIG_VERSION}, got {value!r}")
    return value


def _parse_chain(value: object) -> str:
    if value == EMBEDDED:
        return EMBEDDED
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected '{EMBEDDED}' or an http(s):// JSON-RPC URL, got {value!r}")
    return str(value)


def _parse_address(value: object) -> ChecksumAddress:
    if not isinstance(value, str) or not is_hex_address(value):
        raise ValueError(f"expected a 0x-prefixed Ethereum address, got {value!r}")
    return to_checksum_address(value)


def _parse_public_key(value: object) -> bytes:
    key = bytes.fromhex(value) if isinstance(value, str) else b""
    if len(key) != 32:
        raise ValueError(f"expected 64 hex digits (a 32-byte X25519 key), got {value!r}")
    return key


def _parse_created(value: object) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValueError(f"expected a date-time with a UTC offset, got {value!r}")
    return value

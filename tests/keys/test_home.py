"""The node home: init, open, unlock, refusal to overwrite, partial homes, config."""

from __future__ import annotations

import os
import stat
import tempfile
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ailedger.errors import ConfigError, HomeError, KeyError_, WrongPassphraseError
from ailedger.keys import encryption, home
from ailedger.keys.home import HomeConfig, NodeHome, read_config

FAST_N = 2**4
PASSPHRASE = "correct horse battery staple"


@pytest.fixture(autouse=True)
def _usual_umask() -> Iterator[None]:
    # A permissive umask shows that the modes come from the code, not the environment.
    previous = os.umask(0o022)
    yield
    os.umask(previous)


@pytest.fixture
def node(tmp_path: Path) -> NodeHome:
    return NodeHome.init(tmp_path / "home", PASSPHRASE, scrypt_n=FAST_N)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_open_unlock_round_trip(node: NodeHome) -> None:
    opened = NodeHome.open(node.path)
    assert opened.config == node.config
    assert opened.unlock_account(PASSPHRASE).address == node.address
    private_key = opened.unlock_encryption_key(PASSPHRASE)
    assert private_key.public_key().public_bytes_raw() == node.encryption_public_key


def test_address_and_public_key_need_no_passphrase(node: NodeHome) -> None:
    opened = NodeHome.open(node.path)
    assert opened.address.startswith("0x") and len(opened.address) == 42
    assert len(opened.encryption_public_key) == 32


def test_layout_and_config_contents(node: NodeHome) -> None:
    assert node.keystore_path == node.path / "keystore.json"
    assert node.encryption_key_path == node.path / "encryption-key.json"
    assert node.chain_dir == node.path / "chain"
    data = tomllib.loads(node.config_path.read_text())
    assert data["chain"] == "embedded"
    assert data["address"] == node.address
    assert bytes.fromhex(data["encryption_public_key"]) == node.encryption_public_key
    assert isinstance(data["created"], datetime) and data["created"].tzinfo is not None
    assert sorted(p.name for p in node.path.iterdir()) == [
        "config.toml",
        "encryption-key.json",
        "keystore.json",
    ]


def test_permissions(node: NodeHome) -> None:
    assert _mode(node.path) == 0o700
    for path in (node.keystore_path, node.encryption_key_path, node.config_path):
        assert _mode(path) == 0o600, path


def test_wrong_passphrase(node: NodeHome) -> None:
    with pytest.raises(WrongPassphraseError):
        node.unlock_account("wrong")
    with pytest.raises(WrongPassphraseError):
        node.unlock_encryption_key("wrong")


def test_refuses_to_overwrite(node: NodeHome) -> None:
    keystore = node.keystore_path.read_bytes()
    with pytest.raises(HomeError, match="already exists") as caught:
        NodeHome.init(node.path, "another", scrypt_n=FAST_N)
    assert "AILEDGER_HOME" in str(caught.value)
    assert node.keystore_path.read_bytes() == keystore


def test_missing_home(tmp_path: Path) -> None:
    with pytest.raises(HomeError) as caught:
        NodeHome.open(tmp_path / "nowhere")
    message = str(caught.value)
    assert message.startswith(f"no ailedger home at {tmp_path / 'nowhere'}")
    assert "ailedger init" in message and "AILEDGER_HOME" in message


def test_empty_directory_is_no_home_but_can_be_initialised(tmp_path: Path) -> None:
    with pytest.raises(HomeError, match="no ailedger home"):
        NodeHome.open(tmp_path)
    NodeHome.init(tmp_path, PASSPHRASE, scrypt_n=FAST_N)
    assert _mode(tmp_path) == 0o700
    NodeHome.open(tmp_path)


def test_refuses_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(HomeError, match="not empty"):
        NodeHome.init(tmp_path, PASSPHRASE, scrypt_n=FAST_N)


def test_path_that_is_a_file(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("")
    with pytest.raises(HomeError, match="not a directory"):
        NodeHome.init(a_file, PASSPHRASE, scrypt_n=FAST_N)
    with pytest.raises(HomeError, match="cannot create"):
        NodeHome.init(a_file / "home", PASSPHRASE, scrypt_n=FAST_N)


def test_partial_home_is_named_on_open_and_init(node: NodeHome) -> None:
    node.config_path.unlink()
    with pytest.raises(HomeError, match=r"config\.toml is missing.*interrupted"):
        NodeHome.open(node.path)
    with pytest.raises(HomeError, match=r"config\.toml is missing.*interrupted"):
        NodeHome.init(node.path, PASSPHRASE, scrypt_n=FAST_N)


def test_crash_during_init_leaves_a_detectable_partial_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(*args: object, **kwargs: object) -> bytes:
        raise RuntimeError("power cut")

    monkeypatch.setattr(encryption, "create_encryption_key", crash)
    with pytest.raises(RuntimeError):
        NodeHome.init(tmp_path / "home", PASSPHRASE, scrypt_n=FAST_N)
    assert [p.name for p in (tmp_path / "home").iterdir()] == ["keystore.json"]
    with pytest.raises(HomeError, match="interrupted"):
        NodeHome.open(tmp_path / "home")


@pytest.mark.parametrize("name", ["keystore.json", "encryption-key.json"])
def test_lost_key_file_is_named(node: NodeHome, name: str) -> None:
    (node.path / name).unlink()
    with pytest.raises(HomeError, match=f"{name} is missing.*backup"):
        NodeHome.open(node.path)


def test_two_homes_are_independent_parties(tmp_path: Path) -> None:
    first = NodeHome.init(tmp_path / "a", PASSPHRASE, scrypt_n=FAST_N)
    second = NodeHome.init(tmp_path / "b", PASSPHRASE, scrypt_n=FAST_N)
    assert first.address != second.address
    assert first.encryption_public_key != second.encryption_public_key
    assert first.unlock_account(PASSPHRASE).key != second.unlock_account(PASSPHRASE).key


@pytest.mark.parametrize("name", ["keystore.json", "encryption-key.json"])
def test_key_file_from_another_home_is_detected(tmp_path: Path, name: str) -> None:
    first = NodeHome.init(tmp_path / "a", PASSPHRASE, scrypt_n=FAST_N)
    second = NodeHome.init(tmp_path / "b", PASSPHRASE, scrypt_n=FAST_N)
    (first.path / name).write_bytes((second.path / name).read_bytes())
    with pytest.raises(HomeError, match="inconsistent"):
        NodeHome.open(first.path)


@pytest.mark.parametrize(
    ("field", "bad_line"),
    [
        ("version", "version = 2"),
        ("version", 'version = "1"'),
        ("chain", 'chain = "ftp://example.org"'),
        ("chain", "chain = 7"),
        ("address", 'address = "0x1234"'),
        ("encryption_public_key", 'encryption_public_key = "zz"'),
        ("encryption_public_key", 'encryption_public_key = "abcd"'),
        ("created", 'created = "yesterday"'),
        ("created", "created = 2025-01-01T00:00:00"),
    ],
)
def test_invalid_config_field(node: NodeHome, field: str, bad_line: str) -> None:
    _replace_line(node.config_path, field, bad_line)
    with pytest.raises(ConfigError) as caught:
        NodeHome.open(node.path)
    message = str(caught.value)
    assert f"'{field}' is invalid" in message and str(node.config_path) in message


@pytest.mark.parametrize("field", ["version", "chain", "address", "encryption_public_key"])
def test_missing_config_field(node: NodeHome, field: str) -> None:
    _replace_line(node.config_path, field, "")
    with pytest.raises(ConfigError, match=f"'{field}' is missing"):
        NodeHome.open(node.path)


def test_config_that_is_not_toml(node: NodeHome) -> None:
    node.config_path.write_text("chain = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        NodeHome.open(node.path)


def test_json_rpc_chain_is_recorded(tmp_path: Path) -> None:
    url = "http://127.0.0.1:8545"
    created = NodeHome.init(tmp_path / "h", PASSPHRASE, chain=url, scrypt_n=FAST_N)
    assert NodeHome.open(created.path).config.chain == url


def test_invalid_chain_setting_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="AILEDGER_CHAIN"):
        NodeHome.init(tmp_path / "h", PASSPHRASE, chain="mainnet", scrypt_n=FAST_N)
    assert not (tmp_path / "h").exists()


def test_empty_passphrase_is_refused(tmp_path: Path) -> None:
    with pytest.raises(KeyError_, match="empty"):
        NodeHome.init(tmp_path / "h", "", scrypt_n=FAST_N)
    assert not (tmp_path / "h").exists()


@settings(max_examples=200)
@given(path=st.text(), key=st.binary(min_size=32, max_size=32))
def test_config_round_trips_through_toml(path: str, key: bytes) -> None:
    config = HomeConfig(
        chain="https://rpc.example.org/" + path,
        address=home._parse_address("0x" + "ab" * 20),
        encryption_public_key=key,
        created=datetime(2025, 5, 1, 12, 30, tzinfo=UTC),
    )
    with tempfile.TemporaryDirectory() as directory:
        config_path = Path(directory) / "config.toml"
        config_path.write_text(config.to_toml(), encoding="utf-8")
        assert read_config(config_path) == config


def _replace_line(path: Path, field: str, new_line: str) -> None:
    lines = path.read_text().splitlines()
    replaced = [new_line if line.startswith(f"{field} =") else line for line in lines]
    assert replaced != lines
    path.write_text("\n".join(replaced) + "\n")

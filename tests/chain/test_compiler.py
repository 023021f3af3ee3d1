"""ailedger.chain.compiler: Shanghai bytecode, the on-disk cache, and its failure modes."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import boa
import pytest

from ailedger import _durable
from ailedger.chain import compiler
from ailedger.chain.compiler import (
    CompiledContract,
    compile_contract,
    contract_names,
    source_path,
)
from ailedger.errors import ContractError

# Opcodes introduced after Shanghai (Cancun: EIP-1153, EIP-5656, EIP-4844, EIP-7516).
POST_SHANGHAI_OPCODES = {
    0x5C: "TLOAD",
    0x5D: "TSTORE",
    0x5E: "MCOPY",
    0x49: "BLOBHASH",
    0x4A: "BLOBBASEFEE",
}


def _entries(cache_dir: Path) -> list[Path]:
    return sorted((cache_dir / "contracts").glob("*.json"))


def _all_files(cache_dir: Path) -> list[Path]:
    return sorted(p for p in (cache_dir / "contracts").iterdir())


def _opcodes(bytecode: bytes) -> set[int]:
    """Opcodes of Vyper deployment code, skipping PUSH data and the CBOR metadata.

    Vyper appends its metadata with the metadata's length in the last two bytes; left
    in, its bytes would be misread as instructions.
    """
    code = bytecode[: -int.from_bytes(bytecode[-2:], "big")]
    found: set[int] = set()
    pc = 0
    while pc < len(code):
        op = code[pc]
        found.add(op)
        pc += 1 + (op - 0x5F if 0x60 <= op <= 0x7F else 0)
    return found


@pytest.fixture
def contracts_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A scratch contracts directory standing in for the checkout's, free to edit."""
    directory = tmp_path / "contracts"
    directory.mkdir()
    shutil.copy(source_path("KeyRegistry"), directory / "KeyRegistry.vy")
    monkeypatch.setattr(compiler, "_REPO_CONTRACTS", directory)
    return directory


def test_contract_names_lists_the_repo_contracts() -> None:
    names = contract_names()
    assert {"Token", "KeyRegistry"} <= set(names)
    assert names == sorted(names)


def test_compile_returns_abi_bytecode_and_source_hash(tmp_path: Path) -> None:
    token = compile_contract("Token", tmp_path)
    assert token.name == "Token"
    assert {f.get("name") for f in token.abi} >= {"transfer", "transferFrom", "faucet"}
    assert isinstance(token.bytecode, bytes)
    assert token.bytecode
    expected = hashlib.sha256(source_path("Token").read_bytes()).hexdigest()
    assert token.source_hash == expected


def test_second_call_is_served_from_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = compile_contract("KeyRegistry", tmp_path)

    def must_not_compile(*args: object) -> Any:
        raise AssertionError("the compiler ran on a cache hit")

    monkeypatch.setattr(compiler, "_compile_source", must_not_compile)
    assert compile_contract("KeyRegistry", tmp_path) == first
    assert len(_entries(tmp_path)) == 1


def test_cache_hit_does_not_import_vyper(tmp_path: Path) -> None:
    compile_contract("KeyRegistry", tmp_path)
    # A fresh interpreter: this one has long since imported vyper through boa.
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        import ailedger.chain.compiler as c
        assert "vyper" not in sys.modules, "importing the module imported vyper"
        c.compile_contract("KeyRegistry", Path({str(tmp_path)!r}))
        assert "vyper" not in sys.modules, "a cache hit imported vyper"
        """
    )
    subprocess.run([sys.executable, "-W", "error", "-c", script], check=True)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b'{"format": 1, "abi": [',  # cut off mid-write
        b"\xff\xfe\x00garbage",  # not UTF-8
        b"[]",
        b'{"format": 1}',
        b'{"format": 1, "source_hash": "%s", "evm_version": "shanghai", '
        b'"abi": [], "bytecode": "not hex"}',
        b'{"format": 1, "source_hash": "%s", "evm_version": "shanghai", '
        b'"abi": {"a": 1}, "bytecode": "00"}',
        b'{"format": 1, "source_hash": "%s", "evm_version": "shanghai", "abi": [], "bytecode": ""}',
    ],
    ids=["empty", "truncated", "binary", "list", "missing-fields", "bad-hex", "bad-abi", "no-code"],
)
def test_corrupt_entry_is_ignored_and_rebuilt(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: bytes
) -> None:
    good = compile_contract("KeyRegistry", tmp_path)
    [entry] = _entries(tmp_path)
    if b"%s" in content:
        content = content % good.source_hash.encode()
    entry.write_bytes(content)

    with caplog.at_level(logging.WARNING, logger=compiler.__name__):
        assert compile_contract("KeyRegistry", tmp_path) == good
    assert any("ignoring unreadable" in r.getMessage() for r in caplog.records)

    assert json.loads(entry.read_text())["bytecode"] == good.bytecode.hex()
    assert _all_files(tmp_path) == [entry]


def test_entry_for_another_source_is_not_trusted(tmp_path: Path) -> None:
    good = compile_contract("KeyRegistry", tmp_path)
    [entry] = _entries(tmp_path)
    data = json.loads(entry.read_text())
    data["source_hash"] = "00" * 32
    data["bytecode"] = "fe"
    entry.write_text(json.dumps(data))
    assert compile_contract("KeyRegistry", tmp_path) == good


def test_failed_cache_write_still_returns_the_contract(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    result = compile_contract("KeyRegistry", tmp_path)
    assert result.bytecode
    # Neither an entry nor a stray temporary file is left behind.
    assert _all_files(tmp_path) == []


def test_crash_mid_write_leaves_no_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Crash(BaseException):
        """Stands in for a kill or KeyboardInterrupt in the middle of the write."""

    def half_write(fd: int, data: bytes) -> None:
        os.write(fd, data[: len(data) // 2])
        raise Crash

    monkeypatch.setattr(_durable, "_write_all", half_write)
    with pytest.raises(Crash):
        compile_contract("KeyRegistry", tmp_path)
    assert _all_files(tmp_path) == []

    monkeypatch.undo()
    result = compile_contract("KeyRegistry", tmp_path)
    assert [p.name for p in _all_files(tmp_path)] == [p.name for p in _entries(tmp_path)]
    assert json.loads(_entries(tmp_path)[0].read_text())["bytecode"] == result.bytecode.hex()


def test_vyper_version_is_part_of_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    compile_contract("KeyRegistry", tmp_path)
    calls: list[str] = []
    real = compiler._compile_source

    def counting(name: str, path: Path, source: bytes) -> Any:
        calls.append(name)
        return real(name, path, source)

    monkeypatch.setattr(compiler, "_compile_source", counting)
    monkeypatch.setattr(compiler, "_vyper_version", lambda: "0.4.999")
    compile_contract("KeyRegistry", tmp_path)
    assert calls == ["KeyRegistry"]
    assert len(_entries(tmp_path)) == 2


def test_source_change_is_recompiled(tmp_path: Path, contracts_copy: Path) -> None:
    cache = tmp_path / "cache"
    before = compile_contract("KeyRegistry", cache)
    source = contracts_copy / "KeyRegistry.vy"
    source.write_text(source.read_text() + "\n# a change\n")
    after = compile_contract("KeyRegistry", cache)
    assert after.source_hash != before.source_hash
    assert after.source_hash == hashlib.sha256(source.read_bytes()).hexdigest()
    assert len(_entries(cache)) == 2


@pytest.mark.parametrize("name", ["Nope", "token", "../contracts/Token", ""])
def test_unknown_contract_raises_contract_error(tmp_path: Path, name: str) -> None:
    with pytest.raises(ContractError, match="unknown contract") as caught:
        compile_contract(name, tmp_path)
    assert "Token" in str(caught.value)  # the message lists what does exist
    assert not (tmp_path / "contracts").exists()


def test_compile_failure_raises_contract_error(tmp_path: Path, contracts_copy: Path) -> None:
    (contracts_copy / "Broken.vy").write_text(
        "# pragma version ~=0.4.3\n@external\ndef f() -> uint256:\n    return undefined_name\n"
    )
    with pytest.raises(ContractError, match=r"Broken .*does not compile") as caught:
        compile_contract("Broken", tmp_path / "cache")
    assert "undefined_name" in str(caught.value)
    assert not (tmp_path / "cache" / "contracts").exists()


def test_packaged_copy_is_used_without_a_checkout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    packaged = tmp_path / "_contracts"
    packaged.mkdir()
    shutil.copy(source_path("KeyRegistry"), packaged / "KeyRegistry.vy")
    monkeypatch.setattr(compiler, "_REPO_CONTRACTS", tmp_path / "missing")
    monkeypatch.setattr(compiler, "_PACKAGED_CONTRACTS", packaged)
    assert contract_names() == ["KeyRegistry"]
    assert compile_contract("KeyRegistry", tmp_path / "cache").bytecode


def test_no_sources_at_all_raises_contract_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(compiler, "_REPO_CONTRACTS", tmp_path / "missing")
    monkeypatch.setattr(compiler, "_PACKAGED_CONTRACTS", tmp_path / "missing-too")
    with pytest.raises(ContractError, match="no contract sources found"):
        contract_names()


def _vyper_opcodes(name: str, evm_version: str) -> set[str]:
    """The instructions vyper emits for a contract (its own listing: a byte scan would
    misread data sections, such as jump tables, as instructions)."""
    from vyper.compiler import compile_code  # type: ignore[import-untyped]
    from vyper.compiler.settings import Settings  # type: ignore[import-untyped]

    output = compile_code(
        source_path(name).read_text(),
        output_formats=["opcodes"],
        settings=Settings(evm_version=evm_version),
    )
    return set(output["opcodes"].split())


def test_bytecode_uses_no_opcode_newer_than_shanghai() -> None:
    for name in contract_names():
        used = _vyper_opcodes(name, compiler.EVM_VERSION)
        assert not used & set(POST_SHANGHAI_OPCODES.values()), name


def test_opcode_check_detects_cancun_code(tmp_path: Path) -> None:
    # Guards the test above against passing vacuously: the same source built for Cancun
    # does use MCOPY, in vyper's listing and in the bytes.
    assert "MCOPY" in _vyper_opcodes("Token", "cancun")
    from vyper.compiler import compile_code  # type: ignore[import-untyped]
    from vyper.compiler.settings import Settings  # type: ignore[import-untyped]

    output = compile_code(source_path("Token").read_text(), settings=Settings(evm_version="cancun"))
    assert 0x5E in _opcodes(bytes.fromhex(output["bytecode"].removeprefix("0x")))


def test_boa_tests_the_bytecode_the_compiler_ships(tmp_path: Path) -> None:
    # tests/contracts load sources into boa; this ties them to the deployed artifacts.
    for name in contract_names():
        deployer = boa.load_partial(
            str(source_path(name)), compiler_args={"evm_version": compiler.EVM_VERSION}
        )
        assert deployer.compiler_data.bytecode == compile_contract(name, tmp_path).bytecode, name


def _deploy(compiled: CompiledContract, constructor_args: bytes = b"") -> Any:
    # Away from the default sender's CREATE addresses, where tests/contracts deploy:
    # boa's storage trace outlives anchors and would be decoded with their layouts.
    label = f"ailedger tests: compiled {compiled.name}".encode()
    address, _ = boa.env.deploy_code(
        bytecode=compiled.bytecode + constructor_args,
        override_address="0x" + hashlib.sha256(label).hexdigest()[:40],
    )
    return boa.loads_abi(json.dumps(compiled.abi), name=compiled.name).at(address)


def test_artifacts_deploy_and_run(tmp_path: Path) -> None:
    supply = 1000 * 10**18
    token = _deploy(compile_contract("Token", tmp_path), supply.to_bytes(32, "big"))
    assert token.symbol() == "AIL"
    assert token.totalSupply() == supply
    alice = boa.env.generate_address("alice")
    assert token.transfer(alice, 5) is True
    assert token.balanceOf(alice) == 5

    registry = _deploy(compile_contract("KeyRegistry", tmp_path))
    with boa.env.prank(alice):
        registry.register(b"\x07" * 32)
    assert registry.versions(alice) == 1

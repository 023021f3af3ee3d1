"""Every contract's runtime code keeps 20% headroom under EIP-170.

A contract whose runtime exceeds 24,576 bytes cannot be deployed on any mainnet-rules
chain; one close to the limit cannot take a fix. The sources are compiled exactly as
``ailedger.chain.compiler`` compiles them (same EVM version, the file's own pragmas).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from vyper.compiler import compile_from_file_input
from vyper.compiler.input_bundle import FileInput, FilesystemInputBundle
from vyper.compiler.settings import Settings

from ailedger.chain.compiler import EVM_VERSION, contract_names, source_path

EIP170_LIMIT = 24_576
HEADROOM = 0.20


def _runtime_size(name: str) -> int:
    path = source_path(name)
    file_input = FileInput(
        source_id=0, contents=path.read_text(), path=Path(path.name), resolved_path=path
    )
    output = compile_from_file_input(
        file_input,
        input_bundle=FilesystemInputBundle([path.parent]),
        settings=Settings(evm_version=EVM_VERSION),
        output_formats=["bytecode_runtime"],
    )
    return len(bytes.fromhex(output["bytecode_runtime"].removeprefix("0x")))


def test_every_contract_is_listed() -> None:
    assert {"ComputeMarket", "DataMarket", "Token"} <= set(contract_names())


@pytest.mark.parametrize("name", contract_names())
def test_runtime_keeps_headroom_under_eip170(name: str) -> None:
    size = _runtime_size(name)
    assert size <= (1 - HEADROOM) * EIP170_LIMIT, (
        f"{name} runtime is {size} bytes, over {int((1 - HEADROOM) * EIP170_LIMIT)} "
        f"(80% of the EIP-170 limit {EIP170_LIMIT})"
    )

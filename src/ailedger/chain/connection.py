"""Connecting to a chain: the embedded one in the node home, or any JSON-RPC URL.

Everything above this module talks to the chain through web3.py, so the same client
code runs against both backends; only :func:`connect` knows the difference.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ailedger.errors import ChainLockedError, ChainUnreachableError, ConfigError
from ailedger.settings import EMBEDDED

if TYPE_CHECKING:
    from web3 import Web3

    from ailedger.chain.embedded.node import EmbeddedChain

RPC_TIMEOUT_S = 30


@dataclass
class ChainConnection:
    """An open chain. Close it to seal pending transactions and release the store."""

    web3: Web3
    chain_id: int
    description: str
    embedded: EmbeddedChain | None = None
    _closed: bool = field(default=False, repr=False)

    @property
    def is_embedded(self) -> bool:
        return self.embedded is not None

    def close(self) -> None:
        if not self._closed and self.embedded is not None:
            self.embedded.close()
        self._closed = True

    def __enter__(self) -> ChainConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(chain: str, chain_dir: Path, cache_dir: Path) -> ChainConnection:
    """Open ``chain`` ("embedded" or an http(s) URL); ``chain_dir`` holds the embedded one,
    ``cache_dir`` the compiled contracts it deploys on first start.

    If another process owns the embedded chain and serves it over JSON-RPC, connect
    through that process instead of failing.
    """
    if chain == EMBEDDED:
        try:
            return open_embedded(chain_dir, cache_dir)
        except ChainLockedError:
            from ailedger.chain.embedded.node import serving_url

            url = serving_url(chain_dir)
            if url is None:
                raise
            return connect_rpc(url)
    if chain.startswith(("http://", "https://")):
        return connect_rpc(chain)
    raise ConfigError(
        f"unknown chain {chain!r}: use 'embedded' or a JSON-RPC URL such as "
        "http://127.0.0.1:8545 (flag --chain or AILEDGER_CHAIN)"
    )


def open_embedded(chain_dir: Path, cache_dir: Path) -> ChainConnection:
    from web3 import Web3

    from ailedger.chain.embedded.node import EmbeddedChain
    from ailedger.chain.embedded.provider import EmbeddedProvider
    from ailedger.chain.embedded.rpc import RpcDispatcher

    node = EmbeddedChain.open(chain_dir)
    try:
        web3 = Web3(EmbeddedProvider(RpcDispatcher(node)))
        if node.get_meta("deployment") is None:
            _deploy_at_first_start(web3, node, cache_dir)
    except BaseException:
        node.close()
        raise
    return ChainConnection(web3, node.chain_id, f"embedded chain in {chain_dir}", node)


def _deploy_at_first_start(web3: Web3, node: EmbeddedChain, cache_dir: Path) -> None:
    """A new embedded chain gets its contracts from the operator before first use; it seals
    a transaction within milliseconds, so its market takes the development windows."""
    from ailedger.chain.deploy import deploy_contracts
    from ailedger.chain.market_windows import DEV_CHAIN_WINDOWS

    deployment = deploy_contracts(web3, node.operator_account, cache_dir, DEV_CHAIN_WINDOWS)
    node.set_meta("deployment", deployment.to_json())


def connect_rpc(url: str) -> ChainConnection:
    from requests.exceptions import RequestException
    from web3 import Web3

    web3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": RPC_TIMEOUT_S}))
    try:
        chain_id = int(web3.eth.chain_id)
    except (RequestException, OSError) as exc:
        raise ChainUnreachableError(
            f"cannot reach the JSON-RPC node at {url} ({type(exc).__name__}); "
            "check the URL, or start the node (e.g. `ailedger chain serve`)"
        ) from exc
    except Exception as exc:  # an HTTP server that is not an Ethereum node
        raise ChainUnreachableError(
            f"{url} did not answer eth_chainId like an Ethereum JSON-RPC node: {exc}"
        ) from exc
    return ChainConnection(web3, chain_id, f"JSON-RPC node at {url}")

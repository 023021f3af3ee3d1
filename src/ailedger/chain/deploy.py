"""Deploying ailedger's contracts and remembering where they are.

A deployment manifest names the chain (id and genesis hash, so a manifest is never
applied to another chain that reuses the id) and each contract's address. The embedded
chain keeps its manifest in its own database and serves it as ``ailedger_deployment``;
for an external chain, ``ailedger chain deploy`` writes it into the home.

The compute market's windows depend on the network's pace (see ``market_windows``): the
deploy measures it on its own transactions, sent back to back, unless told the windows.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ailedger._durable import PUBLIC_FILE_MODE, atomic_write_text
from ailedger.chain.compiler import CompiledContract, compile_contract, contract_names
from ailedger.chain.market_windows import MarketWindows, WindowChoice, observed_block_interval
from ailedger.chain.transactions import send
from ailedger.errors import ConfigError, NotDeployedError
from ailedger.home_layout import HomeLayout

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount
    from web3 import Web3

TOKEN_INITIAL_SUPPLY = 1_000_000 * 10**18


@dataclass(frozen=True)
class Deployment:
    chain_id: int
    genesis_hash: str
    deployer: str
    block: int
    contracts: dict[str, str]

    def address(self, name: str) -> str:
        try:
            return self.contracts[name]
        except KeyError:
            raise NotDeployedError(
                f"contract {name} is not in the deployment manifest; redeploy with "
                "`ailedger chain deploy`"
            ) from None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: str) -> Deployment:
        try:
            raw = json.loads(text)
            return cls(
                chain_id=int(raw["chain_id"]),
                genesis_hash=str(raw["genesis_hash"]),
                deployer=str(raw["deployer"]),
                block=int(raw["block"]),
                contracts={str(k): str(v) for k, v in raw["contracts"].items()},
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(f"the deployment manifest {source} is invalid: {exc}") from exc


def genesis_hash(web3: Web3) -> str:
    return "0x" + bytes(web3.eth.get_block(0)["hash"]).hex()


# Dependencies first: the markets are paid in the token, the compute policy and the
# privacy ledger read the data market's datasets, and the compute market asks both the
# data market and the compute policy about compute-to-data jobs and its providers contract
# about stakes (the providers contract is bound to it afterwards); the model registry
# checks its versions' training jobs in the compute market; federated jobs escrow in the
# token and check each institution's grant in the data market; patients are paid in the
# token and their cohorts are datasets of the data market (which is bound to it after).
DEPLOY_ORDER = (
    "Token",
    "KeyRegistry",
    "NodeRegistry",
    "DataMarket",
    "Patients",
    "AuditAnchor",
    "ComputePolicy",
    "PrivacyLedger",
    "ComputeProviders",
    "ComputeMarket",
    "ModelRegistry",
    "FederatedJobs",
)
# The compute market's parameters on a new chain, besides its windows: a provider stakes
# at least 100 AIL; a provider caught with a wrong result loses half its stake.
COMPUTE_MIN_STAKE = 100 * 10**18
COMPUTE_SLASH_BPS = 5_000


def constructor_args(
    name: str, deployed: dict[str, str], windows: MarketWindows | None
) -> tuple[Any, ...]:
    """The constructor arguments of ``name``, given the contracts deployed before it;
    ``windows`` are read for ComputeMarket only."""
    if name == "Token":
        return (TOKEN_INITIAL_SUPPLY,)
    if name == "DataMarket":
        return (deployed["Token"],)
    if name in ("ComputePolicy", "PrivacyLedger"):
        return (deployed["DataMarket"],)
    if name == "ComputeProviders":
        return (deployed["Token"], COMPUTE_MIN_STAKE, COMPUTE_SLASH_BPS)
    if name == "ComputeMarket":
        assert windows is not None, "ComputeMarket is deployed with its windows"
        return (
            deployed["Token"],
            deployed["DataMarket"],
            deployed["ComputePolicy"],
            deployed["ComputeProviders"],
            windows.bid_s,
            windows.reveal_s,
            windows.dispute_s,
        )
    if name == "ModelRegistry":
        return (deployed["DataMarket"], deployed["ComputeMarket"])
    if name in ("FederatedJobs", "Patients"):
        return (deployed["Token"], deployed["DataMarket"])
    return ()


def deploy_order() -> list[str]:
    present = set(contract_names())
    known = [name for name in DEPLOY_ORDER if name in present]
    return known + sorted(present - set(DEPLOY_ORDER))


def deploy_contracts(
    web3: Web3,
    deployer: LocalAccount,
    cache_dir: Path,
    windows: MarketWindows | WindowChoice = WindowChoice(),  # noqa: B008 - frozen
) -> Deployment:
    """Deploy every contract in ``contracts/`` from ``deployer``; returns the manifest.

    ``windows`` are the compute market's windows, or the choice of which ones are fixed:
    the others are scaled to the block interval that the transactions deploying the
    contracts before it took (:meth:`MarketWindows.for_block_interval`)."""
    names = deploy_order()
    # Everything compiles before the first transaction: no gas is spent on a deployment
    # that a later compile error would leave half done, and compile time does not pass
    # for block time in the measurement below.
    compiled = {name: compile_contract(name, cache_dir) for name in names}
    addresses: dict[str, str] = {}
    blocks: list[int] = []
    for name in names:
        market = _market_windows(web3, blocks, windows) if name == "ComputeMarket" else None
        args = constructor_args(name, addresses, market)
        blocks.append(_deploy_one(web3, deployer, name, compiled[name], args, addresses))
    _bind(web3, deployer, compiled, addresses, "ComputeProviders", "bind_market", "ComputeMarket")
    _bind(web3, deployer, compiled, addresses, "DataMarket", "bind_patients", "Patients")
    return Deployment(
        chain_id=int(web3.eth.chain_id),
        genesis_hash=genesis_hash(web3),
        deployer=str(deployer.address),
        block=blocks[-1],
        contracts=addresses,
    )


def _bind(
    web3: Web3,
    deployer: LocalAccount,
    compiled: dict[str, CompiledContract],
    addresses: dict[str, str],
    contract: str,
    function: str,
    other: str,
) -> None:
    """Name ``other`` in ``contract`` (a deployer-only, once-only binding): the compute
    market in ComputeProviders (only it locks, pays and slashes stakes), the Patients
    contract in DataMarket (where patients' shares of sales go)."""
    if contract not in addresses or other not in addresses:
        return
    bound = web3.eth.contract(
        address=web3.to_checksum_address(addresses[contract]), abi=compiled[contract].abi
    )
    data = bound.encode_abi(function, [addresses[other]])
    send(web3, deployer, {"to": bound.address, "data": data, "value": 0})


def _market_windows(
    web3: Web3, blocks: list[int], windows: MarketWindows | WindowChoice
) -> MarketWindows:
    """The windows to deploy ComputeMarket with, measuring the chain if they are not all
    fixed (``blocks``: where the transactions so far landed, in sending order)."""
    if isinstance(windows, MarketWindows):
        return windows
    return windows.resolve(observed_block_interval(web3, blocks) if windows.measures else 0.0)


def _deploy_one(
    web3: Web3,
    deployer: LocalAccount,
    name: str,
    compiled: CompiledContract,
    args: tuple[Any, ...],
    addresses: dict[str, str],
) -> int:
    """Deploy one contract, record its address; returns the block it landed in."""
    factory = web3.eth.contract(abi=compiled.abi, bytecode=compiled.bytecode)
    data = factory.constructor(*args).data_in_transaction
    result = send(web3, deployer, {"data": data, "value": 0})
    if result.contract_address is None:
        raise NotDeployedError(f"deploying {name} produced no contract address")
    addresses[name] = str(result.contract_address)
    return result.block_number


def manifest_path(home: Path, chain_id: int, genesis: str) -> Path:
    return HomeLayout(home).deployments / f"{chain_id}-{genesis[2:14]}.json"


def save_manifest(path: Path, deployment: Deployment) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, deployment.to_json(), mode=PUBLIC_FILE_MODE)


def find_deployment(web3: Web3, home: Path) -> Deployment:
    """The manifest for the chain ``web3`` talks to: the home's file, else the node's."""
    chain_id = int(web3.eth.chain_id)
    genesis = genesis_hash(web3)
    path = manifest_path(home, chain_id, genesis)
    if path.exists():
        return Deployment.from_json(path.read_text(), str(path))
    served = _served_manifest(web3)
    if served is not None and served.genesis_hash == genesis:
        return served
    raise NotDeployedError(
        f"ailedger's contracts are not deployed on chain {chain_id} (no manifest at {path}); "
        "run `ailedger chain deploy`, or copy the manifest from the home that deployed them"
    )


def _served_manifest(web3: Web3) -> Deployment | None:
    try:
        text = web3.provider.make_request("ailedger_deployment", [])  # type: ignore[arg-type]
    except Exception:  # not an ailedger node
        return None
    result = text.get("result") if isinstance(text, dict) else None
    if not isinstance(result, str):
        return None
    return Deployment.from_json(result, "the node's ailedger_deployment answer")

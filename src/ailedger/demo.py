"""The end-to-end demo: two parties on a fresh embedded chain, told in plain words.

It grows with every capability. Today: homes and keys, the chain and its contracts,
gas and tokens, the key registry, a payment, and the chain surviving a restart.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from ailedger.chain.clients import KeyRegistryClient, TokenClient
from ailedger.chain.compiler import compile_contract
from ailedger.chain.connection import open_embedded
from ailedger.chain.deploy import find_deployment
from ailedger.chain.transactions import fund_from_dev_account
from ailedger.keys.home import NodeHome
from ailedger.settings import load_settings
from ailedger.units import format_amount

Say = Callable[[str], None]
DEMO_PASSPHRASE = "demo passphrase - not for real keys"
GAS_WEI = 5 * 10**18


def run_demo(directory: Path | None, say: Say) -> None:
    root = directory or Path(tempfile.mkdtemp(prefix="ailedger-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    cache = load_settings().cache_dir
    say(f"[bold]ailedger demo[/bold] in {root}\n")

    say("[bold]1. Two parties create their node homes[/bold]")
    hospital = NodeHome.init(root / "hospital", DEMO_PASSPHRASE)
    researcher = NodeHome.init(root / "researcher", DEMO_PASSPHRASE)
    for label, home in (("hospital", hospital), ("researcher", researcher)):
        say(f"  {label:<10} account {home.address}, keys encrypted in {home.path}")

    say("\n[bold]2. The hospital starts the embedded chain; contracts deploy at first start[/bold]")
    connection = open_embedded(hospital.chain_dir, cache)
    try:
        web3 = connection.web3
        deployment = find_deployment(web3, hospital.path)
        say(f"  chain id {connection.chain_id}, stored in {hospital.chain_dir}")
        for name, address in sorted(deployment.contracts.items()):
            say(f"  contract {name:<12} at {address}")

        say("\n[bold]3. Both get gas money from the dev chain's operator[/bold]")
        for label, home in (("hospital", hospital), ("researcher", researcher)):
            r = fund_from_dev_account(web3, home.address, GAS_WEI)
            amount = format_amount(GAS_WEI, "ETH")
            say(f"  {label:<10} +{amount}  tx {r.tx_hash} (block {r.block_number})")

        accounts = {
            "hospital": hospital.unlock_account(DEMO_PASSPHRASE),
            "researcher": researcher.unlock_account(DEMO_PASSPHRASE),
        }
        token_abi = compile_contract("Token", cache).abi
        registry_abi = compile_contract("KeyRegistry", cache).abi
        tokens = {
            label: TokenClient(web3, deployment.address("Token"), token_abi, account)
            for label, account in accounts.items()
        }

        say("\n[bold]4. Each publishes its encryption key in the KeyRegistry contract[/bold]")
        for label, home in (("hospital", hospital), ("researcher", researcher)):
            registry = KeyRegistryClient(
                web3, deployment.address("KeyRegistry"), registry_abi, accounts[label]
            )
            r = registry.register(home.encryption_public_key)
            say(f"  {label:<10} key {home.encryption_public_key.hex()[:16]}…  tx {r.tx_hash}")

        say("\n[bold]5. The researcher mints test tokens and pays the hospital[/bold]")
        r = tokens["researcher"].faucet(1_000 * 10**18)
        say(f"  researcher minted {format_amount(1_000 * 10**18)}  tx {r.tx_hash}")
        r = tokens["researcher"].transfer(hospital.address, 250 * 10**18)
        say(
            f"  researcher paid the hospital {format_amount(250 * 10**18)}  tx {r.tx_hash} "
            f"(block {r.block_number}, {r.gas_used} gas)"
        )
        for label, home in (("hospital", hospital), ("researcher", researcher)):
            say(f"  {label:<10} balance {format_amount(tokens[label].balance_of(home.address))}")

        say("\n[bold]6. A payment beyond the balance is refused before it is mined[/bold]")
        try:
            tokens["hospital"].transfer(researcher.address, 10**30)
        except Exception as exc:  # shown to the reader, not swallowed
            say(f"  refused: {exc}")
        head = web3.eth.block_number
    finally:
        connection.close()

    say("\n[bold]7. The chain keeps its state across a restart[/bold]")
    with open_embedded(hospital.chain_dir, cache) as reopened:
        again = TokenClient(reopened.web3, deployment.address("Token"), token_abi, None)
        say(
            f"  reopened at block {reopened.web3.eth.block_number} (was {head}); "
            f"hospital still holds {format_amount(again.balance_of(hospital.address))}"
        )
    say("\ndone. Try: AILEDGER_HOME=" + str(root / "hospital") + " ailedger account show")

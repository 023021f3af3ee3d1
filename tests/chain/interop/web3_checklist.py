"""The interoperability checklist with web3.py: the same checks, in the same result shape,
as ``tools/interop/checklist.mjs`` runs with ethers and viem."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from eth_account import Account
from web3 import AsyncWeb3, Web3
from web3.exceptions import ContractLogicError
from web3.providers.persistent import WebSocketProvider

ETHER = 10**18
INITIAL = 42
STORED = 7
# The fields execution-apis requires (Shanghai); nodes may add more (Anvil adds blob fields).
RECEIPT_FIELDS = {
    "transactionHash", "transactionIndex", "blockHash", "blockNumber", "from", "to",
    "cumulativeGasUsed", "gasUsed", "contractAddress", "logs", "logsBloom", "status",
    "effectiveGasPrice", "type",
}  # fmt: skip
TRANSACTION_FIELDS = {
    "hash", "type", "nonce", "from", "to", "value", "gas", "input", "chainId", "blockHash",
    "blockNumber", "transactionIndex", "maxFeePerGas", "maxPriorityFeePerGas", "gasPrice",
    "accessList", "v", "r", "s", "yParity",
}  # fmt: skip
BLOCK_FIELDS = {
    "number", "hash", "parentHash", "nonce", "sha3Uncles", "logsBloom", "transactionsRoot",
    "stateRoot", "receiptsRoot", "miner", "difficulty", "extraData", "size", "gasLimit",
    "gasUsed", "timestamp", "transactions", "uncles", "baseFeePerGas", "mixHash",
    "withdrawals", "withdrawalsRoot",
}  # fmt: skip


def within_one_percent(estimate: int, used: int) -> bool:
    return used <= estimate and estimate * 100 <= used * 101


def run(config: dict[str, Any]) -> dict[str, Any]:
    web3 = Web3(Web3.HTTPProvider(config["http"], request_kwargs={"timeout": 30}))
    out: dict[str, Any] = {"chainId": web3.eth.chain_id > 0}
    dev = web3.eth.accounts[0]
    out["accounts"] = Web3.is_checksum_address(dev)

    # web3.py checksums addresses itself; the lowercase `to` ethers sends goes in raw
    account = Account.create()
    request = {"from": dev.lower(), "to": account.address.lower(), "value": hex(ETHER)}
    funding = web3.provider.make_request("eth_sendTransaction", [request])  # type: ignore[arg-type]
    funded = web3.eth.wait_for_transaction_receipt(funding["result"], timeout=20, poll_latency=0.05)
    out["nodeSigned"] = {"status": funded["status"], "lowercaseTo": True}

    tx_hash = funding["result"]
    raw_receipt = web3.provider.make_request("eth_getTransactionReceipt", [tx_hash])  # type: ignore[arg-type]
    raw_transaction = web3.provider.make_request("eth_getTransactionByHash", [tx_hash])  # type: ignore[arg-type]
    raw_block = web3.provider.make_request(
        "eth_getBlockByHash", [funded["blockHash"].to_0x_hex(), False]
    )  # type: ignore[arg-type]
    out["missingFields"] = {
        "receipt": sorted(RECEIPT_FIELDS - set(raw_receipt["result"])),
        "transaction": sorted(TRANSACTION_FIELDS - set(raw_transaction["result"])),
        "block": sorted(BLOCK_FIELDS - set(raw_block["result"])),
    }

    def at(tag: Any) -> str:
        return str(web3.eth.get_balance(account.address, tag))

    out["balances"] = {
        "before": at(funded["blockNumber"] - 1),
        "earliest": at("earliest"),
        "atBlock": at(funded["blockNumber"]),
        "latest": at("latest"),
        "pending": at("pending"),
    }

    def send(tx: dict[str, Any]) -> Any:
        tx = {
            "from": account.address,
            "nonce": web3.eth.get_transaction_count(account.address, "pending"),
            "chainId": web3.eth.chain_id,
            **tx,
        }
        tx.setdefault("gas", web3.eth.estimate_gas(tx))
        tip = web3.eth.max_priority_fee
        base = web3.eth.get_block("latest")["baseFeePerGas"]
        tx.update(maxFeePerGas=2 * base + tip, maxPriorityFeePerGas=tip)
        signed = account.sign_transaction(tx)
        tx_hash = web3.eth.send_raw_transaction(signed.raw_transaction)
        return web3.eth.wait_for_transaction_receipt(tx_hash, timeout=20, poll_latency=0.05)

    signed = send({"to": dev, "value": 1000})
    out["signed"] = {
        "status": signed["status"],
        "type": signed["type"],
        "gasUsed": signed["gasUsed"],
        "fromMatches": signed["from"] == account.address,
    }

    factory = web3.eth.contract(abi=config["abi"], bytecode=config["bytecode"])
    deployed = send(factory.constructor(INITIAL).build_transaction({"from": account.address}))
    address = deployed["contractAddress"]
    out["deploy"] = {
        "status": deployed["status"],
        "addressMatches": Web3.is_checksum_address(address),
        "hasCode": len(web3.eth.get_code(address)) > 0,
    }
    contract = web3.eth.contract(address=address, abi=config["abi"])
    out["call"] = str(contract.functions.stored().call())

    try:
        contract.functions.refuse().call()
        out["revert"] = "no revert"
    except ContractLogicError as exc:
        reason = str(exc.message).removeprefix("execution reverted: ")
        out["revert"] = {"code": "CALL_EXCEPTION", "reason": reason}

    log_filter = web3.eth.filter({"address": address})
    store = contract.functions.store(STORED)
    estimate = store.estimate_gas({"from": account.address})
    stored = send(store.build_transaction({"from": account.address, "gas": estimate}))
    out["estimate"] = within_one_percent(estimate, stored["gasUsed"])
    event = contract.events.Stored()
    changes = log_filter.get_new_entries()
    out["filterLogs"] = [str(event.process_log(entry)["args"]["value"]) for entry in changes]
    out["uninstall"] = web3.eth.uninstall_filter(log_filter.filter_id)
    logs = event.get_logs(from_block=deployed["blockNumber"])
    out["getLogs"] = [str(entry["args"]["value"]) for entry in logs]

    history = web3.eth.fee_history(2, "latest", [25, 75])
    out["feeHistory"] = {
        "blocks": len(history["gasUsedRatio"]),
        "baseFees": len(history["baseFeePerGas"]),
        "rewardRows": len(history["reward"]),
        "rewardColumns": all(len(row) == 2 for row in history["reward"]),
        "requested": 2,
    }
    out["priorityFee"] = web3.eth.max_priority_fee > 0

    out["batch"] = _batch(config["http"], account.address)
    out["newHeads"] = _in_own_loop(
        lambda: _new_heads(
            config["ws"], stored["blockNumber"], lambda: send({"to": dev, "value": 1})
        )
    )
    return out


def _in_own_loop(make: Callable[[], Coroutine[Any, Any, bool]]) -> bool:
    """Run a coroutine on a fresh event loop in a thread of its own: the calling thread may
    already run a loop (an earlier test's, in the same worker), where asyncio.run refuses."""
    result: list[bool] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            result.append(asyncio.run(make()))
        except BaseException as exc:  # handed to the caller below
            errors.append(exc)

    worker = threading.Thread(target=run, name="web3-subscription")
    worker.start()
    worker.join()
    if errors:
        raise errors[0]
    return result[0]


def _batch(url: str, address: str) -> list[Any]:
    """web3.py's batch_requests, with a request the node refuses among them."""
    web3 = Web3(Web3.HTTPProvider(url))
    answers = web3.provider.make_batch_request(  # type: ignore[attr-defined]
        [("eth_blockNumber", []), ("eth_getBalance", [address, "latest"]), ("no_such_method", [])]
    )
    return ["result" if "result" in a else a["error"]["code"] for a in answers]


async def _new_heads(url: str, after_block: int, make_block: Any) -> bool:
    async with AsyncWeb3(WebSocketProvider(url)) as web3:
        await web3.eth.subscribe("newHeads")
        # The subscription is live once eth_subscribe answered; make a block.
        await asyncio.to_thread(make_block)
        async with asyncio.timeout(20):
            async for message in web3.socket.process_subscriptions():
                if int(message["result"]["number"]) > after_block:
                    return True
    return False

// The interoperability checklist, run by ethers v6 or viem against one JSON-RPC node.
//
//   node checklist.mjs ethers|viem CONFIG.json
//
// CONFIG holds {http, ws, abi, bytecode} (the probe contract, compiled by the test).
// Prints one JSON object: each check's outcome in a form that does not depend on the node
// (no hashes, no chain ids, no account addresses), so the test can compare nodes and clients.
// tests/chain/interop/web3_checklist.py runs the same checks with web3.py.

import { readFileSync } from "node:fs";

const ETHER = 10n ** 18n;
const INITIAL = 42n;
const STORED = 7n;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// A subscription is live some time after eth_subscribe is sent: make blocks until the
// first head arrives (one is enough when the subscription was already live).
async function awaitHead(received, makeBlock) {
  for (let attempt = 0; attempt < 20; attempt++) {
    await makeBlock();
    const got = await Promise.race([received, sleep(500).then(() => null)]);
    if (got !== null) return got;
  }
  throw new Error("no newHeads notification over WebSocket");
}

function withinOnePercent(estimate, used) {
  return used <= estimate && estimate * 100n <= used * 101n;
}

function feeHistoryShape(history, blocks) {
  return {
    blocks: history.gasUsedRatio.length,
    baseFees: history.baseFeePerGas.length,
    rewardRows: history.reward.length,
    rewardColumns: history.reward.every((row) => row.length === 2),
    requested: blocks,
  };
}

// ------------------------------------------------------------------------- ethers

async function ethersChecklist(config) {
  const ethers = await import("ethers");
  const provider = new ethers.JsonRpcProvider(config.http, undefined, { pollingInterval: 50 });
  const out = {};
  out.chainId = (await provider.getNetwork()).chainId > 0n;
  const dev = await provider.getSigner(0);
  const devAddress = await dev.getAddress();
  out.accounts = ethers.isAddress(devAddress);

  // the node signs; ethers' JsonRpcSigner sends `to` (and everything else) lowercase
  const wallet = ethers.Wallet.createRandom().connect(provider);
  const funding = await dev.sendTransaction({ to: wallet.address.toLowerCase(), value: ETHER });
  const funded = await funding.wait();
  out.nodeSigned = { status: funded.status, lowercaseTo: true };
  const at = (tag) => provider.getBalance(wallet.address, tag).then(String);
  out.balances = {
    before: await at(funded.blockNumber - 1),
    earliest: await at("earliest"),
    atBlock: await at(funded.blockNumber),
    latest: await at("latest"),
    pending: await at("pending"),
  };

  // ethers reuses an identical request's answer for 250 ms, the pending nonce included:
  // on a node that mines at once, back-to-back sends need ethers' own nonce tracking
  const signer = new ethers.NonceManager(wallet);
  const sent = await signer.sendTransaction({ to: devAddress, value: 1000n });
  const signed = await sent.wait();
  out.signed = {
    status: signed.status,
    type: signed.type,
    gasUsed: Number(signed.gasUsed),
    fromMatches: signed.from === wallet.address,
  };

  const factory = new ethers.ContractFactory(config.abi, config.bytecode, signer);
  const contract = await factory.deploy(INITIAL);
  const deployed = await contract.deploymentTransaction().wait();
  const address = await contract.getAddress();
  out.deploy = {
    status: deployed.status,
    addressMatches: deployed.contractAddress === address,
    hasCode: (await provider.getCode(address)).length > 2,
  };
  out.call = String(await contract.stored());

  try {
    await contract.refuse();
    out.revert = "no revert";
  } catch (error) {
    out.revert = { code: error.code, reason: error.reason };
  }

  const filterId = await provider.send("eth_newFilter", [{ address }]);
  const estimate = await contract.store.estimateGas(STORED);
  const stored = await (await contract.store(STORED)).wait();
  out.estimate = withinOnePercent(estimate, stored.gasUsed);
  const decode = (log) => String(contract.interface.parseLog(log).args.value);
  const changes = await provider.send("eth_getFilterChanges", [filterId]);
  out.filterLogs = changes.map(decode);
  out.uninstall = await provider.send("eth_uninstallFilter", [filterId]);
  const logs = await provider.getLogs({ address, fromBlock: deployed.blockNumber });
  out.getLogs = logs.map(decode);

  const history = await provider.send("eth_feeHistory", ["0x2", "latest", [25, 75]]);
  out.feeHistory = feeHistoryShape(history, 2);
  out.priorityFee = (await provider.getFeeData()).maxPriorityFeePerGas > 0n;

  // an explicit batch: JsonRpcProvider._send posts the array as one request
  const batch = await provider._send([
    { jsonrpc: "2.0", id: 1, method: "eth_blockNumber", params: [] },
    { jsonrpc: "2.0", id: 2, method: "eth_getBalance", params: [wallet.address, "latest"] },
    { jsonrpc: "2.0", id: 3, method: "no_such_method", params: [] },
  ]);
  out.batch = batch.map((answer) => ("result" in answer ? "result" : answer.error.code));

  const socket = new ethers.WebSocketProvider(config.ws);
  try {
    await socket.getBlockNumber(); // connected
    const head = new Promise((resolve) => {
      socket.on("block", (number) => number > stored.blockNumber && resolve(true));
    });
    out.newHeads = await awaitHead(head, async () => {
      await (await signer.sendTransaction({ to: devAddress, value: 1n })).wait();
    });
  } finally {
    await socket.destroy();
  }
  provider.destroy();
  return out;
}

// --------------------------------------------------------------------------- viem

async function viemChecklist(config) {
  const viem = await import("viem");
  const { generatePrivateKey, privateKeyToAccount } = await import("viem/accounts");
  const probe = viem.createPublicClient({ transport: viem.http(config.http) });
  const chain = viem.defineChain({
    id: await probe.getChainId(),
    name: "under test",
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [config.http], webSocket: [config.ws] } },
  });
  const transport = viem.http(config.http);
  const client = viem.createPublicClient({ chain, transport, pollingInterval: 50 });
  const out = {};
  out.chainId = chain.id > 0;
  const [devAddress] = await client.request({ method: "eth_accounts" });
  out.accounts = viem.isAddress(devAddress);

  const account = privateKeyToAccount(generatePrivateKey());
  const devWallet = viem.createWalletClient({ chain, transport, account: devAddress });
  const fundingHash = await devWallet.sendTransaction({
    to: account.address.toLowerCase(),
    value: ETHER,
  });
  const funded = await client.waitForTransactionReceipt({ hash: fundingHash });
  out.nodeSigned = { status: funded.status === "success" ? 1 : 0, lowercaseTo: true };
  const at = (where) =>
    client.getBalance({ address: account.address, ...where }).then(String);
  out.balances = {
    before: await at({ blockNumber: funded.blockNumber - 1n }),
    earliest: await at({ blockTag: "earliest" }),
    atBlock: await at({ blockNumber: funded.blockNumber }),
    latest: await at({ blockTag: "latest" }),
    pending: await at({ blockTag: "pending" }),
  };

  const wallet = viem.createWalletClient({ chain, transport, account });
  const sentHash = await wallet.sendTransaction({ to: devAddress, value: 1000n });
  const signed = await client.waitForTransactionReceipt({ hash: sentHash });
  out.signed = {
    status: signed.status === "success" ? 1 : 0,
    type: signed.type === "eip1559" ? 2 : signed.type,
    gasUsed: Number(signed.gasUsed),
    fromMatches: viem.getAddress(signed.from) === account.address,
  };

  const deployHash = await wallet.deployContract({
    abi: config.abi,
    bytecode: config.bytecode,
    args: [INITIAL],
  });
  const deployed = await client.waitForTransactionReceipt({ hash: deployHash });
  const address = deployed.contractAddress;
  out.deploy = {
    status: deployed.status === "success" ? 1 : 0,
    addressMatches: viem.isAddress(address),
    hasCode: ((await client.getCode({ address })) ?? "0x").length > 2,
  };
  const contract = { address, abi: config.abi };
  out.call = String(await client.readContract({ ...contract, functionName: "stored" }));

  try {
    await client.readContract({ ...contract, functionName: "refuse" });
    out.revert = "no revert";
  } catch (error) {
    const reverted = error.walk((e) => e instanceof viem.ContractFunctionRevertedError);
    out.revert = { code: "CALL_EXCEPTION", reason: reverted?.reason ?? null };
  }

  const filter = await client.createContractEventFilter({ ...contract, eventName: "Stored" });
  const estimate = await client.estimateContractGas({
    ...contract,
    functionName: "store",
    args: [STORED],
    account,
  });
  const storeHash = await wallet.writeContract({
    ...contract,
    functionName: "store",
    args: [STORED],
  });
  const stored = await client.waitForTransactionReceipt({ hash: storeHash });
  out.estimate = withinOnePercent(estimate, stored.gasUsed);
  const changes = await client.getFilterChanges({ filter });
  out.filterLogs = changes.map((log) => String(log.args.value));
  out.uninstall = await client.uninstallFilter({ filter });
  const logs = await client.getContractEvents({
    ...contract,
    eventName: "Stored",
    fromBlock: deployed.blockNumber,
  });
  out.getLogs = logs.map((log) => String(log.args.value));

  const history = await client.getFeeHistory({ blockCount: 2, rewardPercentiles: [25, 75] });
  out.feeHistory = feeHistoryShape(history, 2);
  out.priorityFee = (await client.estimateMaxPriorityFeePerGas()) > 0n;

  // viem's http transport sends concurrent requests as one batch when asked to
  const batching = viem.createPublicClient({ chain, transport: viem.http(config.http, { batch: true }) });
  const answers = await Promise.allSettled([
    batching.getBlockNumber(),
    batching.getBalance({ address: account.address }),
    batching.request({ method: "no_such_method", params: [] }),
  ]);
  out.batch = answers.map((a) =>
    a.status === "fulfilled" ? "result" : (a.reason.cause?.code ?? a.reason.code),
  );

  const socket = viem.createPublicClient({ chain, transport: viem.webSocket(config.ws) });
  let unwatch = () => {};
  try {
    await socket.getBlockNumber(); // connected
    const head = new Promise((resolve, reject) => {
      unwatch = socket.watchBlockNumber({
        poll: false,
        onBlockNumber: (number) => number > stored.blockNumber && resolve(true),
        onError: reject,
      });
    });
    out.newHeads = await awaitHead(head, async () => {
      const hash = await wallet.sendTransaction({ to: devAddress, value: 1n });
      await client.waitForTransactionReceipt({ hash });
    });
  } finally {
    unwatch();
    (await socket.transport.getRpcClient()).close();
  }
  return out;
}

const [client, configPath] = process.argv.slice(2);
const config = JSON.parse(readFileSync(configPath, "utf8"));
const checklists = { ethers: ethersChecklist, viem: viemChecklist };
if (!(client in checklists)) {
  console.error(`usage: node checklist.mjs ethers|viem CONFIG.json (not ${client})`);
  process.exit(2);
}
try {
  const result = await checklists[client](config);
  process.stdout.write(JSON.stringify(result) + "\n");
  process.exit(0);
} catch (error) {
  console.error(error);
  process.exit(1);
}

// Hardhat's node as benchmarks/chain_peers.py runs it: its defaults (automine, chain id
// 31337, 20 unlocked dev accounts). No contracts are compiled here.
module.exports = {};

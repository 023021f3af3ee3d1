#!/usr/bin/env bash
# Install Hardhat's development node (pinned in tools/hardhat/package-lock.json), the speed
# reference that benchmarks/chain_peers.py starts next to ailedger's chain. Not needed by the
# test suite or CI. Idempotent: does nothing when the installed tree matches the lock file.
# Quiet on success.
set -euo pipefail
exec bash "$(dirname "${BASH_SOURCE[0]}")/npm-tool.sh" hardhat node_modules/.bin/hardhat \
    Hardhat ./node_modules/.bin/hardhat --version

#!/usr/bin/env bash
# Install the JavaScript clients of the interoperability test (ethers v6 and viem, pinned in
# tools/interop/package-lock.json), which run tools/interop/checklist.mjs against
# `ailedger chain serve` and Anvil (tests/chain/interop). Idempotent: does nothing when the
# installed tree matches the lock file. Quiet on success.
set -euo pipefail
exec bash "$(dirname "${BASH_SOURCE[0]}")/npm-tool.sh" interop node_modules/viem \
    "the ethers and viem clients" \
    node --input-type=module -e 'await import("ethers"); await import("viem");'

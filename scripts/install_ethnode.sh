#!/usr/bin/env bash
# Install the external Ethereum JSON-RPC node (Anvil, pinned in tools/ethnode/package-lock.json)
# that the test suite runs as its second chain backend. The npm package ships Anvil's binary
# for this platform (an optional dependency); no install script has to run. Idempotent: does
# nothing when the installed tree matches the lock file. Quiet on success.
set -euo pipefail
case "$(uname -m)" in
    x86_64 | amd64) arch=amd64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) arch="$(uname -m)" ;;
esac
os="$(uname -s | tr '[:upper:]' '[:lower:]')"
bin="node_modules/@foundry-rs/anvil-$os-$arch/bin/anvil"
exec bash "$(dirname "${BASH_SOURCE[0]}")/npm-tool.sh" ethnode "$bin" Anvil "./$bin" --version

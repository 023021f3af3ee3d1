#!/usr/bin/env bash
# Set everything up (Python deps, the Ganache JSON-RPC node) and run the whole test suite.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m "not slow"`.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
bash scripts/setup.sh

if ! command -v npm >/dev/null 2>&1 && [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Node.js and npm from Debian for the Ganache test node..." >&2
    apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
fi
bash scripts/install_ethnode.sh

exec .venv/bin/python -m pytest "$@"

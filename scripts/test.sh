#!/usr/bin/env bash
# Set everything up (Python deps, the Anvil JSON-RPC node), check lint, format and types,
# and run the whole test suite.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m "not slow"`.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
bash scripts/setup.sh

# System packages the tests use: Node.js/npm to install the Anvil test node, bubblewrap to
# confine compute jobs (the sandbox falls back to unshare, and its tests say so).
missing=()
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
if ((${#missing[@]})) && [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${missing[*]} from Debian..." >&2
    apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
fi
bash scripts/install_ethnode.sh

# The house rules before any test: lint, formatting and strict typing, so main stays clean.
echo "ruff check, ruff format --check, mypy --strict..." >&2
.venv/bin/ruff check --quiet src tests benchmarks
.venv/bin/ruff format --check --quiet src tests benchmarks
.venv/bin/mypy --strict src

exec .venv/bin/python -m pytest "$@"

#!/usr/bin/env bash
# Set everything up (Python deps, the Anvil JSON-RPC node, ethers and viem), check lint,
# format and types, and run the whole test suite.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m "not slow"`.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
bash scripts/setup.sh

# System packages the tests use: Node.js/npm to install the Anvil test node, bubblewrap to
# confine compute jobs (the sandbox falls back to unshare, and its tests say so), and
# PostgreSQL, which every storage suite runs against besides SQLite. Debian puts
# PostgreSQL's programs under /usr/lib/postgresql/<version>/bin, off the PATH.
find_postgres() {
    command -v initdb >/dev/null 2>&1 && return 0
    local bin
    for bin in /usr/lib/postgresql/*/bin; do
        [[ -x "$bin/initdb" ]] && PATH="$bin:$PATH" && return 0
    done
    return 1
}
missing=()
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
find_postgres || missing+=(postgresql)
if ((${#missing[@]})) && [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${missing[*]} from Debian..." >&2
    apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
fi
bash scripts/install_ethnode.sh
# ethers and viem for the JSON-RPC interoperability test, which must run, not skip, on CI.
bash scripts/install_interop.sh
export AILEDGER_REQUIRE_INTEROP=1
# Debian's Chromium for the web app's browser tests, which must run, not skip, on CI.
bash scripts/install_browser.sh
export AILEDGER_REQUIRE_BROWSER=1
find_postgres || echo "PostgreSQL is missing: its tests will fail (AILEDGER_REQUIRE_POSTGRES)" >&2
export PATH
# On CI the PostgreSQL half of the storage suites must run, not skip.
export AILEDGER_REQUIRE_POSTGRES=1

# The house rules before any test: lint, formatting and strict typing, so main stays clean.
echo "ruff check, ruff format --check, mypy --strict..." >&2
.venv/bin/ruff check --quiet src tests benchmarks
.venv/bin/ruff format --check --quiet src tests benchmarks
.venv/bin/mypy --strict src

# Two workers, each taking whole files (a module's chain and homes are built once): much of
# the suite waits on processes, timeouts and the chain's blocks, not on a core. The slowest
# tests are listed at the end, so the suite's time is watched where it goes.
exec .venv/bin/python -m pytest -n "${AILEDGER_TEST_WORKERS:-2}" --dist loadfile --durations=20 "$@"

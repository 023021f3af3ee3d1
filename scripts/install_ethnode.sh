#!/usr/bin/env bash
# Install the external Ethereum JSON-RPC node (Ganache, pinned in tools/ethnode/package-lock.json)
# that the test suite runs as its second chain backend. Idempotent: does nothing when the
# installed tree matches the lock file. Quiet on success.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="$repo/tools/ethnode"
bin="$dir/node_modules/.bin/ganache"
stamp="$dir/node_modules/.ailedger-lock.sha256"

if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
    echo "install_ethnode.sh: Node.js and npm are required to install Ganache, but" \
        "\`node\` or \`npm\` is not on PATH." >&2
    echo "Install them (Debian/Ubuntu: \`sudo apt-get install nodejs npm\`;" \
        "Node 18 or newer) and run this script again." >&2
    exit 1
fi

lock_sum="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
if [[ -x "$bin" && -f "$stamp" && "$(cat "$stamp")" == "$lock_sum" ]]; then
    exit 0
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
# npm ci installs exactly the lock file (integrity-checked) and fails if package.json and the
# lock disagree; it removes any old node_modules first.
if ! npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error >"$log" 2>&1; then
    cat "$log" >&2
    echo "install_ethnode.sh: \`npm ci\` in tools/ethnode failed (output above)." >&2
    exit 1
fi
if [[ ! -x "$bin" ]]; then
    echo "install_ethnode.sh: npm ci succeeded but $bin is missing." >&2
    exit 1
fi
echo "$lock_sum" >"$stamp"

#!/usr/bin/env bash
# Install Hardhat's development node (pinned in tools/hardhat/package-lock.json), the speed
# reference that benchmarks/chain_peers.py starts next to ailedger's chain. Not needed by the
# test suite or CI. Idempotent: does nothing when the installed tree matches the lock file.
# Quiet on success.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="$repo/tools/hardhat"
bin="$dir/node_modules/.bin/hardhat"
stamp="$dir/node_modules/.ailedger-lock.sha256"

if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
    echo "install_hardhat.sh: Node.js and npm are required to install Hardhat, but" \
        "\`node\` or \`npm\` is not on PATH." >&2
    echo "Install them (Debian/Ubuntu: \`sudo apt-get install nodejs npm\`;" \
        "Node 20 or newer) and run this script again." >&2
    exit 1
fi

lock_sum="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
if [[ -x "$bin" && -f "$stamp" && "$(cat "$stamp")" == "$lock_sum" ]]; then
    exit 0
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
# npm ci installs exactly the lock file (integrity-checked) and fails if package.json and the
# lock disagree; it removes any old node_modules first. Hardhat's dependencies need no
# install scripts (its EDR engine ships as per-platform optional packages).
if ! npm ci --prefix "$dir" --no-audit --no-fund --ignore-scripts --loglevel=error >"$log" 2>&1; then
    cat "$log" >&2
    echo "install_hardhat.sh: \`npm ci\` in tools/hardhat failed (output above)." >&2
    exit 1
fi
if ! (cd "$dir" && "$bin" --version) >/dev/null 2>&1; then
    echo "install_hardhat.sh: $bin is installed but does not run." >&2
    exit 1
fi
echo "$lock_sum" >"$stamp"

#!/usr/bin/env bash
# Install the JavaScript clients of the interoperability test (ethers v6 and viem, pinned in
# tools/interop/package-lock.json), which run tools/interop/checklist.mjs against
# `ailedger chain serve` and Anvil (tests/chain/interop). Idempotent: does nothing when the
# installed tree matches the lock file. Quiet on success.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="$repo/tools/interop"
stamp="$dir/node_modules/.ailedger-lock.sha256"

if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
    echo "install_interop.sh: Node.js and npm are required for the ethers and viem" \
        "interoperability test, but \`node\` or \`npm\` is not on PATH." >&2
    echo "Install them (Debian/Ubuntu: \`sudo apt-get install nodejs npm\`;" \
        "Node 20 or newer) and run this script again." >&2
    exit 1
fi

lock_sum="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
if [[ -d "$dir/node_modules/ethers" && -d "$dir/node_modules/viem" && -f "$stamp" &&
    "$(cat "$stamp")" == "$lock_sum" ]]; then
    exit 0
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
# npm ci installs exactly the lock file (integrity-checked), fails if package.json and the
# lock disagree, and removes any old node_modules first. --ignore-scripts: neither client
# needs an install script, and none should run.
if ! npm ci --prefix "$dir" --no-audit --no-fund --ignore-scripts --loglevel=error >"$log" 2>&1; then
    cat "$log" >&2
    echo "install_interop.sh: \`npm ci\` in tools/interop failed (output above)." >&2
    exit 1
fi
if ! (cd "$dir" && node --input-type=module -e 'await import("ethers"); await import("viem");') \
    >"$log" 2>&1; then
    cat "$log" >&2
    echo "install_interop.sh: ethers or viem is installed but does not load." >&2
    exit 1
fi
echo "$lock_sum" >"$stamp"

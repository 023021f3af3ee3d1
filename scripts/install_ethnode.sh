#!/usr/bin/env bash
# Install the external Ethereum JSON-RPC node (Anvil, pinned in tools/ethnode/package-lock.json)
# that the test suite runs as its second chain backend. The npm package ships Anvil's binary
# for this platform (an optional dependency); no install script has to run. Idempotent: does
# nothing when the installed tree matches the lock file. Quiet on success.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="$repo/tools/ethnode"
case "$(uname -m)" in
    x86_64 | amd64) arch=amd64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) arch="$(uname -m)" ;;
esac
os="$(uname -s | tr '[:upper:]' '[:lower:]')"
bin="$dir/node_modules/@foundry-rs/anvil-$os-$arch/bin/anvil"
stamp="$dir/node_modules/.ailedger-lock.sha256"

if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
    echo "install_ethnode.sh: Node.js and npm are required to install Anvil, but" \
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
# lock disagree; it removes any old node_modules first. --ignore-scripts: npm installs
# the platform package holding the binary; the postinstall would only fetch that binary
# again when the package is missing, which is checked below.
if ! npm ci --prefix "$dir" --no-audit --no-fund --ignore-scripts --loglevel=error >"$log" 2>&1; then
    cat "$log" >&2
    echo "install_ethnode.sh: \`npm ci\` in tools/ethnode failed (output above)." >&2
    exit 1
fi
if [[ ! -x "$bin" ]]; then
    echo "install_ethnode.sh: npm ci succeeded but $bin is missing" \
        "(no Anvil package for $os-$arch?)." >&2
    exit 1
fi
if ! "$bin" --version >/dev/null 2>&1; then
    echo "install_ethnode.sh: $bin is installed but does not run." >&2
    exit 1
fi
echo "$lock_sum" >"$stamp"

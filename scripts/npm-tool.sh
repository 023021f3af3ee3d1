#!/usr/bin/env bash
# Install a pinned npm tool under tools/NAME from its package-lock.json. Idempotent: does
# nothing when the installed tree matches the lock file (a stamp holds its hash). Quiet on
# success.
#   bash scripts/npm-tool.sh NAME READY WHAT CHECK...
# READY: a path under tools/NAME that exists once installed; WHAT: how messages name the
# tool; CHECK: a command run in tools/NAME after the install that must succeed (it loads).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
name="$1" ready="$2" what="$3"
shift 3
dir="$repo/tools/$name"
stamp="$dir/node_modules/.ailedger-lock.sha256"
me="install_$name.sh"

if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
    echo "$me: Node.js and npm are required to install $what, but \`node\` or \`npm\` is" \
        "not on PATH." >&2
    echo "Install them (Debian/Ubuntu: \`sudo apt-get install nodejs npm\`;" \
        "Node 20 or newer) and run this script again." >&2
    exit 1
fi

lock_sum="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
if [[ -e "$dir/$ready" && -f "$stamp" && "$(cat "$stamp")" == "$lock_sum" ]]; then
    exit 0
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
# npm ci installs exactly the lock file (integrity-checked), fails if package.json and the
# lock disagree, and removes any old node_modules first. --ignore-scripts: none of the
# tools needs an install script (binaries ship as per-platform optional packages), and
# none should run.
if ! npm ci --prefix "$dir" --no-audit --no-fund --ignore-scripts --loglevel=error >"$log" 2>&1; then
    cat "$log" >&2
    echo "$me: \`npm ci\` in tools/$name failed (output above)." >&2
    exit 1
fi
if [[ ! -e "$dir/$ready" ]]; then
    echo "$me: npm ci succeeded but tools/$name/$ready is missing" \
        "(no package for $(uname -s)-$(uname -m)?)." >&2
    exit 1
fi
if ! (cd "$dir" && "$@") >"$log" 2>&1; then
    cat "$log" >&2
    echo "$me: $what is installed but does not run." >&2
    exit 1
fi
echo "$lock_sum" >"$stamp"

#!/usr/bin/env bash
# Set up a virtualenv of its own for a tool whose pins clash with ./.venv, from a lock file.
# Idempotent and quick once done (a stamp in the venv holds the lock's hash).
#   bash scripts/side-venv.sh VENV LOCK READY WHAT
# VENV: the directory (e.g. .venv-flower); LOCK: its lock file; READY: a file under VENV that
# exists once the install is done (e.g. bin/flower-superlink); WHAT: how messages name it.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
venv="$1" lock="$2" ready="$3" what="$4"
name="$(basename "$venv")"

python="${PYTHON:-}"
if [[ -z "$python" ]]; then
    for candidate in python3.11 python3.12 python3.13 python3; do
        if command -v "$candidate" >/dev/null 2>&1; then python="$candidate"; break; fi
    done
fi
if [[ -z "$python" ]] || ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "$name: $what's virtualenv needs Python 3.11 or newer (set PYTHON=...)." >&2
    exit 1
fi

stamp="$venv/.ailedger-lock.sha256"
lock_sum="$(sha256sum "$lock" | cut -d' ' -f1)"
if [[ -e "$venv/$ready" && -f "$stamp" && "$(cat "$stamp")" == "$lock_sum" ]]; then
    exit 0
fi
if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv" || {
        echo "$name: creating $venv failed; on Debian run" \
            "\`apt-get install python3-venv\` and try again." >&2
        exit 1
    }
fi
echo "installing $what's pinned dependencies ($lock) into $venv..." >&2
# --no-deps: the lock names every package, so nothing unpinned (never torch) can slip in.
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r "$lock"
"$venv/bin/python" -m pip check >/dev/null || {
    echo "$name: $lock is inconsistent (pip check):" >&2
    "$venv/bin/python" -m pip check >&2
    exit 1
}
echo "$lock_sum" >"$stamp"

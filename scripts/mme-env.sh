#!/usr/bin/env bash
# Set up the Matchmaker Exchange test peer's virtualenv, ./.venv-mme, from requirements-mme.lock.
# Idempotent and quick once done (a stamp holds the lock's hash); run from anywhere.
#   bash scripts/mme-env.sh
# patientMatcher (a real MME node, served with mongomock instead of MongoDB) pins Flask, pymongo
# and requests versions ailedger has no use for, so it lives apart from ./.venv: the
# interoperability tests start it as a subprocess from here (tests/health/mme_peer_server.py).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
venv=.venv-mme

python="${PYTHON:-}"
if [[ -z "$python" ]]; then
    for candidate in python3.11 python3.12 python3.13 python3; do
        if command -v "$candidate" >/dev/null 2>&1; then python="$candidate"; break; fi
    done
fi
if [[ -z "$python" ]] || ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "mme-env.sh: the MME test peer's virtualenv needs Python 3.11 or newer (set PYTHON=...)." >&2
    exit 1
fi

stamp="$venv/.ailedger-mme-lock.sha256"
lock_sum="$(sha256sum requirements-mme.lock | cut -d' ' -f1)"
if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$lock_sum" ]]; then
    exit 0
fi
if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv" || {
        echo "mme-env.sh: creating $venv failed; on Debian run" \
            "\`apt-get install python3-venv\` and try again." >&2
        exit 1
    }
fi
echo "installing the MME test peer's pinned dependencies (requirements-mme.lock) into $venv..." >&2
# --no-deps: the lock names every package, so nothing unpinned can slip in.
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
    -r requirements-mme.lock
"$venv/bin/python" -m pip check >/dev/null || {
    echo "mme-env.sh: requirements-mme.lock is inconsistent (pip check):" >&2
    "$venv/bin/python" -m pip check >&2
    exit 1
}
echo "$lock_sum" >"$stamp"

#!/usr/bin/env bash
# Set up ailedger in ./.venv from the pinned lock file. Idempotent; run from anywhere.
#   bash scripts/setup.sh          runtime + development dependencies
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

python="${PYTHON:-}"
if [[ -z "$python" ]]; then
    for candidate in python3.11 python3.12 python3.13 python3; do
        if command -v "$candidate" >/dev/null 2>&1; then python="$candidate"; break; fi
    done
fi
if [[ -z "$python" ]] || ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "setup.sh: ailedger needs Python 3.11 or newer (set PYTHON=/path/to/python3.11)." >&2
    exit 1
fi

if [[ ! -x .venv/bin/python ]]; then
    "$python" -m venv .venv || {
        echo "setup.sh: creating the virtual environment failed; on Debian run" \
            "\`apt-get install python3-venv\` and try again." >&2
        exit 1
    }
fi

stamp=.venv/.ailedger-lock.sha256
lock_sum="$(sha256sum requirements.lock | cut -d' ' -f1)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$lock_sum" ]]; then
    echo "installing pinned dependencies (requirements.lock)..." >&2
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
    echo "$lock_sum" >"$stamp"
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
# Flower (federated learning) in a virtualenv of its own: its pins clash with ailedger's.
bash scripts/flower-env.sh
bash scripts/fetch_hpo_annotations.sh  # HPO annotation frequencies and alternate ids
# patientMatcher, a real Matchmaker Exchange node the interoperability tests run as a peer.
bash scripts/mme-env.sh

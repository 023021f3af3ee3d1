#!/usr/bin/env bash
# Set up Flower's own virtualenv, ./.venv-flower, from requirements-flower.lock. Idempotent and
# quick once done (a stamp holds the lock's hash); run from anywhere.
#   bash scripts/flower-env.sh
# flwr 1.42 pins fastapi, starlette, typer, rich and protobuf at versions that clash with
# ailedger's requirements.lock, so it never goes into ./.venv: ailedger runs Flower's programs
# from here (ailedger.federated.flower; AILEDGER_FLOWER_VENV points elsewhere if wanted).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
venv=.venv-flower

python="${PYTHON:-}"
if [[ -z "$python" ]]; then
    for candidate in python3.11 python3.12 python3.13 python3; do
        if command -v "$candidate" >/dev/null 2>&1; then python="$candidate"; break; fi
    done
fi
if [[ -z "$python" ]] || ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "flower-env.sh: Flower's virtualenv needs Python 3.11 or newer (set PYTHON=...)." >&2
    exit 1
fi

stamp="$venv/.ailedger-flower-lock.sha256"
lock_sum="$(sha256sum requirements-flower.lock | cut -d' ' -f1)"
if [[ -x "$venv/bin/flower-superlink" && -f "$stamp" && "$(cat "$stamp")" == "$lock_sum" ]]; then
    exit 0
fi
if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv" || {
        echo "flower-env.sh: creating $venv failed; on Debian run" \
            "\`apt-get install python3-venv\` and try again." >&2
        exit 1
    }
fi
echo "installing Flower's pinned dependencies (requirements-flower.lock) into $venv..." >&2
# --no-deps: the lock names every package, so nothing unpinned (never torch) can slip in.
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
    -r requirements-flower.lock
"$venv/bin/python" -m pip check >/dev/null || {
    echo "flower-env.sh: requirements-flower.lock is inconsistent (pip check):" >&2
    "$venv/bin/python" -m pip check >&2
    exit 1
}
echo "$lock_sum" >"$stamp"

#!/usr/bin/env bash
# Set everything up and run the end-to-end demo on a fresh embedded chain.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$repo/scripts/setup.sh"
exec "$repo/.venv/bin/ailedger" demo "$@"

#!/usr/bin/env bash
# Refresh docs/screenshots/*.png from the browser tests: each role's page, in Debian's
# Chromium, against a real node on an embedded chain. Run after changing a page.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
bash scripts/setup.sh
bash scripts/install_browser.sh
AILEDGER_SCREENSHOTS="$repo/docs/screenshots" AILEDGER_REQUIRE_BROWSER=1 \
    .venv/bin/pytest -q -p no:cacheprovider tests/web -k browser
ls -l docs/screenshots

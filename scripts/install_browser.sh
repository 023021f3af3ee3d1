#!/usr/bin/env bash
# Install Debian's Chromium for the browser tests (Playwright drives it through
# executable_path: Playwright cannot download its own browser here). Idempotent and quiet.
set -euo pipefail
CHROMIUM=/usr/lib/chromium/chromium
[[ -x "$CHROMIUM" ]] && exit 0
if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
    echo "Chromium is missing ($CHROMIUM): install Debian's chromium and fonts-liberation" >&2
    exit 0
fi
echo "installing chromium and fonts-liberation from Debian..." >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null

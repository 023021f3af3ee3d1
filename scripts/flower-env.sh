#!/usr/bin/env bash
# Set up Flower's own virtualenv, ./.venv-flower, from requirements-flower.lock. Idempotent and
# quick once done (a stamp holds the lock's hash); run from anywhere.
#   bash scripts/flower-env.sh
# flwr 1.42 pins fastapi, starlette, typer, rich and protobuf at versions that clash with
# ailedger's requirements.lock, so it never goes into ./.venv: ailedger runs Flower's programs
# from here (ailedger.federated.flower; AILEDGER_FLOWER_VENV points elsewhere if wanted).
set -euo pipefail
exec bash "$(dirname "${BASH_SOURCE[0]}")/side-venv.sh" \
    .venv-flower requirements-flower.lock bin/flower-superlink "Flower"

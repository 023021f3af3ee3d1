#!/usr/bin/env bash
# Set up the Matchmaker Exchange test peer's virtualenv, ./.venv-mme, from requirements-mme.lock.
# Idempotent and quick once done (a stamp holds the lock's hash); run from anywhere.
#   bash scripts/mme-env.sh
# patientMatcher (a real MME node, served with mongomock instead of MongoDB) pins Flask, pymongo
# and requests versions ailedger has no use for, so it lives apart from ./.venv: the
# interoperability tests start it as a subprocess from here (tests/health/mme_peer_server.py).
set -euo pipefail
exec bash "$(dirname "${BASH_SOURCE[0]}")/side-venv.sh" \
    .venv-mme requirements-mme.lock bin/python "the MME test peer"

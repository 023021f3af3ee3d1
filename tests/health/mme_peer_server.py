"""Serve patientMatcher (a real Matchmaker Exchange node, from PyPI) on 127.0.0.1 for tests.

Run with ``.venv-mme``'s Python (``scripts/mme-env.sh``), never ailedger's: patientMatcher pins
its own Flask and pymongo. MongoDB is replaced by mongomock before the app is built, so
nothing but this process is needed. It loads patientMatcher's 50 demo patients (the MME
benchmark set), accepts the client token in ``PEER_TOKEN`` and, when ``AILEDGER_URL`` is set,
knows ailedger as an outgoing node (``ailedger`` in its ``nodes`` collection, reached with
``AILEDGER_TOKEN`` in the v1.0 content type), so its own ``POST /match/external/<id>``
queries ailedger the way patientMatcher queries any MME node. The port is printed on the first
line of stdout; the server runs until killed.

Usage: ``.venv-mme/bin/python tests/health/mme_peer_server.py``
"""

import logging
import os
import sys

import mongomock
import patientMatcher.server as pm_server
from patientMatcher.resources import path_to_benchmark_patients
from patientMatcher.utils.add import load_demo_patients
from werkzeug.serving import make_server

V1_0 = "application/vnd.ga4gh.matchmaker.v1.0+json"


def main() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    pm_server.MongoClient = mongomock.MongoClient
    app = pm_server.create_app()
    app.db["clients"].insert_one({"_id": "ailedger-tests", "auth_token": os.environ["PEER_TOKEN"]})
    loaded = load_demo_patients(path_to_benchmark_patients, app.db)
    if os.environ.get("AILEDGER_URL"):
        app.db["nodes"].insert_one(
            {
                "_id": "ailedger",
                "label": "ailedger node under test",
                "matching_url": os.environ["AILEDGER_URL"],
                "auth_token": os.environ["AILEDGER_TOKEN"],
                "accepted_content": V1_0,
            }
        )
    server = make_server("127.0.0.1", 0, app, threaded=True)
    print(server.server_port, len(loaded), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

"""The wire between nodes: every path and header name, written once.

The node's routers declare their routes with these templates and the callers fill them
in with :func:`path`, so a renamed route cannot leave a caller behind.
"""

from __future__ import annotations

# The data gateway (sharing/http.py)
ACCESS = "/v1/access"
DATASET_METADATA = "/v1/datasets/{dataset_id}/metadata"
AUDIT_CHECKPOINT = "/v1/audit/checkpoint"
AUDIT_KEY = "/v1/audit/key"
AUDIT_RECEIPT = "/v1/audit/receipts/{index}"
# What an outside auditor re-derives the log from (audit/remote.py): stored entries, by
# ?start=&stop=, and RFC 9162 consistency proofs, by ?first=&second= (tree sizes).
AUDIT_ENTRIES = "/v1/audit/entries"
AUDIT_CONSISTENCY = "/v1/audit/consistency"
GRANT_READS = "/v1/grants/{grant_id}/reads"
HEALTH = "/v1/health"

# The node's own processes (node/own_entries.py)
OWN_ENTRIES = "/v1/audit/outgoing"

# The job inbox of a requester's node (compute/requester/http.py)
JOB_SPEC = "/v1/jobs/{job_id}/spec"
JOB_BUNDLE = "/v1/jobs/{job_id}/bundle"
JOB_LOGS = "/v1/jobs/{job_id}/logs/{seq}"
JOB_OUTPUT = "/v1/jobs/{job_id}/output"

# The privacy desk of a data owner's node (privacy/http.py)
PRIVATE_RELEASE = "/v1/privacy/release"

# The prediction desk of a model owner's node (ai/http.py)
MODEL_PREDICT = "/v1/models/predict"

# Matchmaker Exchange API v1.1 (health/http.py)
MME_MATCH = "/mme/match"

# Headers of a served dataset: the data key wrapped to the requester, the object version
# it was encrypted under, and the audit entry that records the read (base64 JSON).
WRAPPED_KEY_HEADER = "X-Ailedger-Wrapped-Key"
VERSION_HEADER = "X-Ailedger-Object-Version"
AUDIT_HEADER = "X-Ailedger-Audit-Entry"

# A signed node-to-node request (peer/signing.py) and an MME token (MME API v1.1).
SIGNATURE_HEADER = "X-Ailedger-Signature"
AUTH_TOKEN_HEADER = "X-Auth-Token"


def path(template: str, **fields: object) -> str:
    """``template`` with its ``{fields}`` filled in: ``path(JOB_SPEC, job_id=7)``."""
    return template.format(**fields)

"""The web app: a user-facing REST API under ``/api/v1`` and server-rendered pages per
role (data owner, researcher, GPU owner, clinician, auditor), served by ``ailedger node
start`` beside the node-to-node routes.

Routes parse, call one function of a capability (the same function the CLI calls) and
render; they hold no business logic. ``deps`` is how a route gets the home's session
and the signed-in user; ``render`` turns a template into a page.
"""

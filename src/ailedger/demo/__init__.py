"""The end-to-end demo (`ailedger demo`): several parties on one fresh embedded chain.

`story` tells the chapters in order; `compute` holds the compute market's chapters and
`records` the synthetic FHIR records the hospital imports. The demo composes capabilities
the way a deployment would, so it lives beside `node/` and the CLI, above them all.
"""

"""The per-node audit log: an RFC 6962 Merkle log of every data access, with signed checkpoints.

See :mod:`ailedger.audit.merkle` (hashing and proofs), :mod:`ailedger.audit.checkpoint`
(C2SP signed-note checkpoints), :mod:`ailedger.audit.log` (the durable log) and
:mod:`ailedger.audit.receipt` (receipts a requester can verify on its own).
"""

"""Trustworthy AI: model passports with verifiable lineage, and decision receipts.

A model version is registered on chain (ModelRegistry) with the hash of its passport: a
signed statement in the OpenSSF model-signing format over the model's files, its card and
its lineage (the training jobs, and the datasets with the grants and purposes they were
used under). Each decision a served model makes is a leaf of the node's audit log, so the
person it concerns can verify their receipt against the on-chain anchor.

This capability may use sharing's, compute's and privacy's public modules (grants, jobs,
privacy spend) to check lineage; nothing below it imports it.
"""

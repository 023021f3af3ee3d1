"""Helpers for ailedger's own tests and for projects testing against ailedger."""

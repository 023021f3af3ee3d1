"""Encrypted, content-addressed storage of shared data at its owner's node."""

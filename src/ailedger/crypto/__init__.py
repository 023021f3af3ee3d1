"""Cryptography for data sharing: streaming AEAD for objects, HPKE for data keys."""

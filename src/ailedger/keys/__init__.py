"""The node home and its keys: the Ethereum account keystore and the X25519 encryption key."""

"""Owner-controlled data sharing: publishing, consent on chain, the gateway, fetching."""

"""Chain access: contract compilation, typed clients, the embedded node and JSON-RPC."""

"""The embedded single-node chain: py-evm execution, blocks persisted in SQLite."""

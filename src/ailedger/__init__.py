"""ailedger: a ledger for AI on EVM smart contracts.

Importing the package has no side effects and pulls in no heavy dependency; every part
(`chain`, `keys`, `cli`, ...) imports what it needs when it is used.
"""

__version__ = "0.1.0"

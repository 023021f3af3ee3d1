"""The ``ailedger`` command line: parses, calls one function, renders. No logic here."""

"""The requester's side of the compute market (see :mod:`ailedger.compute`)."""

"""The provider's side of the compute market (see :mod:`ailedger.compute`)."""

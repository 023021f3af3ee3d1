"""Between ailedger nodes: the paths and headers of the wire, signed requests, one client."""

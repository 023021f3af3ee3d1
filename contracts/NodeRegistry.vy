# pragma version ~=0.4.3
"""
@title ailedger node registry
@notice Where each party's node can be reached: the HTTP base URL of its data gateway
        (and, later, its matchmaking and compute endpoints). Requesters look up a dataset
        owner's gateway here; the URL is the owner's public endpoint, never personal data.
"""

MAX_URL: constant(uint256) = 256

event NodeRegistered:
    node: indexed(address)
    url: String[256]

urls: public(HashMap[address, String[256]])


@external
def register_node(url: String[256]):
    """
    @notice Set or change the caller's node URL; an empty URL withdraws it.
    """
    if len(url) > 0:
        assert slice(url, 0, 7) == "http://" or (
            len(url) > 8 and slice(url, 0, 8) == "https://"
        ), "node: url must start with http:// or https://"
    self.urls[msg.sender] = url
    log NodeRegistered(node=msg.sender, url=url)

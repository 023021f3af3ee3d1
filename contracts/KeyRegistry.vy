# pragma version ~=0.4.3
"""
@title ailedger key registry
@notice Maps each account to its X25519 encryption public key (RFC 7748), so that a data
        owner can wrap a data key to a requester (HPKE, RFC 9180) without asking them first.
@dev Only the account itself can set or rotate its key. The version counter lets a
     holder of a wrapped key tell which registration it was wrapped to.
"""

event KeyRegistered:
    account: indexed(address)
    key: bytes32
    version: uint256


keys: public(HashMap[address, bytes32])
versions: public(HashMap[address, uint256])


@external
def register(key: bytes32):
    """
    @notice Set or rotate the caller's encryption public key.
    """
    # An all-zero X25519 public key is a low-order point: every shared secret with it
    # is zero (RFC 7748 section 6.1), so data wrapped to it would be readable by anyone.
    assert key != empty(bytes32), "register: key is zero"
    version: uint256 = self.versions[msg.sender] + 1
    self.keys[msg.sender] = key
    self.versions[msg.sender] = version
    log KeyRegistered(account=msg.sender, key=key, version=version)

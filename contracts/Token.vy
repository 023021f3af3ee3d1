# pragma version ~=0.4.3
"""
@title ailedger token (AIL)
@notice The ERC-20 payment token of ailedger: data access, compute rent and escrow are
        priced and settled in it. Implements EIP-20 (https://eips.ethereum.org/EIPS/eip-20).
@dev A faucet mints test tokens, but only on development chains, so a deployment on a
     consortium or public chain can never be inflated through it.
"""

from ethereum.ercs import IERC20
from ethereum.ercs import IERC20Detailed

implements: IERC20
implements: IERC20Detailed

# Chain ids where the faucet may mint: Ganache (1337), Hardhat/Anvil (31337) and
# ailedger's embedded dev chain (7357). Anything else is treated as real money.
DEV_CHAIN_IDS: constant(uint256[3]) = [1337, 31337, 7357]
FAUCET_MAX_PER_CALL: public(constant(uint256)) = 10_000 * 10**18

NAME: constant(String[32]) = "ailedger token"
SYMBOL: constant(String[32]) = "AIL"
DECIMALS: constant(uint8) = 18

balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])
totalSupply: public(uint256)


@deploy
def __init__(initial_supply: uint256):
    self._mint(msg.sender, initial_supply)


@view
@external
def name() -> String[32]:
    return NAME


@view
@external
def symbol() -> String[32]:
    return SYMBOL


@view
@external
def decimals() -> uint8:
    return DECIMALS


@external
def transfer(_to: address, _value: uint256) -> bool:
    self._transfer(msg.sender, _to, _value)
    return True


@external
def transferFrom(_from: address, _to: address, _value: uint256) -> bool:
    allowed: uint256 = self.allowance[_from][msg.sender]
    assert allowed >= _value, "transferFrom: amount exceeds allowance"
    # An unlimited approval (max uint256) is never spent down, as in OpenZeppelin's ERC20,
    # which saves an SSTORE per transfer for contracts that pull payments repeatedly.
    if allowed != max_value(uint256):
        self.allowance[_from][msg.sender] = allowed - _value
    self._transfer(_from, _to, _value)
    return True


@external
def approve(_spender: address, _value: uint256) -> bool:
    # EIP-20 leaves the approve front-running race to clients: callers that change a
    # non-zero allowance should set it to 0 first.
    assert _spender != empty(address), "approve: spender is the zero address"
    self.allowance[msg.sender][_spender] = _value
    log IERC20.Approval(owner=msg.sender, spender=_spender, value=_value)
    return True


@external
def faucet(amount: uint256):
    """
    @notice Mint `amount` test tokens to the caller; development chains only.
    """
    assert chain.id in DEV_CHAIN_IDS, "faucet: not a dev chain"
    assert amount <= FAUCET_MAX_PER_CALL, "faucet: amount above per-call limit"
    self._mint(msg.sender, amount)


@internal
def _transfer(_from: address, _to: address, _value: uint256):
    # Tokens sent to the zero address would be lost without lowering totalSupply.
    assert _to != empty(address), "transfer: recipient is the zero address"
    balance: uint256 = self.balanceOf[_from]
    assert balance >= _value, "transfer: amount exceeds balance"
    self.balanceOf[_from] = balance - _value
    self.balanceOf[_to] += _value
    log IERC20.Transfer(sender=_from, receiver=_to, value=_value)


@internal
def _mint(_to: address, _value: uint256):
    self.totalSupply += _value
    self.balanceOf[_to] += _value
    log IERC20.Transfer(sender=empty(address), receiver=_to, value=_value)

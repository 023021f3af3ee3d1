# pragma version ~=0.4.3
# An ERC-20 that, when armed, calls back into a target (the market) from inside
# transfer/transferFrom, records whether that reentrant call succeeded, and carries on.
# It can also act as an account itself (act), so it can be a requester, a provider or a data owner.

balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])
target: address
payload: Bytes[512]
armed: public(bool)
attempts: public(uint256)
successes: public(uint256)

@deploy
def __init__(supply: uint256):
    self.balanceOf[msg.sender] = supply

@external
def arm(target: address, payload: Bytes[512]):
    self.target = target
    self.payload = payload
    self.armed = True

@external
def act(target: address, payload: Bytes[512]):
    raw_call(target, payload)

@internal
def _hook():
    if self.armed:
        self.armed = False
        self.attempts += 1
        if raw_call(self.target, self.payload, revert_on_failure=False):
            self.successes += 1

@internal
def _move(src: address, dst: address, amount: uint256):
    self.balanceOf[src] -= amount
    self.balanceOf[dst] += amount

@external
def transfer(to: address, amount: uint256) -> bool:
    self._move(msg.sender, to, amount)
    self._hook()
    return True

@external
def transferFrom(src: address, dst: address, amount: uint256) -> bool:
    self.allowance[src][msg.sender] -= amount
    self._move(src, dst, amount)
    self._hook()
    return True

@external
def approve(spender: address, amount: uint256) -> bool:
    self.allowance[msg.sender][spender] = amount
    return True

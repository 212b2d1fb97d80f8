# pragma version 0.4.3
# pragma evm-version cancun
# pragma optimize gas
"""
@title Settlement
@notice Escrow of EnergyToken and the once-per-interval netted settlement of
        gridex.

        Participants deposit tokens into escrow (deposit, or deposit_for paid by
        someone else) and withdraw what is theirs. After each market interval
        the operator posts one netted settlement: the accounts, in strictly
        ascending address order, and their signed escrow balance changes in
        token base units, with the operator's fee, such that
        sum(deltas) + fee == 0. The fee is credited to the operator's escrow
        balance (before the deltas apply; the operator may be one of the
        accounts). The contract accepts each interval id once, rejects a
        settlement that would overdraw an account, and records and emits the
        32-byte hash of the off-chain clearing result; the deltas themselves
        are in the transaction's input, found through the Settled event.

        Invariant: token.balanceOf(self) == sum of all escrow balances.
        Roles: the owner sets the operator; only the operator settles;
        ownership moves in two steps. Every revert carries a reason string
        starting with "settlement: ".
"""

from ethereum.ercs import IERC20

# One settlement carries at most this many accounts (a feeder's participants).
MAX_ACCOUNTS: constant(uint256) = 2048
# Amounts and deltas stay within the token's supply cap, so sums cannot overflow.
MAX_AMOUNT: constant(uint256) = 2**128 - 1
MAX_DELTA: constant(int256) = 2**128 - 1

event Deposited:
    account: indexed(address)
    payer: indexed(address)
    amount: uint256

event Withdrawn:
    account: indexed(address)
    amount: uint256

event Settled:
    interval_id: indexed(uint256)
    operator: indexed(address)
    result_hash: bytes32
    fee: uint256
    accounts: uint256

event OperatorChanged:
    previous_operator: indexed(address)
    new_operator: indexed(address)

event OwnershipTransferStarted:
    previous_owner: indexed(address)
    new_owner: indexed(address)

event OwnershipTransferred:
    previous_owner: indexed(address)
    new_owner: indexed(address)

token: public(immutable(IERC20))
owner: public(address)
pending_owner: public(address)
operator: public(address)
# escrow balance per account, in token base units
balanceOf: public(HashMap[address, uint256])
# clearing-result hash per settled interval id; zero while unsettled
settled: public(HashMap[uint256, bytes32])


@deploy
def __init__(token_: IERC20, operator_: address):
    assert token_.address != empty(address), "settlement: token is the zero address"
    assert operator_ != empty(address), "settlement: operator is the zero address"
    token = token_
    self.owner = msg.sender
    self.operator = operator_
    log OwnershipTransferred(previous_owner=empty(address), new_owner=msg.sender)
    log OperatorChanged(previous_operator=empty(address), new_operator=operator_)


@internal
def _deposit(account: address, amount: uint256):
    assert account != empty(address), "settlement: deposit for zero address"
    assert amount != 0, "settlement: zero amount"
    assert amount <= MAX_AMOUNT, "settlement: amount out of range"
    self.balanceOf[account] += amount
    assert extcall token.transferFrom(msg.sender, self, amount), "settlement: token transfer failed"
    log Deposited(account=account, payer=msg.sender, amount=amount)


@external
def deposit(amount: uint256):
    """
    @notice Move `amount` tokens from the caller (who approved this contract)
            into the caller's escrow.
    """
    self._deposit(msg.sender, amount)


@external
def deposit_for(account: address, amount: uint256):
    """
    @notice Move `amount` tokens from the caller into `account`'s escrow
            (a faucet or the operator funding a participant).
    """
    self._deposit(account, amount)


@external
def withdraw(amount: uint256):
    """
    @notice Move `amount` tokens from the caller's escrow back to the caller.
    """
    assert amount != 0, "settlement: zero amount"
    balance: uint256 = self.balanceOf[msg.sender]
    assert balance >= amount, "settlement: insufficient escrow balance"
    self.balanceOf[msg.sender] = balance - amount
    assert extcall token.transfer(msg.sender, amount), "settlement: token transfer failed"
    log Withdrawn(account=msg.sender, amount=amount)


@external
def settle(
    interval_id: uint256,
    accounts: DynArray[address, MAX_ACCOUNTS],
    deltas: DynArray[int256, MAX_ACCOUNTS],
    fee: uint256,
    result_hash: bytes32,
):
    """
    @notice Apply the netted settlement of one interval, once.
    @param accounts strictly ascending (as 160-bit numbers), no zero address
    @param deltas signed escrow changes in base units, one per account
    @param fee credited to the operator's escrow; sum(deltas) + fee == 0
    @param result_hash hash of the off-chain clearing result, nonzero
    """
    assert msg.sender == self.operator, "settlement: caller is not the operator"
    assert self.settled[interval_id] == empty(bytes32), "settlement: interval already settled"
    assert result_hash != empty(bytes32), "settlement: result hash is zero"
    count: uint256 = len(accounts)
    assert len(deltas) == count, "settlement: accounts and deltas differ in length"
    assert fee <= MAX_AMOUNT, "settlement: fee out of range"
    # The fee is credited first, so an operator that also appears in `accounts`
    # (standing in for the grid) is checked against its balance after the fee.
    self.balanceOf[msg.sender] += fee
    total: int256 = convert(fee, int256)
    previous: uint256 = 0
    for i: uint256 in range(count, bound=MAX_ACCOUNTS):
        account: address = accounts[i]
        delta: int256 = deltas[i]
        key: uint256 = convert(account, uint256)
        assert key > previous, "settlement: accounts not strictly ascending"
        previous = key
        assert delta <= MAX_DELTA and delta >= -MAX_DELTA, "settlement: delta out of range"
        total += delta
        balance: uint256 = self.balanceOf[account]
        if delta >= 0:
            self.balanceOf[account] = balance + convert(delta, uint256)
        else:
            debit: uint256 = convert(-delta, uint256)
            assert balance >= debit, "settlement: account overdrawn"
            self.balanceOf[account] = balance - debit
    assert total == 0, "settlement: deltas and fee do not sum to zero"
    self.settled[interval_id] = result_hash
    log Settled(
        interval_id=interval_id, operator=msg.sender, result_hash=result_hash, fee=fee, accounts=count
    )


@external
def set_operator(new_operator: address):
    assert msg.sender == self.owner, "settlement: caller is not the owner"
    assert new_operator != empty(address), "settlement: operator is the zero address"
    log OperatorChanged(previous_operator=self.operator, new_operator=new_operator)
    self.operator = new_operator


@external
def transfer_ownership(new_owner: address):
    """
    @notice First step of an ownership transfer; the zero address cancels one.
    """
    assert msg.sender == self.owner, "settlement: caller is not the owner"
    self.pending_owner = new_owner
    log OwnershipTransferStarted(previous_owner=self.owner, new_owner=new_owner)


@external
def accept_ownership():
    assert msg.sender == self.pending_owner, "settlement: caller is not the pending owner"
    log OwnershipTransferred(previous_owner=self.owner, new_owner=msg.sender)
    self.owner = msg.sender
    self.pending_owner = empty(address)

# pragma version 0.4.3
# pragma evm-version cancun
# pragma optimize gas
"""
@title Settlement
@notice Escrow of EnergyToken and the netted settlement of gridex: one
        provisional posting per interval, then versioned corrections.

        Participants deposit tokens into escrow (deposit, or deposit_for paid by
        someone else). After each market interval the operator posts one netted
        settlement (settle, version 0): the accounts, in strictly ascending
        address order, and their signed escrow balance changes in token base
        units, with the operator's fee, such that sum(deltas) + fee == 0. The
        fee is credited to the operator's escrow balance (before the deltas
        apply; the operator may be one of the accounts). When late meter
        readings arrive, the operator posts a correction (correct, version
        1, 2, ...) carrying only the difference, balanced the same way, naming
        the previous posting's hash: each version is accepted once and in
        order, and the interval's recorded hash moves along the chain. A
        posting that would overdraw an account reverts. Deltas are in the
        transaction's input, found through the Settled and Corrected events.

        Finality and withdrawals. The operator advances two watermarks, both
        monotonic: final_before (no posting for an interval below it is
        accepted any more) and open_through (the last interval the engine
        accepts orders for). A withdrawal is requested, and executed once the
        operator has advanced at least once since and every interval up to the
        open_through announced by that first advance is final: the funds a
        settlement of those intervals needs stay in escrow until then.

        Invariant: token.balanceOf(self) == sum of all escrow balances.
        Roles: the owner proposes an operator, who takes over after
        change_delay seconds (visible on chain as OperatorProposed with its
        eta); ownership moves in two steps with the same delay. Every revert
        carries a reason string starting with "settlement: ".
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

event WithdrawalRequested:
    account: indexed(address)
    amount: uint256
    epoch: uint256

event Advanced:
    epoch: indexed(uint256)
    final_before: uint256
    open_through: uint256

event Corrected:
    interval_id: indexed(uint256)
    version: indexed(uint256)
    previous_hash: bytes32
    result_hash: bytes32
    fee: uint256
    accounts: uint256

event OperatorProposed:
    current_operator: indexed(address)
    new_operator: indexed(address)
    eta: uint256

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
    eta: uint256

event OwnershipTransferred:
    previous_owner: indexed(address)
    new_owner: indexed(address)

token: public(immutable(IERC20))
# seconds between proposing an operator or owner and the change taking effect
change_delay: public(immutable(uint256))
owner: public(address)
pending_owner: public(address)
owner_eta: public(uint256)
operator: public(address)
pending_operator: public(address)
operator_eta: public(uint256)
# escrow balance per account, in token base units
balanceOf: public(HashMap[address, uint256])
# hash of the latest posting per interval id; zero while unsettled
settled: public(HashMap[uint256, bytes32])
# version of the latest posting per interval (0: the provisional one)
version: public(HashMap[uint256, uint256])
# every interval id below this is final
final_before: public(uint256)
# the last interval the engine accepts orders for
open_through: public(uint256)
# number of advances so far, and open_through as of each
epoch: public(uint256)
open_at_epoch: public(HashMap[uint256, uint256])
# pending withdrawal per account: amount and the epoch of the request
withdrawal_amount: public(HashMap[address, uint256])
withdrawal_epoch: public(HashMap[address, uint256])


@deploy
def __init__(token_: IERC20, operator_: address, change_delay_: uint256):
    assert token_.address != empty(address), "settlement: token is the zero address"
    assert operator_ != empty(address), "settlement: operator is the zero address"
    token = token_
    change_delay = change_delay_
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
def request_withdrawal(amount: uint256):
    """
    @notice First step of a withdrawal: ask for `amount` of the caller's escrow.
            The funds stay in escrow (settlements can still debit them) until
            every interval the account may be in is final; see
            execute_withdrawal. A new request replaces the previous one; zero
            cancels it.
    """
    assert amount <= MAX_AMOUNT, "settlement: amount out of range"
    self.withdrawal_amount[msg.sender] = amount
    self.withdrawal_epoch[msg.sender] = self.epoch
    log WithdrawalRequested(account=msg.sender, amount=amount, epoch=self.epoch)


@view
@internal
def _unlock_interval(account: address) -> uint256:
    # Orders accepted before the engine saw the request are for intervals up to
    # the open horizon announced by the first advance after the request.
    return self.open_at_epoch[self.withdrawal_epoch[account] + 1]


@view
@external
def withdrawal_unlocked(account: address) -> bool:
    """
    @notice Whether `account`'s pending withdrawal may be executed now.
    """
    if self.withdrawal_amount[account] == 0:
        return False
    if self.epoch <= self.withdrawal_epoch[account]:
        return False
    return self.final_before > self._unlock_interval(account)


@view
@external
def free_escrow(accounts: DynArray[address, MAX_ACCOUNTS]) -> DynArray[uint256, MAX_ACCOUNTS]:
    """
    @notice Per account, in order: its escrow balance less its pending
            withdrawal (zero when the withdrawal is larger), what the engine
            may hold against new orders. One call for every participant.
    """
    out: DynArray[uint256, MAX_ACCOUNTS] = []
    for account: address in accounts:
        balance: uint256 = self.balanceOf[account]
        out.append(balance - min(balance, self.withdrawal_amount[account]))
    return out


@external
def execute_withdrawal() -> uint256:
    """
    @notice Second step: pay out the caller's requested withdrawal, capped at
            the escrow balance left after the settlements in between, once
            the operator has advanced at least once since the request and
            every interval up to the horizon then announced is final.
    @return the amount paid out
    """
    requested: uint256 = self.withdrawal_amount[msg.sender]
    assert requested != 0, "settlement: no withdrawal requested"
    assert self.epoch > self.withdrawal_epoch[msg.sender], "settlement: withdrawal still locked"
    assert self.final_before > self._unlock_interval(msg.sender), "settlement: withdrawal still locked"
    balance: uint256 = self.balanceOf[msg.sender]
    amount: uint256 = min(requested, balance)
    assert amount != 0, "settlement: zero amount"
    self.withdrawal_amount[msg.sender] = 0
    self.balanceOf[msg.sender] = balance - amount
    assert extcall token.transfer(msg.sender, amount), "settlement: token transfer failed"
    log Withdrawn(account=msg.sender, amount=amount)
    return amount


@external
def advance(final_before: uint256, open_through: uint256):
    """
    @notice The operator announces that every interval below `final_before` is
            final (no posting for it is accepted any more) and that orders are
            accepted for intervals up to `open_through`. Both only grow.
    """
    assert msg.sender == self.operator, "settlement: caller is not the operator"
    assert final_before >= self.final_before, "settlement: final_before decreased"
    assert open_through >= self.open_through, "settlement: open_through decreased"
    self.final_before = final_before
    self.open_through = open_through
    self.epoch += 1
    self.open_at_epoch[self.epoch] = open_through
    log Advanced(epoch=self.epoch, final_before=final_before, open_through=open_through)


@external
def settle(
    interval_id: uint256,
    accounts: DynArray[address, MAX_ACCOUNTS],
    deltas: DynArray[int256, MAX_ACCOUNTS],
    fee: uint256,
    result_hash: bytes32,
):
    """
    @notice Apply the provisional (first, version 0) netted settlement of one
            interval, once.
    @param accounts strictly ascending (as 160-bit numbers), no zero address
    @param deltas signed escrow changes in base units, one per account
    @param fee credited to the operator's escrow; sum(deltas) + fee == 0
    @param result_hash hash of the off-chain result, nonzero
    """
    assert msg.sender == self.operator, "settlement: caller is not the operator"
    assert self.settled[interval_id] == empty(bytes32), "settlement: interval already settled"
    assert interval_id >= self.final_before, "settlement: interval is final"
    assert result_hash != empty(bytes32), "settlement: result hash is zero"
    # (the loop is written out in settle and correct: an internal function would
    # copy both arrays at their full bound into memory, about 114k gas per call)
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
        interval_id=interval_id,
        operator=msg.sender,
        result_hash=result_hash,
        fee=fee,
        accounts=len(accounts),
    )


@external
def correct(
    interval_id: uint256,
    version: uint256,
    previous_hash: bytes32,
    accounts: DynArray[address, MAX_ACCOUNTS],
    deltas: DynArray[int256, MAX_ACCOUNTS],
    fee: uint256,
    result_hash: bytes32,
):
    """
    @notice Apply a reconciliation (true-up) of an interval already settled:
            only the difference to what its postings so far carried, as
            balanced deltas (sum(deltas) + fee == 0). Version n is accepted
            once, right after version n - 1, and must name that posting's
            hash as `previous_hash`; `result_hash` becomes the interval's hash.
    """
    assert msg.sender == self.operator, "settlement: caller is not the operator"
    current: bytes32 = self.settled[interval_id]
    assert current != empty(bytes32), "settlement: interval not settled"
    assert interval_id >= self.final_before, "settlement: interval is final"
    assert version == self.version[interval_id] + 1, "settlement: wrong version"
    assert previous_hash == current, "settlement: previous hash differs"
    assert result_hash != empty(bytes32) and result_hash != current, "settlement: result hash is zero or unchanged"
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
    self.version[interval_id] = version
    log Corrected(
        interval_id=interval_id,
        version=version,
        previous_hash=previous_hash,
        result_hash=result_hash,
        fee=fee,
        accounts=len(accounts),
    )


@external
def propose_operator(new_operator: address):
    """
    @notice Schedule `new_operator`; it takes over after `change_delay` seconds
            (accept_operator). The zero address cancels a proposal.
    """
    assert msg.sender == self.owner, "settlement: caller is not the owner"
    self.pending_operator = new_operator
    eta: uint256 = 0
    if new_operator != empty(address):
        eta = block.timestamp + change_delay
    self.operator_eta = eta
    log OperatorProposed(current_operator=self.operator, new_operator=new_operator, eta=eta)


@external
def accept_operator():
    """
    @notice Make the proposed operator the operator, once its delay has passed
            (anyone may call).
    """
    new_operator: address = self.pending_operator
    assert new_operator != empty(address), "settlement: no operator proposed"
    assert block.timestamp >= self.operator_eta, "settlement: change delay not over"
    log OperatorChanged(previous_operator=self.operator, new_operator=new_operator)
    self.operator = new_operator
    self.pending_operator = empty(address)
    self.operator_eta = 0


@external
def transfer_ownership(new_owner: address):
    """
    @notice First step of an ownership transfer; the new owner may accept after
            `change_delay` seconds. The zero address cancels one.
    """
    assert msg.sender == self.owner, "settlement: caller is not the owner"
    self.pending_owner = new_owner
    eta: uint256 = 0
    if new_owner != empty(address):
        eta = block.timestamp + change_delay
    self.owner_eta = eta
    log OwnershipTransferStarted(previous_owner=self.owner, new_owner=new_owner, eta=eta)


@external
def accept_ownership():
    assert msg.sender == self.pending_owner, "settlement: caller is not the pending owner"
    assert block.timestamp >= self.owner_eta, "settlement: change delay not over"
    log OwnershipTransferred(previous_owner=self.owner, new_owner=msg.sender)
    self.owner = msg.sender
    self.pending_owner = empty(address)
    self.owner_eta = 0

"""Invariant fuzzing of EnergyToken + Settlement with a Hypothesis state machine.

Random deposits, withdrawals, settlements (balanced or not, overdrawing or
not, by the operator or by anyone else, for fresh or already settled
intervals) and role changes (operator, two-step ownership) run against the
embedded EVM and a Python model. After every step: tokens are conserved (the
settlement contract holds exactly the escrow total, the supply never
changes), every escrow balance matches the model (so none is negative), no
interval is settled twice, and only the operator of the moment ever settled.

Size: ``max_examples`` × ``stateful_step_count`` below; the test prints how
many steps it ran (``pytest -s``).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from eth_account.signers.local import LocalAccount
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from contracts import ContractRevertError
from tests.contracts.conftest import ESCROW_EACH, TOKENS_EACH, ChainWorld

MAX_EXAMPLES = 20
STEPS_PER_EXAMPLE = 25
INTERVALS = 6  # few ids, so that repeats are tried often
ACTORS = 4  # participants that act; plus the deployer (first operator and owner)


def _machine(world: ChainWorld, counter: dict[str, int]) -> type[RuleBasedStateMachine]:
    chain, ledger = world.chain, world.ledger
    tester = chain.tester
    assert tester is not None
    snapshot = tester.take_snapshot()
    actors: list[LocalAccount] = [chain.operator, *world.participants[:ACTORS]]
    everyone = [a.address for a in (*world.participants, world.stranger, chain.operator)]
    supply = ledger.total_supply()
    actor = st.integers(0, len(actors) - 1)

    class SettlementMachine(RuleBasedStateMachine):
        @initialize()
        def reset(self) -> None:
            tester.revert_to_snapshot(snapshot)
            self.escrow = dict.fromkeys(everyone, 0)
            self.tokens = dict.fromkeys(everyone, 0)
            for participant in world.participants:
                self.escrow[participant.address] = ESCROW_EACH
                self.tokens[participant.address] = TOKENS_EACH - ESCROW_EACH
            self.settled: dict[int, bytes] = {}
            self.settled_by: dict[int, str] = {}
            self.operator = self.owner = chain.operator.address
            self.pending_owner: str | None = None

        def _account(self, address: str) -> LocalAccount:
            return next(a for a in actors if a.address == address)

        def _expect(self, reason: str | None, send: Any) -> bool:
            """Run ``send``; it must revert with ``reason``, or succeed if that is None."""
            counter["steps"] += 1  # every rule sends exactly one checked transaction
            counter["transactions"] += 1
            got: str | None = None
            try:
                send()
            except ContractRevertError as exc:
                got = exc.reason
            assert got == reason, f"expected {reason or 'success'}, got {got or 'success'}"
            return got is None

        @rule(who=actor, share=st.floats(0, 1.1), zero=st.booleans())
        def deposit(self, who: int, share: float, zero: bool) -> None:
            account = actors[who]
            held = self.tokens[account.address]
            amount = 0 if zero else int(held * share) + 1
            reason = None
            if amount == 0:
                reason = "settlement: zero amount"
            elif amount > held:
                reason = "token: insufficient balance"
            if amount > 0:
                ledger.approve(amount, signer=account)  # the approval itself always succeeds
                counter["transactions"] += 1
            call = ledger.settlement_contract.functions.deposit(amount)
            if self._expect(reason, partial(chain.transact, call, signer=account)):
                self.tokens[account.address] -= amount
                self.escrow[account.address] += amount

        @rule(who=actor, share=st.floats(0, 1.1), zero=st.booleans())
        def withdraw(self, who: int, share: float, zero: bool) -> None:
            account = actors[who]
            amount = 0 if zero else int(self.escrow[account.address] * share) + 1
            reason = None
            if amount == 0:
                reason = "settlement: zero amount"
            elif amount > self.escrow[account.address]:
                reason = "settlement: insufficient escrow balance"
            if self._expect(reason, partial(ledger.withdraw, amount, signer=account)):
                self.escrow[account.address] -= amount
                self.tokens[account.address] += amount

        @rule(
            caller=st.one_of(st.just(-1), actor),  # -1: whoever is the operator now
            interval_id=st.integers(0, INTERVALS - 1),
            members=st.lists(actor, min_size=1, max_size=len(actors), unique=True),
            shares=st.lists(st.floats(-1.05, 0.5), min_size=len(actors), max_size=len(actors)),
            fee=st.integers(0, 10_000),
            balanced=st.integers(0, 3).map(bool),  # mostly balanced
            result=st.binary(min_size=32, max_size=32).filter(any),
        )
        def settle(
            self,
            *,
            caller: int,
            interval_id: int,
            members: list[int],
            shares: list[float],
            fee: int,
            balanced: bool,
            result: bytes,
        ) -> None:
            sender = actors[caller] if caller >= 0 else self._account(self.operator)
            addresses = sorted({actors[m].address for m in members}, key=lambda a: int(a, 16))
            deltas = {
                a: int(self.escrow[a] * shares[i]) if shares[i] < 0 else int(10**6 * shares[i])
                for i, a in enumerate(addresses)
            }
            if balanced:  # the last account takes up the difference
                last = addresses[-1]
                deltas[last] -= sum(deltas.values()) + fee
            after = dict(self.escrow)
            after[self.operator] += fee
            for address, delta in deltas.items():
                after[address] += delta
            reason = None
            if sender.address != self.operator:
                reason = "settlement: caller is not the operator"
            elif interval_id in self.settled:
                reason = "settlement: interval already settled"
            elif any(after[a] < 0 for a in addresses):
                reason = "settlement: account overdrawn"
            elif sum(deltas.values()) + fee != 0:
                reason = "settlement: deltas and fee do not sum to zero"
            call = ledger.settlement_contract.functions.settle(
                interval_id, addresses, [deltas[a] for a in addresses], fee, result
            )
            if self._expect(reason, partial(chain.transact, call, signer=sender)):
                self.escrow = after
                self.settled[interval_id] = result
                self.settled_by[interval_id] = sender.address
                counter["settlements"] += 1

        @rule(caller=actor, new=actor)
        def set_operator(self, caller: int, new: int) -> None:
            reason = (
                None
                if actors[caller].address == self.owner
                else ("settlement: caller is not the owner")
            )
            send = partial(ledger.set_operator, actors[new].address, signer=actors[caller])
            if self._expect(reason, send):
                self.operator = actors[new].address

        @rule(caller=actor, new=actor)
        def transfer_ownership(self, caller: int, new: int) -> None:
            reason = (
                None
                if actors[caller].address == self.owner
                else ("settlement: caller is not the owner")
            )
            send = partial(ledger.transfer_ownership, actors[new].address, signer=actors[caller])
            if self._expect(reason, send):
                self.pending_owner = actors[new].address

        @rule(caller=actor)
        def accept_ownership(self, caller: int) -> None:
            address = actors[caller].address
            reason = (
                None
                if address == self.pending_owner
                else ("settlement: caller is not the pending owner")
            )
            if self._expect(reason, partial(ledger.accept_ownership, signer=actors[caller])):
                self.owner, self.pending_owner = address, None

        @invariant()
        def tokens_are_conserved(self) -> None:
            held_by_contract = ledger.escrow_total()
            assert held_by_contract == sum(self.escrow.values())
            assert ledger.total_supply() == supply

        @invariant()
        def roles_match(self) -> None:
            assert ledger.operator() == self.operator
            assert ledger.owner() == self.owner

        def teardown(self) -> None:
            if not hasattr(self, "escrow"):
                return
            for address in everyone:
                assert ledger.escrow_balance(address) == self.escrow[address] >= 0
                assert ledger.token_balance(address) == self.tokens[address]
            events = ledger.settled_events()
            assert sorted(e.interval_id for e in events) == sorted(self.settled)  # once each
            for event in events:
                assert event.operator == self.settled_by[event.interval_id]
                assert bytes.fromhex(event.result_hash[2:]) == self.settled[event.interval_id]
            for interval_id in range(INTERVALS):
                assert ledger.settled_hash(interval_id) == self.settled.get(interval_id)

    return SettlementMachine


def test_settlement_invariants(chain_world: ChainWorld) -> None:
    counter = {"steps": 0, "transactions": 0, "settlements": 0}
    machine = _machine(chain_world, counter)
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=MAX_EXAMPLES,
            stateful_step_count=STEPS_PER_EXAMPLE,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
    print(
        f"stateful settlement test: {counter['steps']} steps, "
        f"{counter['transactions']} transactions, {counter['settlements']} settlements accepted"
    )
    assert counter["settlements"] > 0

"""The settlement driver: one netted settlement per interval, never two.

::

    driver = SettlementDriver(ledger)
    receipt = driver.settle_interval(
        interval_id=42,
        deltas={alice: -1_250_000, bob: 1_240_000},   # token base units, escrow changes
        fee=10_000,                                    # to the operator; sum + fee == 0
        result_hash=sha256(clearing_result).digest(),  # 32 bytes, nonzero
    )

The chain is the only record the driver trusts; it keeps no state of its own
between calls, so a new driver (after a crash, in a new process) carries on
where the old one stopped. Each call goes through the steps of
:class:`SettleStep`:

1. ``CHECKED`` — the interval is read from the contract. Settled with the
   same result hash: the original settlement is returned
   (``already_settled=True``) and nothing is sent; settled with another hash:
   :class:`~contracts.errors.SettlementConflictError`. If the operator has
   transactions in flight (pending nonce above mined nonce, e.g. one sent just
   before a crash) the driver waits for them and reads the interval again.
2. ``SIGNED`` — the transaction is built with the operator's next nonce and
   signed locally (on a JSON-RPC node, gas estimation rejects a reverting
   settlement here, before anything is sent).
3. ``SENT`` — the raw transaction is handed to the node. If no receipt comes
   within ``receipt_timeout_s`` the *same* signed transaction (same nonce, same
   hash) is sent again, up to ``max_resends`` times, so at most one of them
   can ever be mined; then :class:`~contracts.errors.TransactionTimeoutError`.
4. ``MINED`` — a successful receipt was seen; the call returns it.

Besides, the contract itself accepts each interval id once: a second
transaction for a settled interval reverts ("interval already settled"), and
the driver turns that revert back into the first settlement's receipt.

``on_step(step, interval_id, tx_hash)`` is called after each step; it is the
place to journal the tx hash, and tests raise from it to simulate a crash at
that point. A driver must be used by one thread at a time (the engine's
settlement thread); it holds no global state.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hexbytes import HexBytes

from contracts.chain import SignedTx
from contracts.errors import (
    ChainConfigError,
    ChainError,
    ContractRevertError,
    SettlementConflictError,
    SettlementError,
    TransactionTimeoutError,
)
from contracts.ledger import MAX_ACCOUNTS, Ledger, checksum_address

if TYPE_CHECKING:
    from web3.contract.contract import ContractFunction
    from web3.types import TxReceipt

__all__ = [
    "MAX_ACCOUNTS",
    "MAX_AMOUNT",
    "SettleStep",
    "SettlementDriver",
    "SettlementReceipt",
    "StepHook",
    "canonical_settlement",
]

logger = logging.getLogger(__name__)

MAX_AMOUNT = 2**128 - 1
"""Largest fee or absolute delta the contract accepts, in base units."""

_ALREADY_SETTLED = "interval already settled"
_WRONG_VERSION = "wrong version"


class SettleStep(enum.StrEnum):
    """Points in :meth:`SettlementDriver.settle_interval` reported to ``on_step``."""

    CHECKED = "checked"
    SIGNED = "signed"
    SENT = "sent"
    MINED = "mined"


StepHook = Callable[[SettleStep, int, str | None], None]
"""``on_step(step, interval_id, tx_hash)``; ``tx_hash`` is None at ``CHECKED``."""


@dataclass(frozen=True)
class SettlementReceipt:
    """The on-chain settlement of one interval."""

    interval_id: int
    tx_hash: str
    block_number: int
    gas_used: int
    result_hash: str  # 0x-hex
    accounts: int  # accounts whose escrow changed
    already_settled: bool  # True: found on chain, settled by an earlier call or process


def canonical_settlement(deltas: Mapping[str, int], fee: int) -> tuple[list[str], list[int]]:
    """The contract's form of a settlement: nonzero deltas, accounts ascending.

    Args:
        deltas: escrow change per address in token base units (positive: the
            account receives).
        fee: the operator's fee in base units, ≥ 0; ``sum(deltas) + fee == 0``.

    Returns:
        ``(accounts, deltas)``: checksummed addresses in ascending numeric
        order, and their deltas; accounts with a zero delta are left out.

    Raises:
        SettlementError: an address is invalid, zero or repeated; an amount is
            not an int or out of range; the books do not balance; too many
            accounts.
    """
    if not _is_int(fee) or not 0 <= fee <= MAX_AMOUNT:
        raise SettlementError(f"fee must be an int in [0, {MAX_AMOUNT}], got {fee!r}")
    by_key: dict[int, tuple[str, int]] = {}
    total = fee
    for address, delta in deltas.items():
        try:
            account = checksum_address(address)
        except ChainConfigError as exc:
            raise SettlementError(str(exc)) from exc
        if not _is_int(delta) or abs(delta) > MAX_AMOUNT:
            raise SettlementError(f"delta of {account} must be an int within ±{MAX_AMOUNT}")
        key = int(account, 16)
        if key == 0:
            raise SettlementError("the zero address cannot be settled")
        if key in by_key:
            raise SettlementError(f"{account} appears twice")
        total += delta
        if delta != 0:
            by_key[key] = (account, delta)
    if total != 0:
        raise SettlementError(f"deltas plus fee sum to {total}, not 0")
    if len(by_key) > MAX_ACCOUNTS:
        raise SettlementError(f"{len(by_key)} accounts, at most {MAX_ACCOUNTS} per settlement")
    ordered = [by_key[key] for key in sorted(by_key)]
    return [account for account, _ in ordered], [delta for _, delta in ordered]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _result_hash(value: bytes | str) -> bytes:
    try:
        raw = bytes(HexBytes(value)) if isinstance(value, str) else bytes(value)
    except (ValueError, TypeError) as exc:
        raise SettlementError(f"result_hash is not hex or bytes: {value!r}") from exc
    if len(raw) != 32 or raw == bytes(32):
        raise SettlementError("result_hash must be 32 bytes and not all zero")
    return raw


class SettlementDriver:
    """Posts each interval's netted settlement exactly once (see the module docstring).

    Args:
        ledger: the deployment to settle on; its chain's operator key signs.
        receipt_timeout_s: how long to wait for a receipt before resending.
        max_resends: resends of the same signed transaction before giving up.
        on_step: called after each :class:`SettleStep`.
    """

    def __init__(
        self,
        ledger: Ledger,
        *,
        receipt_timeout_s: float = 30.0,
        max_resends: int = 3,
        on_step: StepHook | None = None,
    ) -> None:
        self._ledger = ledger
        self._chain = ledger.chain
        self._receipt_timeout_s = receipt_timeout_s
        self._max_resends = max_resends
        self._on_step = on_step

    @property
    def ledger(self) -> Ledger:
        return self._ledger

    def settle_interval(
        self,
        interval_id: int,
        deltas: Mapping[str, int],
        fee: int,
        result_hash: bytes | str,
    ) -> SettlementReceipt:
        """Settle ``interval_id`` on chain unless it already is; return its settlement.

        Args:
            interval_id: the market interval, ≥ 0; each is settled at most once.
            deltas: signed escrow change per address, token base units.
            fee: operator's fee in base units; ``sum(deltas.values()) + fee == 0``.
            result_hash: 32-byte hash of the clearing result (bytes or 0x-hex).

        Raises:
            SettlementError: the settlement is malformed (nothing is sent).
            SettlementConflictError: the interval is settled with another hash.
            ContractRevertError: the contract refused it (e.g. "settlement:
                account overdrawn"), with the tx hash once one was sent.
            TransactionTimeoutError: not mined after every resend (tx hash
                attached); calling again later is safe.
            ChainConnectionError, ChainRPCError: the node failed.
        """
        if not _is_int(interval_id) or not 0 <= interval_id < 2**256:
            raise SettlementError(f"interval_id must be a uint256, got {interval_id!r}")
        accounts, amounts = canonical_settlement(deltas, fee)
        wanted = _result_hash(result_hash)

        call = self._ledger.settlement_contract.functions.settle(
            interval_id, accounts, amounts, fee, wanted
        )
        return self._post(
            call, interval_id, wanted, len(accounts), lambda: self._settled(interval_id, wanted)
        )

    def correct_interval(
        self,
        interval_id: int,
        *,
        version: int,
        previous_hash: bytes | str,
        deltas: Mapping[str, int],
        fee: int,
        result_hash: bytes | str,
    ) -> SettlementReceipt:
        """Post reconciliation ``version`` (1, 2, ...) of ``interval_id`` unless it is on chain.

        ``deltas`` and ``fee`` are the difference to what the interval's
        earlier postings carried (``sum + fee == 0``); ``previous_hash`` is
        the hash of version ``version - 1``. Calling again with the same
        arguments returns the posting found on chain (``already_settled``).

        Raises:
            SettlementError: malformed (nothing is sent).
            SettlementConflictError: that version is on chain with another hash.
            ContractRevertError: the contract refused it (wrong version, final
                interval, overdrawn account, ...).
            TransactionTimeoutError, ChainConnectionError, ChainRPCError: as
                :meth:`settle_interval`.
        """
        if not _is_int(interval_id) or not 0 <= interval_id < 2**256:
            raise SettlementError(f"interval_id must be a uint256, got {interval_id!r}")
        if not _is_int(version) or version < 1:
            raise SettlementError(f"version must be an int >= 1, got {version!r}")
        accounts, amounts = canonical_settlement(deltas, fee)
        wanted = _result_hash(result_hash)
        previous = _result_hash(previous_hash)
        call = self._ledger.settlement_contract.functions.correct(
            interval_id, version, previous, accounts, amounts, fee, wanted
        )
        return self._post(
            call,
            interval_id,
            wanted,
            len(accounts),
            lambda: self._corrected(interval_id, version, wanted),
        )

    def advance(self, final_before: int, open_through: int) -> bool:
        """Raise the contract's watermarks to at least these values; False if already there.

        Raises:
            ContractRevertError, TransactionTimeoutError, ChainConnectionError,
            ChainRPCError: as :meth:`settle_interval`.
        """
        on_final, on_open = self._ledger.final_before(), self._ledger.open_through()
        final_before, open_through = max(final_before, on_final), max(open_through, on_open)
        if (final_before, open_through) == (on_final, on_open):
            return False
        self._await_in_flight()
        call = self._ledger.settlement_contract.functions.advance(final_before, open_through)
        self._chain.transact(call)
        return True

    def _post(
        self,
        call: ContractFunction,
        interval_id: int,
        wanted: bytes,
        accounts: int,
        existing: Callable[[], SettlementReceipt | None],
    ) -> SettlementReceipt:
        done = existing()
        if done is not None:
            return done
        if self._await_in_flight():
            done = existing()
            if done is not None:
                return done
        self._step(SettleStep.CHECKED, interval_id, None)
        try:
            with self._chain.send_lock:  # no other thread takes this nonce meanwhile
                tx = self._chain.sign(call)
                self._step(SettleStep.SIGNED, interval_id, tx.tx_hash)
                self._chain.broadcast(tx)
            self._step(SettleStep.SENT, interval_id, tx.tx_hash)
            receipt = self._send_until_mined(tx, interval_id, existing)
            if isinstance(receipt, SettlementReceipt):
                return receipt
            self._chain.check_succeeded(tx, receipt)
        except ContractRevertError as exc:
            if _ALREADY_SETTLED in exc.reason or _WRONG_VERSION in exc.reason:
                done = existing()
                if done is not None:
                    return done
            raise
        self._step(SettleStep.MINED, interval_id, tx.tx_hash)
        return SettlementReceipt(
            interval_id=interval_id,
            tx_hash=tx.tx_hash,
            block_number=int(receipt["blockNumber"]),
            gas_used=int(receipt["gasUsed"]),
            result_hash=HexBytes(wanted).to_0x_hex(),
            accounts=accounts,
            already_settled=False,
        )

    def is_settled(self, interval_id: int) -> bool:
        return self._ledger.settled_hash(interval_id) is not None

    # -- steps ----------------------------------------------------------------

    def _step(self, step: SettleStep, interval_id: int, tx_hash: str | None) -> None:
        logger.debug("interval %d: %s %s", interval_id, step, tx_hash or "")
        if self._on_step is not None:
            self._on_step(step, interval_id, tx_hash)

    def _send_until_mined(
        self, tx: SignedTx, interval_id: int, existing: Callable[[], SettlementReceipt | None]
    ) -> TxReceipt | SettlementReceipt:
        for attempt in range(self._max_resends + 1):
            if attempt > 0:
                self._chain.broadcast(tx, resend=True)
                self._step(SettleStep.SENT, interval_id, tx.tx_hash)
            receipt = self._chain.wait_for_receipt(tx.tx_hash, timeout_s=self._receipt_timeout_s)
            if receipt is not None:
                return receipt
            done = existing()  # posted meanwhile by an earlier tx
            if done is not None:
                return done
            logger.warning(
                "interval %d: tx %s not mined after %.1f s (attempt %d of %d)",
                interval_id,
                tx.tx_hash,
                self._receipt_timeout_s,
                attempt + 1,
                self._max_resends + 1,
            )
        raise TransactionTimeoutError(
            f"settlement of interval {interval_id} not mined after "
            f"{self._max_resends + 1} sends of nonce {tx.nonce}",
            tx_hash=tx.tx_hash,
        )

    def _await_in_flight(self) -> bool:
        """Wait until none of the operator's transactions is pending; True if some were."""
        operator = self._chain.operator.address
        mined, pending = self._chain.nonces(operator)
        if pending <= mined:
            return False
        logger.info("operator has %d transaction(s) in flight; waiting", pending - mined)
        deadline = time.monotonic() + self._receipt_timeout_s
        while mined < pending:
            if time.monotonic() >= deadline:
                raise TransactionTimeoutError(
                    f"{pending - mined} operator transaction(s) from nonce {mined} still "
                    f"pending after {self._receipt_timeout_s} s; not sending another"
                )
            time.sleep(0.05)
            mined, _ = self._chain.nonces(operator)
        return True

    def _settled(self, interval_id: int, wanted: bytes) -> SettlementReceipt | None:
        """The existing settlement of ``interval_id``, None if unsettled.

        Raises:
            SettlementConflictError: settled with a hash other than ``wanted``.
        """
        on_chain = self._ledger.settled_hash(interval_id)
        if on_chain is None:
            return None
        if on_chain != wanted:
            raise SettlementConflictError(
                interval_id,
                on_chain=HexBytes(on_chain).to_0x_hex(),
                requested=HexBytes(wanted).to_0x_hex(),
            )
        events = self._ledger.settled_events(interval_id=interval_id)
        if len(events) != 1:
            raise ChainError(
                f"interval {interval_id} is settled on chain, but {len(events)} Settled events "
                f"were found from block {self._ledger.deployment.block}"
            )
        event = events[0]
        receipt = self._chain.receipt(event.tx_hash)
        gas_used = int(receipt["gasUsed"]) if receipt is not None else 0
        return SettlementReceipt(
            interval_id=interval_id,
            tx_hash=event.tx_hash,
            block_number=event.block_number,
            gas_used=gas_used,
            result_hash=event.result_hash,
            accounts=event.accounts,
            already_settled=True,
        )

    def _corrected(self, interval_id: int, version: int, wanted: bytes) -> SettlementReceipt | None:
        """Version ``version`` of ``interval_id`` if it is on chain, else None.

        Raises:
            SettlementConflictError: that version is on chain with another hash.
        """
        if self._ledger.settled_version(interval_id) < version:
            return None
        found = self._ledger.corrected_events(interval_id=interval_id)
        event = next((e for e in found if e.version == version), None)
        if event is None:
            raise ChainError(
                f"interval {interval_id} is at version >= {version} on chain, but no Corrected "
                f"event of that version was found from block {self._ledger.deployment.block}"
            )
        requested = HexBytes(wanted).to_0x_hex()
        if event.result_hash != requested:
            raise SettlementConflictError(
                interval_id, on_chain=event.result_hash, requested=requested
            )
        receipt = self._chain.receipt(event.tx_hash)
        return SettlementReceipt(
            interval_id=interval_id,
            tx_hash=event.tx_hash,
            block_number=event.block_number,
            gas_used=int(receipt["gasUsed"]) if receipt is not None else 0,
            result_hash=event.result_hash,
            accounts=event.accounts,
            already_settled=True,
        )

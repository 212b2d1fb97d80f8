"""Where the engine posts each interval's netted settlement.

The settler runs in the engine's settlement thread, never on a gRPC thread.
:class:`RecordingSettler` keeps settlements in memory (the default, and what
tests use); :class:`ChainSettler` posts to the Settlement contract through
the driver of :mod:`contracts` (``gridex serve --rpc-url``, the demo).

A settler must be idempotent per posting: after a crash between posting a
settlement (or a correction) and journaling it, the engine posts the same one
again on restart, and the settler should then return the receipt of the first
posting (or any receipt) instead of failing.

Besides the provisional settlement of each interval (:meth:`Settler.settle`),
a settler posts reconciliations (:meth:`Settler.correct`, only the
difference, version 1, 2, ...) and the finality and order-horizon watermarks
(:meth:`Settler.advance`) that time-locked withdrawals wait for.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Protocol

from market.settlement import IntervalSettlement

__all__ = [
    "ChainSettler",
    "Correction",
    "RecordingSettler",
    "Settler",
    "receipt_gas",
    "receipt_text",
]


@dataclass(frozen=True, slots=True)
class Correction:
    """A reconciliation of one interval: only the difference to the postings before it.

    Invariant: ``sum(deltas.values()) + fee == 0``.
    """

    interval: int
    version: int  # 1, 2, ...
    previous_hash: bytes  # result hash of version - 1
    deltas: dict[str, int]
    fee: int
    result_hash: bytes
    settlement: IntervalSettlement  # the whole settlement it brings the interval to


class Settler(Protocol):
    """Posts settlements; returns receipts (e.g. a transaction hash)."""

    def settle(self, settlement: IntervalSettlement) -> object:
        """Post the provisional ``settlement``; raise to have the engine retry later."""
        ...

    def correct(self, correction: Correction) -> object:
        """Post a reconciliation; raise to have the engine retry later."""
        ...

    def advance(self, final_before: int, open_through: int) -> object:
        """Announce that intervals below ``final_before`` are final and orders are
        taken up to ``open_through``; raise to have the engine retry later."""
        ...


def receipt_text(receipt: object) -> str:
    """A receipt as journaled text.

    Bytes become 0x-hex, None empty, an object with a ``tx_hash`` (such as
    :class:`contracts.driver.SettlementReceipt`) its transaction hash, and
    anything else ``str()``.
    """
    if receipt is None:
        return ""
    if isinstance(receipt, bytes | bytearray):
        return "0x" + bytes(receipt).hex()
    tx_hash = getattr(receipt, "tx_hash", None)
    if tx_hash is not None:
        return receipt_text(tx_hash) if isinstance(tx_hash, bytes) else str(tx_hash)
    return str(receipt)


def receipt_gas(receipt: object) -> int:
    """Gas a receipt reports (``gas_used``, as :class:`contracts.driver.SettlementReceipt`
    has), or 0 when it reports none."""
    gas = getattr(receipt, "gas_used", 0)
    return gas if isinstance(gas, int) and gas >= 0 else 0


class RecordingSettler:
    """Keeps every settlement it is given, in order; the receipt is ``interval:<id>``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.settlements: list[IntervalSettlement] = []
        self.corrections: list[Correction] = []
        self.watermarks: list[tuple[int, int]] = []

    def settle(self, settlement: IntervalSettlement) -> str:
        """Record ``settlement`` (again, if it was posted before) and return its receipt."""
        with self._lock:
            self.settlements.append(settlement)
        return f"interval:{settlement.interval}"

    def correct(self, correction: Correction) -> str:
        """Record ``correction`` (again, if it was posted before) and return its receipt."""
        with self._lock:
            self.corrections.append(correction)
        return f"interval:{correction.interval}:v{correction.version}"

    def advance(self, final_before: int, open_through: int) -> str:
        """Record the watermarks."""
        with self._lock:
            self.watermarks.append((final_before, open_through))
        return f"advance:{final_before}:{open_through}"


class ChainSettler:
    """Posts each interval's settlement on chain through a :class:`contracts.SettlementDriver`.

    The driver checks the contract before sending, so posting an interval
    that is already settled returns the first posting's receipt: the
    idempotence the engine needs after a crash.
    """

    def __init__(self, driver: Any) -> None:
        self.driver = driver
        self._free: dict[str, int] = {}  # free escrow read since the last posting or advance
        self._known: dict[str, None] = {}  # every address asked for, in order (read together)
        self._generation = 0  # counts forgets: a read that spans one is not cached
        self._free_lock = threading.Lock()

    def _forget_escrow(self) -> None:
        with self._free_lock:
            self._free.clear()
            self._generation += 1

    def settle(self, settlement: IntervalSettlement) -> object:
        """Post ``settlement``; return the driver's receipt (tx hash, gas used)."""
        try:
            return self.driver.settle_interval(
                settlement.interval, settlement.deltas, settlement.fee, settlement.result_hash
            )
        finally:
            self._forget_escrow()

    def correct(self, correction: Correction) -> object:
        """Post ``correction``; return the driver's receipt (found again if already on chain)."""
        self._forget_escrow()
        return self.driver.correct_interval(
            correction.interval,
            version=correction.version,
            previous_hash=correction.previous_hash,
            deltas=correction.deltas,
            fee=correction.fee,
            result_hash=correction.result_hash,
        )

    def advance(self, final_before: int, open_through: int) -> object:
        """Raise the contract's watermarks (nothing sent if they are already there).

        The escrow read for collateral is forgotten first, so every order taken
        after this advance sees the withdrawals requested before it (what the
        contract's withdrawal lock relies on).
        """
        self._forget_escrow()
        return self.driver.advance(final_before, open_through)

    def free_escrow(self, address: str) -> int:
        """Escrow balance minus the pending withdrawal, base units (what collateral can use).

        Read from the chain once between postings and advances, then cached: a
        miss reads every address asked for since the engine started, in one
        contract call, so order entry after a posting costs one read, not one
        per participant.
        """
        with self._free_lock:
            cached = self._free.get(address)
            if cached is not None:
                return cached
            self._known[address] = None
            wanted = list(self._known)
            generation = self._generation
        values = self.driver.ledger.free_escrows(wanted)
        read = {a: int(v) for a, v in zip(wanted, values, strict=True)}
        with self._free_lock:
            if generation == self._generation:  # no posting landed while reading
                self._free.update(read)
        return read[address]

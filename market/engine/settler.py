"""Where the engine posts each interval's netted settlement.

The settler runs in the engine's settlement thread, never on a gRPC thread.
:class:`RecordingSettler` keeps settlements in memory (the default, and what
tests use); :class:`ChainSettler` posts to the Settlement contract through
the driver of :mod:`contracts` (``gridex serve --rpc-url``, the demo).

A settler must be idempotent per interval: after a crash between posting a
settlement and journaling it, the engine posts the same settlement again on
restart, and the settler should then return the receipt of the first posting
(or any receipt) instead of failing.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

from market.settlement import IntervalSettlement

__all__ = [
    "ChainSettler",
    "RecordingSettler",
    "Settler",
    "receipt_gas",
    "receipt_text",
]


class Settler(Protocol):
    """Posts one interval's settlement; returns a receipt (e.g. a transaction hash)."""

    def settle(self, settlement: IntervalSettlement) -> object:
        """Post ``settlement``; raise to have the engine retry later."""
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

    def settle(self, settlement: IntervalSettlement) -> str:
        """Record ``settlement`` (again, if it was posted before) and return its receipt."""
        with self._lock:
            self.settlements.append(settlement)
        return f"interval:{settlement.interval}"


class ChainSettler:
    """Posts each interval's settlement on chain through a :class:`contracts.SettlementDriver`.

    The driver checks the contract before sending, so posting an interval
    that is already settled returns the first posting's receipt: the
    idempotence the engine needs after a crash.
    """

    def __init__(self, driver: Any) -> None:
        self.driver = driver

    def settle(self, settlement: IntervalSettlement) -> object:
        """Post ``settlement``; return the driver's receipt (tx hash, gas used)."""
        return self.driver.settle_interval(
            settlement.interval, settlement.deltas, settlement.fee, settlement.result_hash
        )

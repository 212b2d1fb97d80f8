"""Order validation that returns every problem at once.

:func:`validate_orders` returns a list of :class:`OrderProblem` (empty when
the book is valid); :func:`assert_valid_orders` raises one
:class:`~market.errors.OrderValidationError` carrying all of them. Each
problem names the order, the field and the rule, so the same mistake always
gives the same message.

:func:`validate_order` checks one order (the engine's order entry);
:func:`validate_orders` checks a whole book over its columns, a million
orders in well under a second, and gives exactly the problems that checking
the orders one by one would.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import repeat
from typing import Any

import numpy as np
import numpy.typing as npt

from grid import Feeder
from market._columns import OrderColumns, first_index, int_column, repeated
from market.config import MarketConfig
from market.errors import OrderValidationError
from market.orders import ADDRESS_RE, Order, Participant

__all__ = ["OrderProblem", "assert_valid_orders", "validate_order", "validate_orders"]

#: Largest quantity one order may carry: 1 GWh, far above any feeder interval.
MAX_QUANTITY_WH = 10**9
_MAX_ID_CHARS = 64

BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class OrderProblem:
    """One broken rule: which order, which field, which rule."""

    order_id: str
    field: str
    rule: str

    def __str__(self) -> str:
        return f"order {self.order_id!r}: {self.field}: {self.rule}"


def validate_order(
    order: Order,
    *,
    config: MarketConfig,
    participants: Mapping[str, Participant],
    feeder: Feeder,
    interval: int | None = None,
) -> list[OrderProblem]:
    """Every rule ``order`` breaks on its own (no book-level checks)."""
    out: list[OrderProblem] = []

    def bad(field: str, rule: str) -> None:
        out.append(OrderProblem(order.order_id, field, rule))

    if (
        not order.order_id
        or len(order.order_id) > _MAX_ID_CHARS
        or not order.order_id.isprintable()
    ):
        bad("order_id", "must be 1 to 64 printable characters")
    if not ADDRESS_RE.match(order.participant):
        bad("participant", "must be 0x followed by 40 hexadecimal digits")
    elif order.participant.lower() not in participants:
        bad("participant", "is not a registered participant")
    else:
        bus = participants[order.participant.lower()].bus
        try:
            connectable = feeder.bus(bus).connectable
        except KeyError:
            bad("participant", f"is registered at bus {bus}, which the feeder does not have")
        else:
            if not connectable:
                bad(
                    "participant", f"is registered at bus {bus}, where participants may not connect"
                )
    if order.quantity_wh <= 0:
        bad("quantity_wh", f"must be positive, got {order.quantity_wh}")
    elif order.quantity_wh > MAX_QUANTITY_WH:
        bad("quantity_wh", f"must be at most {MAX_QUANTITY_WH}, got {order.quantity_wh}")
    if not config.price_min <= order.limit_price <= config.price_max:
        bad(
            "limit_price",
            f"must be within the price band [{config.price_min}, {config.price_max}], "
            f"got {order.limit_price}",
        )
    if interval is not None and order.interval != interval:
        bad("interval", f"must be {interval}, got {order.interval}")
    return out


def validate_orders(
    orders: Iterable[Order] | OrderColumns,
    *,
    config: MarketConfig,
    participants: Mapping[str, Participant],
    feeder: Feeder,
    interval: int | None = None,
) -> list[OrderProblem]:
    """Every rule the book breaks: per-order rules plus duplicate (participant, order id).

    The problems come in book order, each order's in the order of
    :func:`validate_order`'s rules, then its duplicate-id problem: the same
    list, message for message, as checking the orders one by one. The rules
    run over the book's columns (:class:`~market._columns.OrderColumns`);
    only the orders they flag are looked at one by one, by
    :func:`validate_order` itself, so a message never depends on the path.
    """
    cols = orders if isinstance(orders, OrderColumns) else OrderColumns.of(orders)
    suspect = _suspects(cols, config=config, participants=participants, feeder=feeder)
    if interval is not None:
        suspect |= _differs(cols.interval, interval)
    duplicate = _duplicates(cols)
    out: list[OrderProblem] = []
    for i in np.flatnonzero(suspect | duplicate).tolist():
        order = cols.orders[i]
        if suspect[i]:
            out.extend(
                validate_order(
                    order,
                    config=config,
                    participants=participants,
                    feeder=feeder,
                    interval=interval,
                )
            )
        if duplicate[i]:
            out.append(
                OrderProblem(order.order_id, "order_id", "is used twice by the same participant")
            )
    return out


def _suspects(
    cols: OrderColumns,
    *,
    config: MarketConfig,
    participants: Mapping[str, Participant],
    feeder: Feeder,
) -> BoolArray:
    """Orders that may break a per-order rule of :func:`validate_order` (none of the rest do)."""
    bad = _bad_order_ids(cols.order_id)
    bad |= _bad_participants(cols, participants, feeder)
    bad |= _outside(cols.quantity_wh, 1, MAX_QUANTITY_WH)
    bad |= _outside(cols.limit_price, config.price_min, config.price_max)
    return bad


def _bad_order_ids(ids: list[Any]) -> BoolArray:
    """Ids that are empty, longer than 64 characters or not printable."""
    if set(map(type, ids)) <= {str}:
        length = np.fromiter(map(len, ids), np.int64, len(ids))
        bad = (length == 0) | (length > _MAX_ID_CHARS)
        # a string is printable when each of its characters is: one pass for the book
        if not "".join(ids).isprintable():
            bad |= ~np.fromiter(map(str.isprintable, ids), bool, len(ids))
        return np.asarray(bad, dtype=bool)
    return np.fromiter(
        (not i or len(i) > _MAX_ID_CHARS or not i.isprintable() for i in ids), bool, len(ids)
    )


def _bad_participants(
    cols: OrderColumns, participants: Mapping[str, Participant], feeder: Feeder
) -> BoolArray:
    """Orders whose participant string may fail a participant rule, judged once per string."""
    unique = cols.participant_unique
    names = cols.participant_names
    if not _all_addresses(names):
        well_formed = np.fromiter((bool(ADDRESS_RE.match(a)) for a in names), bool, len(names))
    else:
        well_formed = np.ones(len(names), dtype=bool)
    bus = cols.buses(participants)
    ok = well_formed & np.fromiter(map(operator.is_not, bus, repeat(None)), bool, len(bus))
    allowed = {b for b in set(bus) - {None} if _connectable(feeder, b)}
    ok &= np.fromiter(map(allowed.__contains__, bus), bool, len(bus))
    bad_at = np.zeros(cols.n, dtype=bool)
    bad_at[unique] = ~ok
    return bad_at[cols.participant_first]


#: ``ADDRESS_RE`` for many addresses at once, one per line (no line may carry a newline).
_ADDRESS_LINES = re.compile(r"(?:0x[0-9a-fA-F]{40}\n)*0x[0-9a-fA-F]{40}")


def _all_addresses(names: list[Any]) -> bool:
    """Whether every name surely matches ``ADDRESS_RE`` (one regex pass over all of them)."""
    if not names or not set(map(type, names)) <= {str}:
        return not names
    joined = "\n".join(names)
    if joined.count("\n") != len(names) - 1:  # a name with a newline of its own
        return False
    return _ADDRESS_LINES.fullmatch(joined) is not None


def _connectable(feeder: Feeder, bus: Any) -> bool:
    try:
        return feeder.bus(bus).connectable
    except KeyError:
        return False


def _outside(values: list[Any], low: int, high: int) -> BoolArray:
    """Values outside ``[low, high]`` (exact for any number type)."""
    array = int_column(values)
    if array is not None:
        return np.asarray((array < low) | (array > high), dtype=bool)
    return np.fromiter((not low <= v <= high for v in values), bool, len(values))


def _differs(values: list[Any], expected: int) -> BoolArray:
    array = int_column(values)
    if array is not None:
        return np.asarray(array != expected, dtype=bool)
    return np.fromiter((v != expected for v in values), bool, len(values))


def _duplicates(cols: OrderColumns) -> BoolArray:
    """Orders whose (lower-case participant, order id) an earlier order already used."""
    n = cols.n
    if len(set(cols.order_id)) == n:  # no id twice in the book: no pair twice either
        return np.zeros(n, dtype=bool)
    first, unique = cols.participant_first, cols.participant_unique
    lower_at = np.zeros(n, dtype=np.int64)
    lower_at[unique] = cols.lower_first
    # per order: the position (in ``participant_lower``) of its lower-case address
    account = lower_at[first]
    return repeated(account * max(n, 1) + first_index(cols.order_id))


def assert_valid_orders(
    orders: Iterable[Order] | OrderColumns,
    *,
    config: MarketConfig,
    participants: Mapping[str, Participant],
    feeder: Feeder,
    interval: int | None = None,
) -> None:
    """Raise :class:`OrderValidationError` with every problem, if there is any."""
    problems = validate_orders(
        orders, config=config, participants=participants, feeder=feeder, interval=interval
    )
    if problems:
        raise OrderValidationError(problems)

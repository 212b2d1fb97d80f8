"""Orders as columns: one pass over the :class:`~market.orders.Order` objects, then numpy.

Validation (:mod:`market.validation`) and the clearing's order book
(:class:`market.clearing._problem.OrderBook`) both read a book of up to a
million orders. Each reads it through :class:`OrderColumns`: one list per
field, taken in one pass, and integer columns as ``int64`` arrays where
every value is an integer that fits. Nothing here judges a value; a column
that is not all integers is ``None`` and its readers fall back to the
values as given.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from operator import attrgetter
from typing import Any

import numpy as np
import numpy.typing as npt

from market.orders import Order

__all__ = [
    "OrderColumns",
    "first_index",
    "firsts",
    "int_column",
    "repeated",
    "sorted_unique",
    "unique_inverse",
]

IntArray = npt.NDArray[np.int64]


def int_column(values: Sequence[Any]) -> IntArray | None:
    """``values`` as ``int64``, or ``None`` unless every value is an int (or bool) that fits."""
    if not values:
        return np.zeros(0, dtype=np.int64)
    try:
        array = np.array(values)
    except (OverflowError, ValueError, TypeError):
        return None
    if array.ndim != 1 or array.dtype.kind not in "ib":
        return None  # floats, strings, objects, ints beyond int64 (uint64 or object)
    return array.astype(np.int64, copy=False)


def first_index(values: Sequence[Any]) -> IntArray:
    """Per value, the position of its first occurrence in ``values`` (hashing, in C).

    Two values get the same number exactly when they are equal (and hash
    alike), so it serves as a factorisation whose codes are positions.
    """
    seen: dict[Any, int] = {}
    return np.fromiter(map(seen.setdefault, values, range(len(values))), np.int64, len(values))


def firsts(first: IntArray) -> IntArray:
    """The positions that are their own first occurrence in a :func:`first_index` result."""
    return np.flatnonzero(first == np.arange(len(first)))


def dense_codes(unique: IntArray, first: IntArray) -> IntArray:
    """Per ``first`` (a :func:`first_index` result), the rank of its value among ``unique``
    (:func:`firsts` of it, or of the same values in another order of first appearance)."""
    code_at = np.zeros(max(len(first), 1), dtype=np.int64)
    code_at[unique] = np.arange(len(unique))
    return code_at[first]


# numpy's own ``unique`` (a hash table since numpy 2.3) is several times
# slower than a sort on these arrays; the helpers below give the same values.


def sorted_unique(values: IntArray) -> IntArray:
    """The distinct values, ascending (``np.unique(values)``)."""
    s = np.sort(values)
    keep = np.ones(len(s), dtype=bool)
    keep[1:] = s[1:] != s[:-1]
    return s[keep]


#: Largest value :func:`unique_inverse` counts in an array instead of sorting.
_COUNT_MAX = 1 << 22


def unique_inverse(values: IntArray) -> tuple[IntArray, IntArray]:
    """``np.unique(values, return_inverse=True)`` for an integer array."""
    if len(values) and int(values.min()) >= 0 and int(values.max()) < _COUNT_MAX:
        present = np.bincount(values) > 0
        rank = np.cumsum(present) - 1
        return np.flatnonzero(present).astype(values.dtype), rank[values].astype(np.int64)
    order = np.argsort(values, kind="stable")
    s = values[order]
    new = np.ones(len(s), dtype=bool)
    new[1:] = s[1:] != s[:-1]
    inverse = np.empty(len(s), dtype=np.int64)
    inverse[order] = np.cumsum(new) - 1
    return s[new], inverse


def repeated(key: IntArray) -> npt.NDArray[np.bool_]:
    """Per position, whether an earlier position holds the same key."""
    order = np.argsort(key, kind="stable")
    s = key[order]
    again = np.zeros(len(s), dtype=bool)
    again[1:] = s[1:] == s[:-1]
    out = np.empty(len(s), dtype=bool)
    out[order] = again
    return out


@dataclass(frozen=True)
class OrderColumns:
    """The fields of a book of orders, one list per field, in book order."""

    orders: tuple[Order, ...]
    order_id: list[Any]
    participant: list[Any]
    side: list[Any]
    interval: list[Any]
    quantity_wh: list[Any]
    limit_price: list[Any]

    @classmethod
    def of(cls, orders: Iterable[Order]) -> OrderColumns:
        """The columns of ``orders`` (any iterable; consumed once)."""
        book = tuple(orders)

        def column(name: str) -> list[Any]:
            return list(map(attrgetter(name), book))

        return cls(
            orders=book,
            order_id=column("order_id"),
            participant=column("participant"),
            side=column("side"),
            interval=column("interval"),
            quantity_wh=column("quantity_wh"),
            limit_price=column("limit_price"),
        )

    @property
    def n(self) -> int:
        """Number of orders."""
        return len(self.orders)

    def book_permutation(self) -> IntArray | None:
        """Positions of the orders in :func:`market.orders.book_order` (by participant
        in lower case, then order id; stable), or None when they are in it already."""
        if self.n < 2:
            return None
        # by order id (Python's string order, as book_order's key), then stably by the
        # rank of the participant's lower-case address: ranks are over the distinct
        # participants, so only the order ids are sorted as strings, once
        lower = self.participant_lower  # spellings of one address share their rank
        code = {name: i for i, name in enumerate(sorted(set(lower)))}
        rank_of = np.fromiter(map(code.__getitem__, lower), np.int64, len(lower))
        rank = rank_of[np.searchsorted(self.participant_unique, self.participant_first)]
        by_id = np.array(sorted(range(self.n), key=self.order_id.__getitem__), dtype=np.int64)
        perm = by_id[np.argsort(rank[by_id], kind="stable")]
        if bool((perm == np.arange(self.n)).all()):
            return None
        return perm

    def permuted(self, perm: IntArray) -> OrderColumns:
        """Every order, at the positions ``perm`` gives (a permutation of ``range(n)``).

        What is known per distinct participant (its spellings, its lower-case
        form, its bus) is carried over in the new first-appearance order
        rather than found again.
        """
        if len(perm) != self.n:
            raise ValueError(f"perm: expected a permutation of {self.n} positions, got {len(perm)}")
        at = perm.tolist()

        def pick(column: Sequence[Any]) -> list[Any]:
            return list(map(column.__getitem__, at))

        out = OrderColumns(
            orders=tuple(pick(self.orders)),
            order_id=pick(self.order_id),
            participant=pick(self.participant),
            side=pick(self.side),
            interval=pick(self.interval),
            quantity_wh=pick(self.quantity_wh),
            limit_price=pick(self.limit_price),
        )
        if "participant_lower" in self.__dict__ and self.n:
            self._carry_participants(out, perm)
        return out

    def _carry_participants(self, out: OrderColumns, perm: IntArray) -> None:
        """Seed ``out``'s per-participant caches from this book's (``out`` = permuted)."""
        unique = self.participant_unique
        # per new position, the index of its participant among this book's distinct ones
        moved = dense_codes(unique, self.participant_first)[perm]
        by = np.argsort(moved, kind="stable")  # new positions grouped by participant
        grouped = moved[by]
        starts = np.flatnonzero(np.concatenate(([True], grouped[1:] != grouped[:-1])))
        first_pos = by[starts]  # every participant appears: index k is participant k
        new_order = np.argsort(first_pos, kind="stable")  # distinct, by first appearance in out
        k = new_order.tolist()
        d = out.__dict__
        d["participant_first"] = first_pos[moved]
        d["participant_unique"] = first_pos[new_order]
        d["participant_names"] = list(map(self.participant_names.__getitem__, k))
        d["participant_lower"] = list(map(self.participant_lower.__getitem__, k))
        cached = self.__dict__.get("_buses")
        if cached is not None:
            d["_buses"] = (cached[0], list(map(cached[1].__getitem__, k)))

    @cached_property
    def participant_first(self) -> IntArray:
        """Per order, the position of the first order with the same participant string."""
        return first_index(self.participant)

    @cached_property
    def participant_unique(self) -> IntArray:
        """Positions of the first order of each distinct participant string, ascending."""
        return firsts(self.participant_first)

    @cached_property
    def participant_names(self) -> list[Any]:
        """Each distinct participant string, in the order of ``participant_unique``."""
        return list(map(self.participant.__getitem__, self.participant_unique.tolist()))

    @cached_property
    def participant_lower(self) -> list[Any]:
        """The lower-case form of each distinct participant string (``participant_unique``).

        A string that is lower case already is kept as the same object, so
        that looking it up reuses its hash (and, most often, finds the very
        key object of the participants' mapping).
        """
        raw = self.participant_names
        return [p if p == low else low for p, low in zip(raw, map(str.lower, raw), strict=True)]

    @cached_property
    def lower_first(self) -> IntArray:
        """:func:`first_index` of ``participant_lower``: spellings of one address share it."""
        if all(map(operator.is_, self.participant_lower, self.participant_names)):
            return np.arange(len(self.participant_names), dtype=np.int64)  # distinct already
        return first_index(self.participant_lower)

    def buses(self, participants: Mapping[str, Any]) -> list[Any]:
        """The registered bus per distinct participant string (``None``: not registered).

        Looked up as ``participants.get(lower-case address).bus``, and kept
        for the last mapping asked about: validation and the book ask about
        the same one within one clearing.
        """
        cached = self.__dict__.get("_buses")
        if cached is not None and cached[0] is participants:
            return list(cached[1])
        who = list(map(participants.get, self.participant_lower))
        if all(who):  # every participant found (a participant is never falsy)
            found = list(map(attrgetter("bus"), who))
        else:
            found = [None if w is None else w.bus for w in who]
        self.__dict__["_buses"] = (participants, found)
        return list(found)

"""Rows built on first use: the fills, trades and payments of a big book.

A clearing of a million orders computes its books as numpy columns in a
fraction of a second; turning them into a million :class:`~market.clearing.Fill`
named tuples (and as many trades) takes longer than that. :class:`Rows` is
the immutable sequence a :class:`~market.clearing.ClearingResult` holds
instead of a tuple: its length is known at once, and its rows are built from
the columns the first time any of them is read, then kept. It behaves as the
tuple it stands for: equal to it (and to any ``Rows`` with the same rows),
with the same hash and ``repr``, and it pickles as that tuple.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar, overload

from market.clearing._gc import no_gc_pauses

__all__ = ["Rows"]

T = TypeVar("T")


class Rows(Sequence[T]):
    """An immutable sequence of ``n`` rows made by ``build`` when first read.

    Raises:
        RuntimeError: (on first read) ``build`` made a number of rows other than ``n``.
    """

    __slots__ = ("_build", "_n", "_rows")

    def __init__(self, n: int, build: Callable[[], tuple[T, ...]]) -> None:
        self._n = n
        self._build: Callable[[], tuple[T, ...]] | None = build
        self._rows: tuple[T, ...] | None = None

    @property
    def built(self) -> bool:
        """Whether the rows exist yet."""
        return self._rows is not None

    def rows(self) -> tuple[T, ...]:
        """The rows as a tuple (built now if they are not yet)."""
        rows = self._rows
        if rows is not None:
            return rows
        build = self._build
        if build is None:  # another thread built them meanwhile: _rows is set before _build clears
            assert self._rows is not None
            return self._rows
        with no_gc_pauses():  # many small acyclic objects, as in the clearing itself
            rows = build()
        if len(rows) != self._n:
            raise RuntimeError(f"rows: built {len(rows)} rows, expected {self._n}")
        self._rows = rows
        self._build = None
        return rows

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, index: int) -> T: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[T, ...]: ...

    def __getitem__(self, index: int | slice) -> T | tuple[T, ...]:
        return self.rows()[index]

    def __iter__(self) -> Iterator[T]:
        return iter(self.rows())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Rows):
            return self._n == other._n and self.rows() == other.rows()
        if isinstance(other, tuple):
            return self.rows() == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.rows())

    def __repr__(self) -> str:
        return repr(self.rows())

    def __reduce__(self) -> tuple[Any, ...]:
        return (tuple, (self.rows(),))

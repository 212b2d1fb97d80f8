"""Holding the cyclic garbage collector while a clearing allocates many small objects."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["no_gc_pauses"]


@contextmanager
def no_gc_pauses() -> Iterator[None]:
    """Hold the cyclic garbage collector while building many small immutable rows.

    A 100k-order book creates a few hundred thousand tuples; each few hundred
    allocations start a collection, and the full ones walk the whole heap
    (pandapower, pyomo, …): half of the extraction time went there. The rows
    hold no cycles, so nothing is lost by collecting after instead of during.
    The collector is only re-enabled if it was enabled on entry.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()

"""Per-feeder values that every clearing of the same feeder reuses.

A :class:`~grid.Feeder` is immutable, so its linearisation at zero market
injection and the electrical distances between its buses never change. They
are memoised per feeder object (held weakly, so a dropped feeder frees its
entries) behind a lock; this is a cache, not configuration.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import TypeVar

import numpy as np

from grid import AcReport, Feeder, FloatArray, Sensitivities, check_schedule, linearise

__all__ = ["base_report", "electrical_distance", "zero_point"]

_T = TypeVar("_T")
_lock = threading.Lock()
_entries: dict[tuple[int, str], tuple[weakref.ref[Feeder], object]] = {}


def _memo(feeder: Feeder, key: str, make: Callable[[], _T]) -> _T:
    slot = (id(feeder), key)
    with _lock:
        hit = _entries.get(slot)
        if hit is not None and hit[0]() is feeder:
            return hit[1]  # type: ignore[return-value]  # stored by this function with type _T
    value = make()
    with _lock:
        _entries[slot] = (weakref.ref(feeder, lambda _ref: _entries.pop(slot, None)), value)
    return value


def zero_point(feeder: Feeder, mode: str) -> Sensitivities:
    """``linearise(feeder, mode=mode)`` at zero market injection, memoised.

    Raises:
        PowerFlowError: the base case's power flow does not converge.
    """
    return _memo(
        feeder, f"zero-{mode}", lambda: linearise(feeder, mode="ac" if mode == "ac" else "dc")
    )


def base_report(feeder: Feeder) -> AcReport:
    """The AC power flow of the base case (no market injection), memoised.

    Raises:
        PowerFlowError: the base case's power flow does not converge.
    """
    return _memo(feeder, "base-ac", lambda: check_schedule(feeder, np.zeros(feeder.n_bus)))


def electrical_distance(feeder: Feeder) -> FloatArray:
    """``(n_bus, n_bus)`` electrical distance between buses, memoised.

    The distance between buses i and j is ``Σ_l |PTDF_li − PTDF_lj|`` over
    every branch l with the DC sensitivities: the MW of branch flow, summed
    over branches, that moving one MW from j to i changes. On a radial feeder
    it is the number of branches on the path between them; on a meshed one,
    parallel paths shorten it. Rounded to 1e-9 so float noise breaks no tie.
    It depends on the topology only, so every base-load view of a feeder
    (:meth:`grid.Feeder.with_base`) shares the entry of ``feeder.topology``.
    """
    root = feeder.topology

    def make() -> FloatArray:
        from scipy.spatial.distance import pdist, squareform

        ptdf = zero_point(root, "dc").dflow_dp
        # city-block distance between bus columns: (n_bus, n_bus) memory, no
        # (n_branch, n_bus, n_bus) temporary (27 GiB on case1354pegase)
        dist = squareform(pdist(np.ascontiguousarray(ptdf.T), metric="cityblock"))
        return np.asarray(np.round(dist, 9), dtype=np.float64)

    return _memo(root, "distance", make)

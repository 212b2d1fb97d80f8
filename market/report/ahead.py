"""The report's own power flows of an interval, computed before the report is built.

Besides the nodal schedule's flow, which the engine journals, a report runs
two AC power flows per interval: the copper-plate (uniform) schedule's and
that of what was metered. A caller that sees the intervals as they happen
(the demo, while its day runs) computes them early on a worker thread and
hands them to :func:`market.report.journal.report_from_journal` in an
:class:`Ahead`. Each is keyed by the inputs it was computed from, and the
report uses it only where the journal shows exactly those inputs (the same
book and base, the same metering), so a report with an :class:`Ahead` is
the report without one.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from grid import Feeder, GridError, check_schedule
from market.orders import Order, Participant
from market.report.counterfactual import Uniform

__all__ = ["Ahead", "delivered_figures", "metered_key", "uniform_key"]

logger = logging.getLogger(__name__)

Meters = Mapping[str, tuple[int, int, bool]]


def uniform_key(orders: Sequence[Order], base: Mapping[str, Any] | None) -> tuple[object, ...]:
    """What a copper-plate schedule depends on: the book and the base it was cleared at."""
    return (tuple(orders), None if base is None else json.dumps(base, sort_keys=True))


def metered_key(metered: Meters | None) -> tuple[object, ...]:
    """What the metered power flow depends on: each meter's import and export."""
    return tuple(sorted((m, int(v[0]), int(v[1])) for m, v in (metered or {}).items()))


class Ahead:
    """Copper-plate schedules and metered power flows computed early, by interval (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._uniform: dict[int, tuple[tuple[object, ...], Uniform]] = {}
        self._delivered: dict[int, tuple[tuple[object, ...], dict[str, object]]] = {}

    def put_uniform(self, interval: int, key: tuple[object, ...], value: Uniform) -> None:
        """Keep ``interval``'s copper-plate schedule, made from ``key`` (:func:`uniform_key`)."""
        with self._lock:
            self._uniform[interval] = (key, value)

    def uniform(self, interval: int, key: tuple[object, ...]) -> Uniform | None:
        """The copper-plate schedule kept for ``interval`` if it was computed from ``key``."""
        with self._lock:
            hit = self._uniform.get(interval)
        return hit[1] if hit is not None and hit[0] == key else None

    def put_delivered(
        self, interval: int, key: tuple[object, ...], value: dict[str, object]
    ) -> None:
        """Keep ``interval``'s metered figures, computed from ``key`` (:func:`metered_key`)."""
        with self._lock:
            self._delivered[interval] = (key, value)

    def delivered(self, interval: int, key: tuple[object, ...]) -> dict[str, object] | None:
        """The metered figures kept for ``interval`` if they were computed from ``key``."""
        with self._lock:
            hit = self._delivered.get(interval)
        return dict(hit[1]) if hit is not None and hit[0] == key else None


def delivered_figures(
    feeder: Feeder,
    metered: Meters | None,
    *,
    meters: Mapping[str, tuple[str, str]],
    participants: Mapping[str, Participant],
    interval_s: int,
    interval: int,
) -> dict[str, object]:
    """AC power flow of the metered injections of ``interval`` (see the data module).

    ``feeder`` is the interval's view; ``meters`` maps a meter id to its
    (gateway, participant), as the engine state holds them.
    """
    injection = np.zeros(feeder.n_bus)
    hours = interval_s / 3600
    for meter_id, (imp, exp, _complete) in (metered or {}).items():
        participant = meters[meter_id][1]
        bus = participants[participant].bus
        injection[feeder.position_of(bus)] += (exp - imp) / hours / 1e6
    try:
        report = check_schedule(feeder, injection)
    except GridError:
        logger.info("interval %d: the metered injections do not converge", interval)
        return {
            "delivered_max_line_loading_percent": float("nan"),
            "delivered_max_trafo_loading_percent": float("nan"),
            "delivered_vm_min_pu": float("nan"),
            "delivered_vm_max_pu": float("nan"),
            "delivered_violations": 1,
        }
    return {
        "delivered_max_line_loading_percent": report.max_line_loading_percent,
        "delivered_max_trafo_loading_percent": report.max_trafo_loading_percent,
        "delivered_vm_min_pu": report.vm_min_pu,
        "delivered_vm_max_pu": report.vm_max_pu,
        "delivered_violations": len(report.violations),
    }

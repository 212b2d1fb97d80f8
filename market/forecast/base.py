"""What a base-load forecast is, and the feeder view it gives per interval.

Sign convention as in :mod:`grid`: a bus's base injection is the net active
(reactive) power the grid's own elements inject there, MW (Mvar),
generation positive, load negative.

A :class:`BaseForecast` gives, for every interval id it covers, one base
injection vector over the feeder's buses; :func:`feeder_at` turns it into a
:meth:`grid.Feeder.with_base` view that clearing, linearisation and AC checks
use unchanged. The forecast has a ``name`` and a ``digest`` (a hash of what
defines it), journaled with every interval it cleared.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from grid import Feeder, FloatArray
from market.errors import ForecastError

__all__ = [
    "BaseForecast",
    "BaseInterval",
    "BaseViews",
    "Element",
    "ViewCache",
    "elements_of",
    "first_gap",
]


@dataclass(frozen=True, slots=True)
class BaseInterval:
    """One interval's base, as journaled.

    Attributes:
        forecast: the forecast's name and digest, ``name@digest``.
        p_mw: base active injection per bus position, MW.
        q_mvar: base reactive injection per bus position, Mvar.
    """

    forecast: str
    p_mw: tuple[float, ...]
    q_mvar: tuple[float, ...]

    def to_json(self) -> dict[str, object]:
        """The journal form (floats rounded to 1e-9 MW, i.e. mW)."""
        return {
            "forecast": self.forecast,
            "p_mw": [round(x, 9) for x in self.p_mw],
            "q_mvar": [round(x, 9) for x in self.q_mvar],
        }

    @classmethod
    def from_json(cls, body: Any) -> BaseInterval:
        """Read the journal form back.

        Raises:
            ForecastError: the body is malformed.
        """
        try:
            return cls(
                forecast=str(body["forecast"]),
                p_mw=tuple(float(x) for x in body["p_mw"]),
                q_mvar=tuple(float(x) for x in body["q_mvar"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ForecastError(f"base: malformed journaled base ({exc!r})") from exc

    def view(self, feeder: Feeder) -> Feeder:
        """The feeder with this base.

        Raises:
            ForecastError: the vectors do not fit the feeder.
        """
        if len(self.p_mw) != feeder.n_bus or len(self.q_mvar) != feeder.n_bus:
            raise ForecastError(
                f"base: journaled base has {len(self.p_mw)} buses, feeder "
                f"{feeder.name!r} has {feeder.n_bus}"
            )
        return feeder.with_base(self.p_mw, self.q_mvar, label=self.forecast)


class BaseForecast(Protocol):
    """Base injection per interval (see the module docstring)."""

    @property
    def name(self) -> str:
        """Short name: ``profiles`` or ``file:<file name>``."""
        ...

    @property
    def digest(self) -> str:
        """Hex hash of what defines the forecast (its data and parameters)."""
        ...

    def base_at(self, interval: int) -> tuple[FloatArray, FloatArray]:
        """Base (p_mw, q_mvar) per bus position for ``interval``.

        Raises:
            ForecastError: the forecast does not cover ``interval``.
        """
        ...

    def covers(self, interval: int) -> bool:
        """Whether :meth:`base_at` answers for ``interval``."""
        ...


def first_gap(forecast: BaseForecast, intervals: Iterable[int]) -> int | None:
    """The first of ``intervals`` the forecast does not cover, or None."""
    for k in intervals:
        if not forecast.covers(k):
            return k
    return None


@dataclass(frozen=True, slots=True)
class Element:
    """One in-service load, generator or storage unit of the feeder's network.

    Attributes:
        key: ``table:index``, e.g. ``load:3`` (how forecast files name it).
        table: pandapower table (``load``, ``sgen``, ``gen``, ``storage``).
        index: pandapower index in that table.
        position: bus position in the feeder's per-bus arrays.
        sign: +1 for generation tables, -1 for consumption tables (``load``,
            ``storage``): injection = sign · p_mw.
        p_mw: the network file's value (scaling applied), in the table's convention.
        q_mvar: the same for reactive power.
        name: the element's name in the network file.
        kind: the ``type`` column when present (e.g. ``PV``, ``WT``), else "".
    """

    key: str
    table: str
    index: int
    position: int
    sign: float
    p_mw: float
    q_mvar: float
    name: str
    kind: str


def elements_of(feeder: Feeder) -> tuple[Element, ...]:
    """Every in-service element that makes up the feeder's base injection."""
    out = []
    for table, sign in (("load", -1.0), ("sgen", 1.0), ("gen", 1.0), ("storage", -1.0)):
        frame = feeder.net[table]
        for idx, row in frame.iterrows():
            if not bool(row["in_service"]):
                continue
            scaling = float(row["scaling"]) if "scaling" in frame.columns else 1.0
            q = float(row["q_mvar"]) if "q_mvar" in frame.columns else 0.0
            kind = row["type"] if "type" in frame.columns else ""
            name = row["name"] if "name" in frame.columns else ""
            out.append(
                Element(
                    key=f"{table}:{int(idx)}",
                    table=table,
                    index=int(idx),
                    position=feeder.position_of(int(row["bus"])),
                    sign=sign,
                    p_mw=scaling * float(row["p_mw"]),
                    q_mvar=scaling * (0.0 if np.isnan(q) else q),
                    name="" if not isinstance(name, str) else name,
                    kind="" if not isinstance(kind, str) else kind,
                )
            )
    return tuple(out)


def digest_of(*parts: bytes) -> str:
    """Short hex SHA-256 of ``parts``."""
    h = hashlib.sha256()
    for part in parts:
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()[:16]


class ViewCache:
    """Per-interval feeder views of one forecast, the latest few kept.

    Reusing the view object of an interval lets everything memoised per
    feeder object (the clearing's zero-injection linearisation) be reused by
    every clearing of that interval (nodal, the uniform counterfactual, a
    rerun), and never by another interval's base.
    """

    def __init__(self, feeder: Feeder, forecast: BaseForecast, *, keep: int = 8) -> None:
        self.feeder = feeder
        self.forecast = forecast
        self._keep = keep
        self._views: OrderedDict[int, tuple[Feeder, BaseInterval]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def label(self) -> str:
        """``name@digest`` of the forecast."""
        return f"{self.forecast.name}@{self.forecast.digest}"

    def at(self, interval: int) -> tuple[Feeder, BaseInterval]:
        """The view for ``interval`` and its journal record.

        Raises:
            ForecastError: the forecast does not cover ``interval``.
        """
        with self._lock:
            hit = self._views.get(interval)
            if hit is not None:
                self._views.move_to_end(interval)
                return hit
        p, q = self.forecast.base_at(interval)
        record = BaseInterval(self.label, tuple(float(x) for x in p), tuple(float(x) for x in q))
        # the view is built from the journaled (rounded) values, so a replay
        # that rebuilds it from the journal clears against exactly the same base
        rounded = record.to_json()
        view = self.feeder.with_base(
            rounded["p_mw"],  # type: ignore[arg-type]  # list of floats
            rounded["q_mvar"],  # type: ignore[arg-type]
            label=f"{self.label} interval {interval}",
        )
        record = BaseInterval.from_json(rounded)
        with self._lock:
            self._views[interval] = (view, record)
            while len(self._views) > self._keep:
                self._views.popitem(last=False)
        return view, record


class BaseViews:
    """Feeder views of journaled bases, one per base, the latest ``keep`` kept.

    A replay or ``gridex verify`` clears roll after roll on journaled bases
    (:mod:`market.engine.rolling`); one view per base lets what is memoised
    on a view (its linearisation, the AC flows of unchanged indicative
    intervals) carry from one roll to the next, as :class:`ViewCache` does
    for the engine's forecast.
    """

    def __init__(self, feeder: Feeder, *, keep: int = 128) -> None:
        self.feeder = feeder
        self._keep = keep
        self._views: OrderedDict[tuple[tuple[float, ...], tuple[float, ...]], Feeder] = (
            OrderedDict()
        )
        self._lock = threading.Lock()

    def view(self, base: BaseInterval) -> Feeder:
        """The feeder with ``base`` (the same object for the same vectors).

        Raises:
            ForecastError: the vectors do not fit the feeder.
        """
        key = (base.p_mw, base.q_mvar)
        with self._lock:
            hit = self._views.get(key)
            if hit is not None:
                self._views.move_to_end(key)
                return hit
        view = base.view(self.feeder)
        with self._lock:
            self._views[key] = view
            while len(self._views) > self._keep:
                self._views.popitem(last=False)
        return view

"""An operator's base forecast from a file: CSV or parquet, one row per value.

Columns (names exact, order free):

=========  ===============================================================
interval   interval id (interval k starts at k × interval_s Unix seconds)
bus        pandapower bus index — or —
element    ``table:index`` of a network element: ``load:3``, ``sgen:0``,
           ``gen:1``, ``storage:2`` (give exactly one of bus/element per row;
           leave the other empty or omit its column)
p_mw       active power, MW
q_mvar     reactive power, Mvar
=========  ===============================================================

Signs: an ``element`` row is in that table's pandapower convention (a load's
or storage unit's ``p_mw`` is consumption, a generator's is production); a
``bus`` row is the net *injection* of the grid's own elements at that bus
(generation positive, load negative), replacing every element there.

Every interval from the file's first to its last must be present, and every
interval must name the same buses and elements. A network element that no
row names keeps its network-file value in every interval. Problems are
collected and reported together, each naming the row (1-based data row; the
CSV header is line 1) and the column.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from grid import Feeder, FloatArray
from market.errors import ForecastError, InputFileError
from market.forecast.base import digest_of, elements_of

__all__ = ["FileForecast", "read_forecast"]

REQUIRED = ("interval", "p_mw", "q_mvar")
_MAX_LISTED = 20


def _frame(path: Path) -> Any:
    import polars as pl

    if not path.is_file():
        raise InputFileError(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return pl.read_parquet(path).with_columns(pl.all().cast(pl.Utf8))
        if suffix in (".csv", ".txt"):
            return pl.read_csv(path, infer_schema=False, truncate_ragged_lines=False)
    except Exception as exc:  # polars/pyarrow raise many types for a bad file
        raise InputFileError(f"{path}: cannot read ({type(exc).__name__}: {exc})") from exc
    raise InputFileError(f"{path}: expected a .csv or .parquet file, got {suffix or 'no suffix'!r}")


def _float(text: str | None) -> float | None:
    try:
        value = float((text or "").strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


class FileForecast:
    """A validated forecast file (see the module docstring).

    Use :func:`read_forecast` to build one.
    """

    def __init__(
        self,
        *,
        name: str,
        digest: str,
        first: int,
        p_mw: FloatArray,
        q_mvar: FloatArray,
    ) -> None:
        self._name = name
        self._digest = digest
        self.first = first
        self._p = p_mw
        self._q = q_mvar

    @property
    def name(self) -> str:
        """``file:<file name>``."""
        return self._name

    @property
    def digest(self) -> str:
        """Hash of the file's bytes."""
        return self._digest

    @property
    def last(self) -> int:
        """The last interval the file covers."""
        return self.first + len(self._p) - 1

    def covers(self, interval: int) -> bool:
        """Whether ``interval`` lies between the file's first and last interval."""
        return self.first <= interval <= self.last

    def base_at(self, interval: int) -> tuple[FloatArray, FloatArray]:
        """Base (p_mw, q_mvar) per bus position.

        Raises:
            ForecastError: the file does not cover ``interval``.
        """
        if not self.covers(interval):
            raise ForecastError(
                f"base forecast {self.name}: no values for interval {interval} "
                f"(the file covers intervals {self.first}..{self.last})"
            )
        k = interval - self.first
        return self._p[k].copy(), self._q[k].copy()


def read_forecast(path: str | Path, feeder: Feeder) -> FileForecast:
    """Read and validate a forecast file for ``feeder``.

    Raises:
        InputFileError: the file is missing or unreadable, lacks a column, a
            cell breaks a rule, an element or bus is unknown, a value is given
            twice, or intervals or values are missing (every problem listed,
            each naming row and column).
    """
    path = Path(path)
    frame = _frame(path)
    missing = [c for c in REQUIRED if c not in frame.columns]
    if "bus" not in frame.columns and "element" not in frame.columns:
        missing.append("bus or element")
    if missing:
        raise InputFileError(
            f"{path.name}: missing column(s) {', '.join(missing)}; expected "
            "interval, bus or element, p_mw, q_mvar"
        )
    elements = {e.key: e for e in elements_of(feeder)}
    problems: list[str] = []
    values = _rows(path.name, frame, feeder, elements, problems)
    if not problems and not values:
        problems.append(f"{path.name}: no rows")
    if not problems:
        problems.extend(_completeness(path.name, values, elements, feeder))
    if problems:
        shown = problems[:_MAX_LISTED]
        more = len(problems) - len(shown)
        raise InputFileError(
            f"{path}: {len(problems)} problem(s): "
            + "; ".join(shown)
            + (f"; and {more} more" if more else "")
        )
    first = min(values)
    p_all, q_all = _vectors(values, elements, feeder, first)
    return FileForecast(
        name=f"file:{path.name}",
        digest=digest_of(path.read_bytes(), feeder.name.encode()),
        first=first,
        p_mw=p_all,
        q_mvar=q_all,
    )


def _rows(
    name: str, frame: Any, feeder: Feeder, elements: dict[str, Any], problems: list[str]
) -> dict[int, dict[str, tuple[float, float, int]]]:
    """Values by interval and key (``bus:N`` or ``table:index``); problems appended."""
    cols = {c: frame[c].to_list() for c in (*REQUIRED, "bus", "element") if c in frame.columns}
    n = frame.height
    buses = cols.get("bus", [None] * n)
    names = cols.get("element", [None] * n)
    values: dict[int, dict[str, tuple[float, float, int]]] = {}
    for i in range(n):
        row = i + 1

        def at(column: str, row: int = row) -> str:
            return f"{name} row {row}, column {column}"

        text = (cols["interval"][i] or "").strip()
        interval = int(text) if text.lstrip("-").isdigit() else None
        if interval is None or interval < 0:
            problems.append(f"{at('interval')}: expected an integer >= 0, got {text!r}")
        bus_text = (buses[i] or "").strip()
        element = (names[i] or "").strip()
        key = None
        if bool(bus_text) == bool(element):
            problems.append(
                f"{at('bus/element')}: give exactly one of bus and element, "
                f"got bus={bus_text!r}, element={element!r}"
            )
        elif bus_text:
            try:
                feeder.position_of(int(bus_text))
                key = f"bus:{int(bus_text)}"
            except (ValueError, KeyError):
                problems.append(f"{at('bus')}: {bus_text!r} is not a bus of feeder {feeder.name!r}")
        elif element not in elements:
            problems.append(
                f"{at('element')}: {element!r} is not an in-service element of feeder "
                f"{feeder.name!r} (expected table:index, e.g. load:3)"
            )
        else:
            key = element
        p = _float(cols["p_mw"][i])
        q = _float(cols["q_mvar"][i])
        if p is None:
            problems.append(f"{at('p_mw')}: expected a finite number, got {cols['p_mw'][i]!r}")
        if q is None:
            problems.append(f"{at('q_mvar')}: expected a finite number, got {cols['q_mvar'][i]!r}")
        if interval is None or interval < 0 or key is None or p is None or q is None:
            continue
        slot = values.setdefault(interval, {})
        if key in slot:
            problems.append(
                f"{at('interval')}: interval {interval} gives {key} twice "
                f"(first in row {slot[key][2]})"
            )
            continue
        slot[key] = (p, q, row)
    return values


def _completeness(
    name: str,
    values: dict[int, dict[str, tuple[float, float, int]]],
    elements: dict[str, Any],
    feeder: Feeder,
) -> list[str]:
    problems: list[str] = []
    first, last = min(values), max(values)
    gaps = [k for k in range(first, last + 1) if k not in values]
    if gaps:
        listed = ", ".join(str(k) for k in gaps[:10]) + (" ..." if len(gaps) > 10 else "")
        problems.append(
            f"{name}, column interval: {len(gaps)} interval(s) between {first} and {last} "
            f"have no rows: {listed}"
        )
    keys = set().union(*(set(v) for v in values.values()))
    for k in sorted(values):
        absent = sorted(keys - set(values[k]))
        if absent:
            problems.append(
                f"{name}, column bus/element: interval {k} has no row for "
                f"{', '.join(absent[:5])}{' ...' if len(absent) > 5 else ''} "
                "(given in other intervals)"
            )
    bus_rows = {int(key[4:]) for key in keys if key.startswith("bus:")}
    for key in sorted(keys - {f"bus:{b}" for b in bus_rows}):
        bus = feeder.buses[elements[key].position].index
        if bus in bus_rows:
            row = next(v[key][2] for v in values.values() if key in v)
            problems.append(
                f"{name} row {row}, column element: {key} is at bus {bus}, which a bus row "
                "already gives in full"
            )
    return problems


def _vectors(
    values: dict[int, dict[str, tuple[float, float, int]]],
    elements: dict[str, Any],
    feeder: Feeder,
    first: int,
) -> tuple[FloatArray, FloatArray]:
    count = max(values) - first + 1
    p_all = np.zeros((count, feeder.n_bus))
    q_all = np.zeros((count, feeder.n_bus))
    for k, slot in values.items():
        p = np.zeros(feeder.n_bus)
        q = np.zeros(feeder.n_bus)
        for key, e in elements.items():
            vp, vq, _ = slot.get(key, (e.p_mw, e.q_mvar, 0))
            p[e.position] += e.sign * vp
            q[e.position] += e.sign * vq
        for key, (vp, vq, _) in slot.items():
            if key.startswith("bus:"):
                pos = feeder.position_of(int(key[4:]))
                p[pos], q[pos] = vp, vq
        p_all[k - first], q_all[k - first] = p, q
    return p_all, q_all

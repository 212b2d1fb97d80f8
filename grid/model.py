"""The typed model of a feeder that the market clears against.

Sign convention (used everywhere in :mod:`grid`): an *injection* is active
power flowing **into** the grid at a bus, in MW; generation is positive,
consumption negative. A branch flow is the active power entering the branch
at its from-side terminal (a line's ``from_bus``, a transformer's HV side).

A :class:`Feeder` wraps a pandapower network. The market never mutates it:
the power flows in :mod:`grid.sensitivities` and :mod:`grid.validation` run on
a private working copy that carries one extra static generator per bus, the
"market injection", whose set-point is the schedule being studied.
"""

from __future__ import annotations

import copy
import functools
import math
import threading
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from grid.errors import InjectionShapeError, UnsupportedFeederError

__all__ = [
    "DEFAULT_VM_MAX_PU",
    "DEFAULT_VM_MIN_PU",
    "DISTRIBUTION_MAX_KV",
    "Branch",
    "Bus",
    "ExtGrid",
    "Feeder",
    "FloatArray",
    "Limits",
]

FloatArray = npt.NDArray[np.float64]

#: Voltage band when the network file states none (EN 50160: ±10 % of nominal).
DEFAULT_VM_MIN_PU = 0.90
DEFAULT_VM_MAX_PU = 1.10
#: Buses above this nominal voltage belong to the transmission side and never
#: host market participants.
DISTRIBUTION_MAX_KV = 35.0
#: pandapower's MATPOWER converter writes this for "no thermal limit".
_NO_LIMIT_KA = 1e4

_MARKET_SGEN = "gridex market injection"


@dataclass(frozen=True, slots=True)
class Bus:
    """A bus of the feeder.

    Attributes:
        index: pandapower bus index (``net.bus.index``).
        position: row of this bus in every per-bus array of the feeder.
        vn_kv: nominal voltage in kV.
        connectable: whether market participants may connect here (in
            service, at most 35 kV, not the external-grid bus, not a
            transformer's HV terminal; a ``connectable`` column in the
            network file overrides the rule).
        vm_min_pu: lower voltage limit in per unit.
        vm_max_pu: upper voltage limit in per unit.
    """

    index: int
    position: int
    name: str
    vn_kv: float
    connectable: bool
    vm_min_pu: float
    vm_max_pu: float


@dataclass(frozen=True, slots=True)
class Branch:
    """A line or two-winding transformer with its thermal limit.

    Attributes:
        kind: ``"line"`` or ``"trafo"``.
        index: pandapower index in ``net.line`` or ``net.trafo``.
        from_bus: pandapower index of the from-side bus (HV side for a trafo).
        to_bus: pandapower index of the to-side bus.
        max_i_ka: thermal current limit of a line in kA (derating factor and
            parallel systems applied); ``inf`` for a transformer or an
            unlimited line.
        rating_mva: apparent-power rating in MVA at nominal voltage: the
            transformer's ``sn_mva``, or √3·vn·max_i_ka for a line; ``inf``
            when unlimited.
        max_loading_percent: the operator's loading limit (100 unless the
            network file says otherwise).
    """

    kind: Literal["line", "trafo"]
    index: int
    name: str
    from_bus: int
    to_bus: int
    vn_kv: float
    max_i_ka: float
    rating_mva: float
    max_loading_percent: float

    @property
    def limited(self) -> bool:
        """Whether the branch has a finite thermal limit."""
        return math.isfinite(self.rating_mva)

    @property
    def label(self) -> str:
        """Short human-readable identifier, e.g. ``line 12``."""
        return f"{self.kind} {self.index}"


@dataclass(frozen=True, slots=True)
class ExtGrid:
    """The connection to the upstream grid (the slack)."""

    bus: int
    vm_pu: float


@dataclass(frozen=True)
class Limits:
    """A feeder's limits as arrays, for checks over every element at once.

    Attributes:
        branch_limited: per branch (``Feeder.branches`` order), whether it has a
            finite thermal limit.
        branch_is_line: per branch, a line (else a transformer).
        rating_mva: per branch, the apparent-power rating (``inf``: unlimited).
        max_loading_percent: per branch, the operator's loading limit.
        vm_min_pu, vm_max_pu: per bus, the voltage band.
    """

    branch_limited: npt.NDArray[np.bool_]
    branch_is_line: npt.NDArray[np.bool_]
    rating_mva: FloatArray
    max_loading_percent: FloatArray
    vm_min_pu: FloatArray
    vm_max_pu: FloatArray


@dataclass(frozen=True)
class Feeder:
    """A distribution feeder: topology, limits and the base operating point.

    Per-bus arrays (``base_p_mw``, ``base_q_mvar`` and every injection vector
    passed to :mod:`grid`) are ordered like :attr:`buses`, i.e. by
    ``Bus.position``. ``base_p_mw`` is the net active injection of the grid's
    own loads, generators and storage, which the market does not control.

    :meth:`with_base` gives a *view* of the same feeder with another base
    (one interval's forecast of the grid's own load and generation): it
    shares the topology, the working network and its lock, and every power
    flow on the view runs at the view's base. A view is a distinct object, so
    anything memoised per feeder object (the clearing's zero-injection
    linearisation) is memoised per base.
    """

    name: str
    buses: tuple[Bus, ...]
    lines: tuple[Branch, ...]
    trafos: tuple[Branch, ...]
    ext_grid: ExtGrid
    base_p_mw: FloatArray
    base_q_mvar: FloatArray
    net: Any = field(repr=False, compare=False)
    _work: Any = field(repr=False, compare=False)
    _positions: dict[int, int] = field(repr=False, compare=False, default_factory=dict)
    _lock: threading.Lock = field(repr=False, compare=False, default_factory=threading.Lock)
    #: base minus the network file's own base (zero unless this is a with_base view)
    _shift_p_mw: FloatArray | None = field(repr=False, compare=False, default=None)
    _shift_q_mvar: FloatArray | None = field(repr=False, compare=False, default=None)
    base_label: str = field(compare=False, default="")
    _root: Feeder | None = field(repr=False, compare=False, default=None)
    #: the fast power flow's cache (grid.powerflow): its model on the topology,
    #: the converged base case on each view; read and written under :meth:`lock`
    _flow_cache: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)

    @property
    def n_bus(self) -> int:
        """Number of buses."""
        return len(self.buses)

    @property
    def branches(self) -> tuple[Branch, ...]:
        """Lines followed by transformers; the row order of every per-branch array."""
        return self.lines + self.trafos

    @property
    def bus_indices(self) -> npt.NDArray[np.int64]:
        """pandapower bus index per position."""
        return np.array([b.index for b in self.buses], dtype=np.int64)

    @property
    def connectable_buses(self) -> tuple[Bus, ...]:
        """Buses where participants may connect."""
        return tuple(b for b in self.buses if b.connectable)

    @functools.cached_property
    def limits(self) -> Limits:
        """Every limit of the feeder as arrays (computed once per topology; views share it)."""
        if self._root is not None:
            return self._root.limits
        branches = self.branches
        return Limits(
            branch_limited=np.array([b.limited for b in branches], dtype=bool),
            branch_is_line=np.array([b.kind == "line" for b in branches], dtype=bool),
            rating_mva=np.array([b.rating_mva for b in branches], dtype=np.float64),
            max_loading_percent=np.array(
                [b.max_loading_percent for b in branches], dtype=np.float64
            ),
            vm_min_pu=np.array([b.vm_min_pu for b in self.buses], dtype=np.float64),
            vm_max_pu=np.array([b.vm_max_pu for b in self.buses], dtype=np.float64),
        )

    def position_of(self, bus_index: int) -> int:
        """Position of pandapower bus ``bus_index`` in per-bus arrays.

        Raises:
            KeyError: the feeder has no such bus.
        """
        return self._positions[bus_index]

    def bus(self, bus_index: int) -> Bus:
        """The :class:`Bus` with pandapower index ``bus_index``.

        Raises:
            KeyError: the feeder has no such bus.
        """
        return self.buses[self.position_of(bus_index)]

    def check_injection(self, injection_mw: npt.ArrayLike) -> FloatArray:
        """Return ``injection_mw`` as a float vector, checking its shape.

        Raises:
            InjectionShapeError: the vector's length is not the number of
                buses, or it holds a non-finite value.
        """
        vec = np.asarray(injection_mw, dtype=np.float64)
        if vec.shape != (self.n_bus,):
            raise InjectionShapeError(
                f"injection_mw: expected a vector of {self.n_bus} bus values, got shape {vec.shape}"
            )
        if not np.all(np.isfinite(vec)):
            raise InjectionShapeError("injection_mw: every value must be finite")
        return vec

    def with_base(
        self, base_p_mw: npt.ArrayLike, base_q_mvar: npt.ArrayLike, *, label: str = ""
    ) -> Feeder:
        """A view of this feeder whose base injection is ``base_p_mw``/``base_q_mvar``.

        Args:
            base_p_mw: net active injection of the grid's own elements per bus
                position, MW (generation positive, load negative).
            base_q_mvar: net reactive injection per bus position, Mvar.
            label: names the base (e.g. the forecast and interval), for logs
                and results; empty for the network file's own base.

        The view's power flows carry the difference to the network file's
        base on the per-bus market-injection generators of the shared working
        network, so the network's own loads (and their voltage dependence)
        stay as they are and only their total per bus changes.

        Raises:
            InjectionShapeError: a vector has the wrong length or a non-finite value.
        """
        p = _bus_vector(self.n_bus, "base_p_mw", base_p_mw)
        q = _bus_vector(self.n_bus, "base_q_mvar", base_q_mvar)
        own_p, own_q = self._own_base()
        return Feeder(
            name=self.name,
            buses=self.buses,
            lines=self.lines,
            trafos=self.trafos,
            ext_grid=self.ext_grid,
            base_p_mw=p,
            base_q_mvar=q,
            net=self.net,
            _work=self._work,
            _positions=self._positions,
            _lock=self._lock,
            _shift_p_mw=p - own_p,
            _shift_q_mvar=q - own_q,
            base_label=label,
            _root=self.topology,
        )

    @property
    def topology(self) -> Feeder:
        """The feeder this view was made from (itself if it is not a view).

        Memoise what depends on the topology only (admittances, PTDFs,
        electrical distances) on this object, so every view shares it.
        """
        return self if self._root is None else self._root

    def _own_base(self) -> tuple[FloatArray, FloatArray]:
        """The network file's own base injection (what :meth:`from_net` computed)."""
        p = self.base_p_mw if self._shift_p_mw is None else self.base_p_mw - self._shift_p_mw
        q = (
            self.base_q_mvar
            if self._shift_q_mvar is None
            else self.base_q_mvar - self._shift_q_mvar
        )
        return p, q

    def working_net(self, injection_mw: FloatArray) -> Any:
        """The private working network with the market injection (and base shift) set.

        Callers must hold :meth:`lock` while they use the returned network.
        """
        sgen = self._work.sgen
        mask = sgen["name"] == _MARKET_SGEN
        shift_p = 0.0 if self._shift_p_mw is None else self._shift_p_mw
        shift_q = 0.0 if self._shift_q_mvar is None else self._shift_q_mvar
        sgen.loc[mask, "p_mw"] = injection_mw + shift_p
        sgen.loc[mask, "q_mvar"] = np.zeros(self.n_bus) + shift_q
        return self._work

    def lock(self) -> threading.Lock:
        """Lock that serialises power flows on the working network."""
        return self._lock

    @classmethod
    def from_net(cls, net: Any, *, name: str) -> Feeder:
        """Build the market's model of pandapower network ``net`` (which is copied).

        Raises:
            UnsupportedFeederError: no external grid, more than one, or
                elements the market cannot model (three-winding transformers).
        """
        net = copy.deepcopy(net)
        if len(net.ext_grid[net.ext_grid.in_service]) != 1:
            raise UnsupportedFeederError(
                f"feeder {name!r}: exactly one in-service external grid is required, "
                f"found {int(net.ext_grid.in_service.sum())}"
            )
        if len(net.trafo3w) > 0:
            raise UnsupportedFeederError(
                f"feeder {name!r}: three-winding transformers are not supported"
            )
        eg = net.ext_grid[net.ext_grid.in_service].iloc[0]
        ext = ExtGrid(bus=int(eg["bus"]), vm_pu=float(eg["vm_pu"]))
        buses = _buses(net, ext.bus)
        positions = {b.index: b.position for b in buses}
        base_p, base_q = _base_injection(net, positions)
        work = copy.deepcopy(net)
        import pandapower as pp

        # one call for every bus (one create_sgen per bus took 1 s on kerber-dorfnetz)
        pp.create_sgens(
            work, buses=[b.index for b in buses], p_mw=0.0, q_mvar=0.0, name=_MARKET_SGEN
        )
        return cls(
            name=name,
            buses=buses,
            lines=_lines(net),
            trafos=_trafos(net),
            ext_grid=ext,
            base_p_mw=base_p,
            base_q_mvar=base_q,
            net=net,
            _work=work,
            _positions=positions,
        )


def _bus_vector(n_bus: int, name: str, values: npt.ArrayLike) -> FloatArray:
    vec = np.array(values, dtype=np.float64)
    if vec.shape != (n_bus,):
        raise InjectionShapeError(
            f"{name}: expected a vector of {n_bus} bus values, got shape {vec.shape}"
        )
    if not np.all(np.isfinite(vec)):
        raise InjectionShapeError(f"{name}: every value must be finite")
    return vec


def _column(frame: Any, name: str, default: float) -> npt.NDArray[np.float64]:
    if name in frame.columns:
        return np.asarray(frame[name].fillna(default), dtype=np.float64)
    return np.full(len(frame), default, dtype=np.float64)


def _buses(net: Any, ext_bus: int) -> tuple[Bus, ...]:
    hv_terminals = set(net.trafo["hv_bus"].astype(int))
    vmin = _column(net.bus, "min_vm_pu", DEFAULT_VM_MIN_PU)
    vmax = _column(net.bus, "max_vm_pu", DEFAULT_VM_MAX_PU)
    override = net.bus["connectable"] if "connectable" in net.bus.columns else None
    buses = []
    for pos, (idx, row) in enumerate(net.bus.iterrows()):
        connectable = (
            bool(row["in_service"])
            and float(row["vn_kv"]) <= DISTRIBUTION_MAX_KV
            and int(idx) != ext_bus
            and int(idx) not in hv_terminals
        )
        if override is not None and not _isnan(override.loc[idx]):
            connectable = bool(override.loc[idx]) and bool(row["in_service"])
        buses.append(
            Bus(
                index=int(idx),
                position=pos,
                name=str(row["name"]) if row["name"] is not None else str(idx),
                vn_kv=float(row["vn_kv"]),
                connectable=connectable,
                vm_min_pu=float(vmin[pos]),
                vm_max_pu=float(vmax[pos]),
            )
        )
    return tuple(buses)


def _isnan(value: object) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _lines(net: Any) -> tuple[Branch, ...]:
    out = []
    max_loading = _column(net.line, "max_loading_percent", 100.0)
    for i, (idx, row) in enumerate(net.line.iterrows()):
        if not bool(row["in_service"]):
            continue
        vn_kv = float(net.bus.at[int(row["from_bus"]), "vn_kv"])
        max_i = float(row["max_i_ka"]) * float(row["df"]) * float(row["parallel"])
        if float(row["max_i_ka"]) >= _NO_LIMIT_KA:
            max_i = math.inf
        rating = math.sqrt(3.0) * vn_kv * max_i if math.isfinite(max_i) else math.inf
        out.append(
            Branch(
                kind="line",
                index=int(idx),
                name=str(row["name"]) if row["name"] is not None else f"line {idx}",
                from_bus=int(row["from_bus"]),
                to_bus=int(row["to_bus"]),
                vn_kv=vn_kv,
                max_i_ka=max_i,
                rating_mva=rating,
                max_loading_percent=float(max_loading[i]),
            )
        )
    return tuple(out)


def _trafos(net: Any) -> tuple[Branch, ...]:
    out = []
    max_loading = _column(net.trafo, "max_loading_percent", 100.0)
    for i, (idx, row) in enumerate(net.trafo.iterrows()):
        if not bool(row["in_service"]):
            continue
        out.append(
            Branch(
                kind="trafo",
                index=int(idx),
                name=str(row["name"]) if row["name"] is not None else f"trafo {idx}",
                from_bus=int(row["hv_bus"]),
                to_bus=int(row["lv_bus"]),
                vn_kv=float(row["vn_hv_kv"]),
                max_i_ka=math.inf,
                rating_mva=float(row["sn_mva"]) * float(row["parallel"]),
                max_loading_percent=float(max_loading[i]),
            )
        )
    return tuple(out)


def _base_injection(net: Any, positions: dict[int, int]) -> tuple[FloatArray, FloatArray]:
    n = len(positions)
    p = np.zeros(n)
    q = np.zeros(n)
    for table, sign in (("load", -1.0), ("sgen", 1.0), ("gen", 1.0), ("storage", -1.0)):
        frame = net[table]
        if len(frame) == 0:
            continue
        active = frame[frame["in_service"]]
        scaling = _column(active, "scaling", 1.0)
        pos = np.array([positions[int(b)] for b in active["bus"]], dtype=np.int64)
        np.add.at(p, pos, sign * scaling * np.asarray(active["p_mw"], dtype=np.float64))
        np.add.at(q, pos, sign * scaling * _column(active, "q_mvar", 0.0))
    return p, q

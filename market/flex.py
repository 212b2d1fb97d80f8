"""Flexibility orders: storage, EVs and shiftable loads that span intervals.

Units as in :mod:`market.orders`: energy in integer Wh, power in integer W,
prices in integer token base units per kWh. Intervals are interval ids
(start time = id × interval length); a window ``[start, end)`` excludes its
end interval. Efficiencies are plain fractions in ``(0, 1]``.

The state of charge of a battery moves by one integer rule, used by the
clearing, the engine and the tests alike (so nothing drifts across rolls)::

    soc_after = soc + stored_wh(charge_wh) − drawn_wh(discharge_wh)
    stored_wh(c) = ⌊c · η_charge⌋          (the cell keeps at most what arrives)
    drawn_wh(d)  = ⌈d / η_discharge⌉        (the cell gives at least what leaves)

Validation returns every problem at once (:func:`validate_flex_order`), each
naming the order, the field and the rule, as :mod:`market.validation` does
for single-interval orders; :func:`assert_valid_flex_orders` raises one
:class:`~market.errors.OrderValidationError` with all of them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from grid import Feeder
from market.config import MarketConfig
from market.errors import OrderValidationError
from market.orders import ADDRESS_RE, Participant
from market.validation import MAX_QUANTITY_WH, OrderProblem

__all__ = [
    "EnergyWindow",
    "EvOrder",
    "FlexOrder",
    "ShiftableLoadOrder",
    "StorageOrder",
    "advance",
    "assert_valid_flex_orders",
    "drawn_wh",
    "energy_windows",
    "soc_after",
    "stored_wh",
    "validate_flex_order",
    "validate_flex_orders",
]

#: Largest power one flexibility order may name: 1 GW.
MAX_POWER_W = 10**9


@dataclass(frozen=True, slots=True)
class StorageOrder:
    """A battery offered to the market over the horizon.

    Attributes:
        order_id: the client's order id, unique per participant.
        participant: lower-case address.
        capacity_wh: usable capacity, Wh.
        soc_wh: state of charge now (at the start of the next interval), Wh.
        min_soc_wh: lowest state of charge allowed, Wh.
        max_soc_wh: highest state of charge allowed, Wh.
        max_charge_w: largest charging power at the meter, W.
        max_discharge_w: largest discharging power at the meter, W.
        charge_efficiency: fraction of the metered charge that is stored.
        discharge_efficiency: fraction of the drawn energy that reaches the meter.
        end_soc_wh: the state of charge it must hold (at least) at the end
            of the horizon, Wh (capped by what the horizon can reach).
        cycling_price: what one kWh discharged costs the owner (wear),
            base units per kWh.
    """

    order_id: str
    participant: str
    capacity_wh: int
    soc_wh: int
    min_soc_wh: int
    max_soc_wh: int
    max_charge_w: int
    max_discharge_w: int
    charge_efficiency: float
    discharge_efficiency: float
    end_soc_wh: int
    cycling_price: int

    @property
    def key(self) -> tuple[str, str]:
        """(participant, order id)."""
        return (self.participant, self.order_id)


@dataclass(frozen=True, slots=True)
class EvOrder:
    """An electric vehicle that needs energy between arrival and departure.

    Attributes:
        order_id: the client's order id, unique per participant.
        participant: lower-case address.
        energy_wh: energy still needed at the meter by departure, Wh.
        max_power_w: the charger's (or cable's) power limit, W.
        arrival_interval: first interval it is plugged in.
        departure_interval: the interval it leaves at (not charged in).
        value_per_kwh: what a kWh not delivered by departure costs the
            owner, base units per kWh.
    """

    order_id: str
    participant: str
    energy_wh: int
    max_power_w: int
    arrival_interval: int
    departure_interval: int
    value_per_kwh: int

    @property
    def key(self) -> tuple[str, str]:
        """(participant, order id)."""
        return (self.participant, self.order_id)


@dataclass(frozen=True, slots=True)
class EnergyWindow:
    """Energy a shiftable load needs within ``[start_interval, end_interval)``, Wh."""

    start_interval: int
    end_interval: int
    energy_wh: int


@dataclass(frozen=True, slots=True)
class ShiftableLoadOrder:
    """A heat pump or boiler: energy per window, at most ``max_power_w``.

    Attributes:
        order_id: the client's order id, unique per participant.
        participant: lower-case address.
        windows: non-overlapping windows, in time order.
        max_power_w: power limit, W.
        value_per_kwh: what a kWh not delivered within its window costs the
            owner, base units per kWh.
    """

    order_id: str
    participant: str
    windows: tuple[EnergyWindow, ...]
    max_power_w: int
    value_per_kwh: int

    @property
    def key(self) -> tuple[str, str]:
        """(participant, order id)."""
        return (self.participant, self.order_id)


FlexOrder = StorageOrder | EvOrder | ShiftableLoadOrder


def stored_wh(order: StorageOrder, charge_wh: int) -> int:
    """Wh the cell keeps of ``charge_wh`` metered (rounded down)."""
    return math.floor(charge_wh * order.charge_efficiency + 1e-9)


def drawn_wh(order: StorageOrder, discharge_wh: int) -> int:
    """Wh the cell gives for ``discharge_wh`` metered (rounded up)."""
    return math.ceil(discharge_wh / order.discharge_efficiency - 1e-9)


def soc_after(order: StorageOrder, soc_wh: int, charge_wh: int, discharge_wh: int) -> int:
    """The state of charge after one interval's metered charge and discharge, Wh."""
    return soc_wh + stored_wh(order, charge_wh) - drawn_wh(order, discharge_wh)


def energy_windows(order: EvOrder | ShiftableLoadOrder) -> tuple[EnergyWindow, ...]:
    """The energy windows of an EV (one) or a shiftable load."""
    if isinstance(order, EvOrder):
        return (EnergyWindow(order.arrival_interval, order.departure_interval, order.energy_wh),)
    return order.windows


def max_energy_wh(power_w: int, interval_s: int) -> int:
    """The most energy ``power_w`` delivers in one interval, Wh (rounded down)."""
    return power_w * interval_s // 3600


def advance(order: FlexOrder, interval: int, charge_wh: int, discharge_wh: int) -> FlexOrder | None:
    """The order as it stands after ``interval`` was delivered with these firm fills.

    A storage order carries its new state of charge (:func:`soc_after`); an
    EV or a shiftable load needs that much less in the window holding
    ``interval`` and starts no earlier than the next interval. Returns
    ``None`` once nothing is left to do (an EV that left, windows that closed).
    """
    if isinstance(order, StorageOrder):
        return replace(order, soc_wh=soc_after(order, order.soc_wh, charge_wh, discharge_wh))
    left: list[EnergyWindow] = []
    for w in energy_windows(order):
        need = w.energy_wh - (charge_wh if w.start_interval <= interval < w.end_interval else 0)
        start = max(w.start_interval, interval + 1)
        if start < w.end_interval and need > 0:
            left.append(EnergyWindow(start, w.end_interval, need))
    if not left:
        return None
    if isinstance(order, EvOrder):
        w = left[0]
        return replace(order, energy_wh=w.energy_wh, arrival_interval=w.start_interval)
    return replace(order, windows=tuple(left))


def _participant_problems(
    participant: str, participants: Mapping[str, Participant], feeder: Feeder
) -> list[tuple[str, str]]:
    if not isinstance(participant, str) or not ADDRESS_RE.match(participant):
        return [("participant", "must be 0x followed by 40 hexadecimal digits")]
    p = participants.get(participant.lower())
    if p is None:
        return [("participant", "is not a registered participant")]
    try:
        connectable = feeder.bus(p.bus).connectable
    except KeyError:
        return [("participant", f"is registered at bus {p.bus}, which the feeder does not have")]
    if not connectable:
        return [
            ("participant", f"is registered at bus {p.bus}, where participants may not connect")
        ]
    return []


def _int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _storage_problems(o: StorageOrder, config: MarketConfig) -> list[tuple[str, str]]:  # noqa: PLR0912 - one branch per rule, in field order
    out: list[tuple[str, str]] = []
    for name in ("capacity_wh", "soc_wh", "min_soc_wh", "max_soc_wh", "end_soc_wh"):
        v = getattr(o, name)
        if not _int(v):
            out.append((name, f"must be an integer number of Wh, got {v!r}"))
    for name in ("max_charge_w", "max_discharge_w", "cycling_price"):
        if not _int(getattr(o, name)):
            out.append((name, f"must be an integer, got {getattr(o, name)!r}"))
    if out:
        return out
    if not 0 < o.capacity_wh <= MAX_QUANTITY_WH:
        out.append(("capacity_wh", f"must be in (0, {MAX_QUANTITY_WH}], got {o.capacity_wh}"))
    if not 0 <= o.min_soc_wh <= o.max_soc_wh:
        out.append(("min_soc_wh", f"must be in [0, max_soc_wh={o.max_soc_wh}], got {o.min_soc_wh}"))
    if o.max_soc_wh > o.capacity_wh:
        out.append(
            ("max_soc_wh", f"must be at most capacity_wh={o.capacity_wh}, got {o.max_soc_wh}")
        )
    for name in ("soc_wh", "end_soc_wh"):
        v = getattr(o, name)
        if not o.min_soc_wh <= v <= o.max_soc_wh:
            out.append(
                (
                    name,
                    f"must be in [min_soc_wh, max_soc_wh]=[{o.min_soc_wh}, "
                    f"{o.max_soc_wh}], got {v}",
                )
            )
    for name in ("max_charge_w", "max_discharge_w"):
        v = getattr(o, name)
        if not 0 <= v <= MAX_POWER_W:
            out.append((name, f"must be in [0, {MAX_POWER_W}] W, got {v}"))
    for name in ("charge_efficiency", "discharge_efficiency"):
        v = getattr(o, name)
        if not isinstance(v, float | int) or not math.isfinite(v) or not 0.0 < v <= 1.0:
            out.append((name, f"must be a fraction in (0, 1], got {v!r}"))
    if not 0 <= o.cycling_price <= config.price_max:
        out.append(("cycling_price", f"must be in [0, {config.price_max}], got {o.cycling_price}"))
    return out


def _window_problems(
    windows: tuple[EnergyWindow, ...], power_w: int, config: MarketConfig, *, prefix: str
) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    last_end: int | None = None
    for i, w in enumerate(windows):
        f = f"{prefix}[{i}]" if prefix == "windows" else ""
        start_f = f"{f}.start_interval" if f else "arrival_interval"
        end_f = f"{f}.end_interval" if f else "departure_interval"
        energy_f = f"{f}.energy_wh" if f else "energy_wh"
        if not all(_int(v) for v in (w.start_interval, w.end_interval, w.energy_wh)):
            out.append((f or "window", "intervals and energy must be integers"))
            continue
        if w.start_interval < 0:
            out.append((start_f, f"must be non-negative, got {w.start_interval}"))
        if w.end_interval <= w.start_interval:
            out.append((end_f, f"must be after {start_f}={w.start_interval}, got {w.end_interval}"))
        if not 0 < w.energy_wh <= MAX_QUANTITY_WH:
            out.append((energy_f, f"must be in (0, {MAX_QUANTITY_WH}], got {w.energy_wh}"))
        elif w.end_interval > w.start_interval and _int(power_w) and power_w > 0:
            most = max_energy_wh(power_w, config.interval_s) * (w.end_interval - w.start_interval)
            if w.energy_wh > most:
                out.append(
                    (
                        energy_f,
                        f"must be deliverable at the power limit within the window "
                        f"(at most {most}), got {w.energy_wh}",
                    )
                )
        if last_end is not None and w.start_interval < last_end:
            out.append((start_f, f"must not overlap the previous window (ends {last_end})"))
        last_end = w.end_interval
    return out


def validate_flex_order(
    order: FlexOrder,
    *,
    config: MarketConfig,
    participants: Mapping[str, Participant],
    feeder: Feeder,
) -> list[OrderProblem]:
    """Every rule ``order`` breaks, each naming the field and the rule."""
    found: list[tuple[str, str]] = []
    oid = order.order_id
    if not isinstance(oid, str) or not oid or len(oid) > 64 or not oid.isprintable():
        found.append(("order_id", "must be 1 to 64 printable characters"))
    found += _participant_problems(order.participant, participants, feeder)
    if isinstance(order, StorageOrder):
        found += _storage_problems(order, config)
    else:
        if not _int(order.max_power_w) or not 0 < order.max_power_w <= MAX_POWER_W:
            found.append(
                ("max_power_w", f"must be in (0, {MAX_POWER_W}] W, got {order.max_power_w!r}")
            )
        if not _int(order.value_per_kwh) or not 0 <= order.value_per_kwh <= config.price_max:
            found.append(
                (
                    "value_per_kwh",
                    f"must be in [0, {config.price_max}], got {order.value_per_kwh!r}",
                )
            )
        if isinstance(order, ShiftableLoadOrder) and not order.windows:
            found.append(("windows", "must hold at least one window"))
        prefix = "windows" if isinstance(order, ShiftableLoadOrder) else ""
        found += _window_problems(energy_windows(order), order.max_power_w, config, prefix=prefix)
    return [OrderProblem(str(oid), f, r) for f, r in found]


def validate_flex_orders(
    orders: Iterable[FlexOrder],
    *,
    config: MarketConfig,
    participants: Mapping[str, Participant],
    feeder: Feeder,
) -> list[OrderProblem]:
    """Every problem of every order, and duplicate keys."""
    out: list[OrderProblem] = []
    seen: set[tuple[str, str]] = set()
    for o in orders:
        out += validate_flex_order(o, config=config, participants=participants, feeder=feeder)
        key = (str(o.participant).lower(), o.order_id)
        if key in seen:
            out.append(OrderProblem(o.order_id, "order_id", "is used twice by one participant"))
        seen.add(key)
    return out


def assert_valid_flex_orders(
    orders: Iterable[FlexOrder],
    *,
    config: MarketConfig,
    participants: Mapping[str, Participant],
    feeder: Feeder,
) -> None:
    """Raise once with every problem.

    Raises:
        OrderValidationError: at least one rule is broken (all are listed).
    """
    problems = validate_flex_orders(orders, config=config, participants=participants, feeder=feeder)
    if problems:
        raise OrderValidationError(problems)

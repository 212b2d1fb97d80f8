"""What one backtest simulates: feeders, period, participants, scenario, tariffs.

A :class:`BacktestSpec` is a frozen value validated on construction (every
broken rule named by its field). Its :meth:`~BacktestSpec.to_dict` form is
written next to the results, so a rerun into the same folder can tell
whether the finished (feeder, day) files belong to the same question.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from market.config import MarketConfig
from market.errors import ConfigError

if TYPE_CHECKING:
    from market.demo.scenario import Scenario

__all__ = ["MAX_DAYS", "BacktestSpec", "FeederRef", "resolve_feeders"]

#: Longest period of one backtest: a leap year.
MAX_DAYS = 366
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True, slots=True)
class FeederRef:
    """A feeder of the study.

    Attributes:
        name: the feeder's name in the results (a built-in name, or a file's stem).
        source: what :func:`grid.load_feeder` loads: the built-in name or the file path.
    """

    name: str
    source: str


def resolve_feeders(items: list[str] | tuple[str, ...], *, key: str = "feeders") -> list[FeederRef]:
    """Turn built-in names, pandapower JSON files and folders of them into feeder refs.

    A folder stands for every ``*.json`` file directly inside it, by name.
    Nothing is loaded here: a file that is not a network fails in its own
    tasks, reported with its name, while the rest of the study goes on.

    Raises:
        ConfigError: an item is neither a built-in name nor an existing file or
            folder, a folder holds no JSON file, or two feeders get the same name.
    """
    from grid import BUILTIN_FEEDERS

    refs: list[FeederRef] = []
    for item in items:
        if item in BUILTIN_FEEDERS:
            refs.append(FeederRef(item, item))
            continue
        path = Path(item)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix == ".json" and p.is_file())
            if not files:
                raise ConfigError(f"{key}: folder {item} holds no pandapower .json file")
            refs.extend(FeederRef(_SAFE_NAME.sub("_", p.stem), str(p)) for p in files)
        elif path.is_file():
            refs.append(FeederRef(_SAFE_NAME.sub("_", path.stem), str(path)))
        else:
            names = ", ".join(sorted(BUILTIN_FEEDERS))
            raise ConfigError(
                f"{key}: {item!r} is neither a built-in feeder ({names}) "
                "nor an existing pandapower JSON file or folder"
            )
    if not refs:
        raise ConfigError(f"{key}: give at least one feeder")
    seen: dict[str, str] = {}
    for ref in refs:
        if ref.name in seen:
            raise ConfigError(
                f"{key}: two feeders are named {ref.name!r} ({seen[ref.name]} and {ref.source})"
            )
        seen[ref.name] = ref.source
    return refs


@dataclass(frozen=True, kw_only=True)
class BacktestSpec:
    """One backtest: every (feeder, day) of the period, cleared interval by interval.

    The homes, their flexible loads, how they trade and the grid's own base
    load come from a demo scenario (:mod:`market.demo.scenario`), so a
    backtest day is a demo day without gRPC and chain; ``participants``,
    ``pv_penetration``, ``ev_share``, ``heat_pump_share`` and ``cloudiness``
    override the scenario's values (None: the scenario's, filled in on
    construction, so :meth:`to_dict` records what ran).

    Attributes:
        feeders: the feeders (see :func:`resolve_feeders`).
        scenario: ``mild`` (default) or ``sunny-congested``.
        start: first simulated day (UTC).
        days: simulated days, 1..366.
        participants: homes placed on each feeder, 1..500.
        pv_penetration: share of homes with rooftop PV, 0..1.
        ev_share: share of homes charging an 11 kW car in the evening, 0..1.
        heat_pump_share: share of homes with a hot-water heat pump, 0..1.
        retail_price: what the external grid charges per kWh, token base units.
        feed_in_price: what the external grid pays per kWh, token base units.
        grid_fee_per_kwh: network fee per locally traded kWh, token base units.
        mechanism: ``"nodal"`` (grid limits, locational prices) or ``"uniform"``.
        sensitivities: ``"ac"`` or ``"dc"`` linearisation of the nodal clearing.
        interval_s: market interval length, s (must divide a day).
        cloudiness: mean cloud cover of the PV profiles, 0..1.
        seed: seeds the homes' placement, sizes, loads, cars and clouds.
    """

    feeders: tuple[FeederRef, ...]
    scenario: str = "mild"
    start: dt.date = field(default_factory=lambda: dt.date(2026, 6, 1))
    days: int = 1
    participants: int | None = None
    pv_penetration: float | None = None
    ev_share: float | None = None
    heat_pump_share: float | None = None
    retail_price: int = 300_000
    feed_in_price: int = 80_000
    grid_fee_per_kwh: int = 0
    mechanism: str = "nodal"
    sensitivities: str = "ac"
    interval_s: int = 900
    cloudiness: float | None = None
    seed: int = 7

    def __post_init__(self) -> None:
        from market.demo.scenario import SCENARIOS

        if self.scenario not in SCENARIOS:
            raise ConfigError(
                f"scenario: expected one of {', '.join(SCENARIOS)}, got {self.scenario!r}"
            )
        day = SCENARIOS[self.scenario]
        for name, own in _FROM_SCENARIO.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, getattr(day, own))
        problems = self.problems()
        if problems:
            raise ConfigError("; ".join(problems))

    @property
    def day(self) -> Scenario:
        """The scenario with this spec's overrides: what the homes and the base follow."""
        from market.demo.scenario import SCENARIOS

        overrides = {own: getattr(self, name) for name, own in _FROM_SCENARIO.items()}
        return replace(SCENARIOS[self.scenario], **overrides)

    def problems(self) -> list[str]:
        """Every rule the spec breaks, each naming the field."""
        return self._type_problems() or self._range_problems()

    def _type_problems(self) -> list[str]:
        out: list[str] = []
        ints = ("days", "participants", "retail_price", "feed_in_price", "grid_fee_per_kwh")
        for name in (*ints, "interval_s", "seed"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                out.append(f"{name}: must be an integer, got {value!r}")
        for name in ("pv_penetration", "ev_share", "heat_pump_share", "cloudiness"):
            value = getattr(self, name)
            if (
                not isinstance(value, int | float)
                or isinstance(value, bool)
                or not math.isfinite(value)
                or not 0.0 <= value <= 1.0
            ):
                out.append(f"{name}: must be a number within 0..1, got {value!r}")
        if not isinstance(self.start, dt.date) or isinstance(self.start, dt.datetime):
            out.append(f"start: must be a date (YYYY-MM-DD), got {self.start!r}")
        return out

    def _range_problems(self) -> list[str]:
        out: list[str] = []
        if not self.feeders:
            out.append("feeders: give at least one feeder")
        if not 1 <= self.days <= MAX_DAYS:
            out.append(f"days: must be 1..{MAX_DAYS}, got {self.days}")
        assert self.participants is not None  # filled in from the scenario
        if not 1 <= self.participants <= 500:
            out.append(f"participants: must be 1..500, got {self.participants}")
        if self.mechanism not in ("nodal", "uniform"):
            out.append(f"mechanism: must be 'nodal' or 'uniform', got {self.mechanism!r}")
        if self.sensitivities not in ("ac", "dc"):
            out.append(f"sensitivities: must be 'ac' or 'dc', got {self.sensitivities!r}")
        if self.seed < 0:
            out.append(f"seed: must be >= 0, got {self.seed}")
        try:
            self.market()
        except ConfigError as exc:
            out.extend(str(exc).split("; "))
        return out

    def market(self) -> MarketConfig:
        """The market configuration (tariffs and interval length) of every feeder.

        Raises:
            ConfigError: the tariffs or interval length break a rule.
        """
        return MarketConfig(
            interval_s=self.interval_s,
            retail_price=self.retail_price,
            feed_in_price=self.feed_in_price,
            grid_fee_per_kwh=self.grid_fee_per_kwh,
        )

    @property
    def day_list(self) -> list[dt.date]:
        """Every simulated day, in order."""
        return [self.start + dt.timedelta(days=i) for i in range(self.days)]

    @property
    def intervals_per_day(self) -> int:
        """Market intervals in one day."""
        return 86_400 // self.interval_s

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form (what the results folder records)."""
        out = asdict(self)
        out["start"] = self.start.isoformat()
        out["feeders"] = [{"name": f.name, "source": f.source} for f in self.feeders]
        return out

    def differences(self, recorded: dict[str, Any]) -> list[str]:
        """The fields in which ``recorded`` (a :meth:`to_dict`) asks another question.

        A (feeder, day) result depends on the feeder and the day but not on
        the rest of the period or on the other feeders, so ``start``, ``days``
        and extra feeders may change between runs; a feeder whose name now
        stands for another source counts as a difference (``feeders``).
        """
        mine = self.to_dict()
        out = [
            f.name
            for f in fields(self)
            if f.name not in _PERIOD and recorded.get(f.name) != mine[f.name]
        ]
        sources = {f["name"]: f["source"] for f in recorded.get("feeders", [])}
        if any(sources.get(f.name, f.source) != f.source for f in self.feeders):
            out.append("feeders")
        return out


#: Fields that default to the scenario's value → the scenario's attribute.
_FROM_SCENARIO = {
    "participants": "participants",
    "pv_penetration": "pv_share",
    "ev_share": "ev_share",
    "heat_pump_share": "heat_pump_share",
    "cloudiness": "cloudiness",
}

#: Fields that choose which (feeder, day) tasks run rather than what each computes.
_PERIOD = frozenset({"feeders", "start", "days"})

"""Settings of a demo run, validated at the edge (CLI flags)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from market.errors import ConfigError

if TYPE_CHECKING:
    from market.demo.scenario import Scenario

__all__ = ["DemoOptions"]


@dataclass(frozen=True)
class DemoOptions:
    """One demo run.

    Attributes:
        scenario: the day (:mod:`market.demo.scenario`): ``sunny-congested``
            or ``mild``; it sets the defaults of ``feeder``, ``participants``
            and ``pv_share``.
        feeder: built-in feeder name or pandapower JSON path (None: the scenario's).
        participants: prosumers and consumers placed on the feeder (None: the scenario's).
        modbus_devices: how many of them are read over real Modbus TCP from
            simulated SunSpec devices (the rest are simulated in-process).
        days: simulated days.
        start_hour: hour of the first day (UTC) at which trading starts.
        intervals: how many intervals to run (None: every interval of ``days``
            days from ``start_hour``); a shortened run for tests and quick looks.
        seed: seeds placement, PV sizes, load profiles, clouds and keys.
        start: the first simulated day (UTC midnight).
        report_dir: where the report folder is written.
        rpc_url: a JSON-RPC node to settle on (None: embedded EVM).
        key_file: the operator's private key for ``rpc_url``.
        mechanism: clearing mechanism of the engine.
        step_s: simulated seconds between two meter polls.
        pv_share: share of participants with PV, 0..1 (None: the scenario's).
        flex: some homes get batteries and EVs that trade as flexibility
            orders (:mod:`market.demo.flex`); the engine then clears a
            rolling horizon at every gate.
    """

    scenario: str = "sunny-congested"
    feeder: str | None = None
    participants: int | None = None
    modbus_devices: int = 4
    days: int = 1
    start_hour: int = 0
    intervals: int | None = None
    seed: int = 7
    start: dt.date = field(default_factory=lambda: dt.date(2026, 6, 21))
    report_dir: Path = Path("gridex-report")
    rpc_url: str | None = None
    key_file: Path | None = None
    mechanism: str = "nodal"
    step_s: int = 300
    pv_share: float | None = None
    flex: bool = False

    def __post_init__(self) -> None:
        from market.demo.scenario import SCENARIOS

        if self.scenario not in SCENARIOS:
            raise ConfigError(
                f"scenario: expected one of {', '.join(SCENARIOS)}, got {self.scenario!r}"
            )
        day = SCENARIOS[self.scenario]
        for name in ("feeder", "participants", "pv_share"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, getattr(day, name))
        self._check()

    @property
    def day(self) -> Scenario:
        """The scenario's settings."""
        from market.demo.scenario import SCENARIOS

        return SCENARIOS[self.scenario]

    @property
    def feeder_name(self) -> str:
        """The feeder, resolved."""
        assert self.feeder is not None
        return self.feeder

    @property
    def participant_count(self) -> int:
        """The number of homes, resolved."""
        assert self.participants is not None
        return self.participants

    @property
    def pv_fraction(self) -> float:
        """The PV share, resolved."""
        assert self.pv_share is not None
        return self.pv_share

    def _check(self) -> None:
        assert self.participants is not None
        assert self.pv_share is not None
        problems = []
        if not 1 <= self.participants <= 500:
            problems.append(f"participants: must be 1..500, got {self.participants}")
        if not 0 <= self.modbus_devices <= self.participants:
            problems.append(
                f"modbus_devices: must be 0..participants ({self.participants}), "
                f"got {self.modbus_devices}"
            )
        if not 1 <= self.days <= 366:
            problems.append(f"days: must be 1..366, got {self.days}")
        if not 0 <= self.start_hour <= 23:
            problems.append(f"start_hour: must be 0..23, got {self.start_hour}")
        if self.intervals is not None and not 1 <= self.intervals <= self.days * 96:
            problems.append(
                f"intervals: must be 1..{self.days * 96} (days × 96), got {self.intervals}"
            )
        if self.seed < 0:
            problems.append(f"seed: must be >= 0, got {self.seed}")
        if self.mechanism not in ("nodal", "uniform"):
            problems.append(f"mechanism: must be 'nodal' or 'uniform', got {self.mechanism!r}")
        if self.step_s <= 0 or 900 % self.step_s:
            problems.append(f"step_s: must divide 900, got {self.step_s}")
        if not 0.0 <= self.pv_share <= 1.0:
            problems.append(f"pv_share: must be within 0..1, got {self.pv_share}")
        if (self.rpc_url is None) != (self.key_file is None):
            problems.append("rpc_url, key_file: give both (a real node) or neither (embedded EVM)")
        if problems:
            raise ConfigError("; ".join(problems))

    @property
    def start_ms(self) -> int:
        """Unix ms at which the first traded interval starts."""
        midnight = dt.datetime.combine(self.start, dt.time(), tzinfo=dt.UTC)
        return int(midnight.timestamp() * 1000) + self.start_hour * 3_600_000

    @property
    def end_ms(self) -> int:
        """Unix ms at which the last traded interval ends."""
        count = self.intervals if self.intervals is not None else self.days * 96
        return self.start_ms + count * 900_000

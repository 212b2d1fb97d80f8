"""Settings of a demo run, validated at the edge (CLI flags)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from market.errors import ConfigError

__all__ = ["DemoOptions"]


@dataclass(frozen=True)
class DemoOptions:
    """One demo run.

    Attributes:
        feeder: built-in feeder name or pandapower JSON path.
        participants: prosumers and consumers placed on the feeder.
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
        pv_share: share of participants with PV, 0..1.
    """

    feeder: str = "cigre-lv"
    participants: int = 36
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
    pv_share: float = 0.6

    def __post_init__(self) -> None:
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

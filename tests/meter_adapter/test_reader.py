"""MeterReader: sequence, rollover across polls, plausibility, rebaselining, never crashing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from meter_adapter.clock import SimulatedClock
from meter_adapter.errors import DeviceError, InconsistentReadingError, MeterConfigError
from meter_adapter.reader import MeterReader
from meter_adapter.reading import Reading
from meter_adapter.registers import RegisterImage, RegisterType
from tests.meter_adapter import dumps

START = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
TOT_WH_EXP = 40124 + 36  # model 203 data starts at 40124
TOT_WH_IMP = 40124 + 44


def device() -> RegisterImage:
    return RegisterImage.from_blocks([(40000, dumps.INVERTER_AND_METER_AT_40000)])


def set_import(image: RegisterImage, count: int) -> None:
    image.set(TOT_WH_IMP, [count >> 16, count & 0xFFFF])


def polls(
    reader: MeterReader, clock: SimulatedClock, n: int, step_s: float = 60
) -> list[Reading | None]:
    async def go() -> list[Reading | None]:
        out = []
        for _ in range(n):
            clock.advance(step_s)
            out.append(await reader.poll())
        return out

    return asyncio.run(go())


def test_reading_from_a_sunspec_device() -> None:
    clock = SimulatedClock(START)
    reader = MeterReader(device(), meter_id="home-1", clock=clock)
    (reading,) = polls(reader, clock, 1)
    assert reading == Reading(
        meter_id="home-1",
        sequence=1,
        timestamp=datetime(2024, 6, 1, 12, 1, tzinfo=UTC),
        energy_import_wh=123_450,
        energy_export_wh=12_345_670,
        power_w=1234,  # the meter's -1234 W import is 1234 W into the grid
        production_wh=1_234_560,
        production_w=15230,
    )
    assert reading.timestamp_ms == 1_717_243_260_000


def test_sequence_is_gapless_over_skipped_polls() -> None:
    clock = SimulatedClock(START)
    image = device()
    reader = MeterReader(image, meter_id="m", clock=clock, start_sequence=41)
    first = polls(reader, clock, 2)
    image.set(TOT_WH_IMP, [0x8000])  # counter leaps by ~2^31 counts: implausible
    skipped = polls(reader, clock, 1)
    set_import(image, 12345 + 3)  # back to sane: +30 Wh
    later = polls(reader, clock, 1)
    assert [r.sequence for r in first if r] == [41, 42]
    assert skipped == [None]
    assert later[0] is not None
    assert later[0].sequence == 43
    assert later[0].energy_import_wh == 123_480
    assert reader.skipped == 1
    assert reader.readings == 3
    assert reader.unexpected_errors == 0


def test_rollover_is_tracked_across_polls() -> None:
    clock = SimulatedClock(START)
    image = RegisterImage.from_blocks([(50000, dumps.inverter_only_at_50000(0xFFFF, 0xFF00))])
    reader = MeterReader(image, meter_id="pv", clock=clock)
    readings = [polls(reader, clock, 1)[0]]
    image.set(50070 + 2 + 22, [0x0000, 0x0100])  # WH wrapped: 0xFFFFFF00 -> 0x100 = +512 Wh
    readings += polls(reader, clock, 1)
    image.set(50070 + 2 + 22, [0x0000, 0x0300])
    readings += polls(reader, clock, 1)
    assert [r.production_wh for r in readings if r] == [2**32 - 256, 2**32 + 256, 2**32 + 768]
    assert [r.energy_export_wh for r in readings if r] == [2**32 - 256, 2**32 + 256, 2**32 + 768]


def test_counter_running_backwards_is_skipped_then_rebaselined_monotonically() -> None:
    clock = SimulatedClock(START)
    image = device()
    reader = MeterReader(image, meter_id="m", clock=clock, rebaseline_after=3)
    (before,) = polls(reader, clock, 1)
    assert before is not None
    # the meter is replaced: its import counter restarts near zero and counts up
    results = []
    for count in (5, 6, 7, 8):
        set_import(image, count)
        results += polls(reader, clock, 1)
    assert results[:2] == [None, None]
    rebased, after = results[2], results[3]
    assert rebased is not None
    assert after is not None
    # counters never decrease: they carry on from the last value emitted
    assert rebased.energy_import_wh == before.energy_import_wh
    assert after.energy_import_wh == before.energy_import_wh + 10
    assert after.energy_export_wh == before.energy_export_wh
    assert [rebased.sequence, after.sequence] == [2, 3]


def test_implausible_step_is_an_inconsistent_reading() -> None:
    clock = SimulatedClock(START)
    image = device()
    reader = MeterReader(image, meter_id="m", clock=clock, max_power_w=20_000)
    polls(reader, clock, 1)
    set_import(image, 12345 + 1000)  # +10 kWh in 60 s: 600 kW
    clock.advance(60)
    with pytest.raises(InconsistentReadingError):
        asyncio.run(reader.read())
    clock.advance(3600)  # ... but plausible after an hour offline at 20 kW
    assert asyncio.run(reader.read()).energy_import_wh == 123_450 + 10_000


def test_unreadable_device_is_skipped_and_layout_is_rediscovered() -> None:
    clock = SimulatedClock(START)
    image = device()
    reader = MeterReader(image, meter_id="m", clock=clock)
    polls(reader, clock, 1)
    image.set(40122, [204])  # the meter model changed under us
    assert polls(reader, clock, 1) == [None]
    second = polls(reader, clock, 1)[0]
    assert second is not None
    assert second.sequence == 2
    assert sum(1 for r in image.requests if r[1] == 40000) == 2  # discovered twice


class Broken:
    """A register reader that fails in every way it can."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    async def read(self, register_type: RegisterType, address: int, count: int) -> list[int]:
        raise self.error


@pytest.mark.parametrize(
    ("error", "unexpected"),
    [(DeviceError("unplugged"), 0), (RuntimeError("a bug"), 1)],
)
def test_poll_never_raises(error: Exception, unexpected: int) -> None:
    reader = MeterReader(Broken(error), meter_id="m", clock=SimulatedClock(START))
    assert asyncio.run(reader.poll()) is None
    assert reader.unexpected_errors == unexpected
    assert reader.skipped == 1


def test_bad_configuration() -> None:
    with pytest.raises(MeterConfigError):
        MeterReader(device(), meter_id="")
    with pytest.raises(MeterConfigError):
        MeterReader(device(), meter_id="m", start_sequence=0)
    with pytest.raises(MeterConfigError):
        MeterReader(device(), meter_id="m", max_power_w=0)

"""Implausible values are quarantined, not sent; discovery survives a busy device."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from meter_adapter.clock import SimulatedClock
from meter_adapter.errors import ModbusExceptionError
from meter_adapter.maps import load_map
from meter_adapter.reader import MeterReader
from meter_adapter.reading import Reading
from meter_adapter.registers import RegisterImage, RegisterType
from meter_adapter.sunspec.discovery import DiscoveryRetry
from meter_adapter.sunspec.models import METER_MODEL, NAMEPLATE_MODEL_ID
from tests.meter_adapter import dumps

START = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
METER_DATA = 40124  # model 203's data in the dump
METER_HEADER = 40122
W = METER_DATA + METER_MODEL.point("W").offset
W_SF = METER_DATA + METER_MODEL.point("W_SF").offset
TOT_WH_IMP = METER_DATA + METER_MODEL.point("TotWhImp").offset


async def recorded_sleep(_: float) -> None:
    return None


NO_WAIT = DiscoveryRetry(attempts=5, sleep=recorded_sleep)


def device() -> RegisterImage:
    return RegisterImage.from_blocks([(40000, dumps.INVERTER_AND_METER_AT_40000)])


def poll_n(reader: MeterReader, clock: SimulatedClock, n: int) -> list[Reading | None]:
    async def go() -> list[Reading | None]:
        out = []
        for _ in range(n):
            clock.advance(60)
            out.append(await reader.poll())
        return out

    return asyncio.run(go())


def test_a_well_formed_absurd_power_is_quarantined_not_sent() -> None:
    """W=32767 with W_SF=10 would be 3.3e14 W: refused, counted, and readings resume."""
    clock = SimulatedClock(START)
    image = device()
    reader = MeterReader(image, meter_id="m", clock=clock)
    first, = poll_n(reader, clock, 1)  # fmt: skip
    assert first is not None
    image.set(W, [32767])
    image.set(W_SF, [10])
    assert poll_n(reader, clock, 2) == [None, None]
    assert reader.quarantined == {"power_w": 2}
    assert "power_w=-3.2767e+14 W" in reader.quarantine[-1].reason
    image.set(W, [0xFB2E])  # -1234 W again
    image.set(W_SF, [0])
    (after,) = poll_n(reader, clock, 1)
    assert after is not None
    assert after.power_w == 1234
    assert after.sequence == first.sequence + 1  # the quarantined polls used no sequence number


def test_a_counter_leap_is_quarantined_with_its_name() -> None:
    clock = SimulatedClock(START)
    image = device()
    reader = MeterReader(image, meter_id="m", clock=clock, max_power_w=20_000)
    poll_n(reader, clock, 1)
    image.set(TOT_WH_IMP, [0, 12345 + 100])  # +1 kWh in 60 s = 60 kW > 20 kW
    assert poll_n(reader, clock, 1) == [None]
    assert reader.quarantined == {"energy_import_wh": 1}


def test_a_register_map_bound_applies() -> None:
    clock = SimulatedClock(START)
    sdm120 = load_map("sdm120")
    assert sdm120.max_power_w == 12_000
    table = dict.fromkeys(range(256), 0)
    image = RegisterImage(table, table)
    reader = MeterReader(image, meter_id="m", clock=clock, register_map=sdm120)
    assert poll_n(reader, clock, 1)[0] is not None
    image.set(0x000C, [0x4680, 0x0000], register_type=RegisterType.INPUT)  # 16384 W import
    assert poll_n(reader, clock, 1) == [None]
    assert reader.quarantined == {"power_w": 1}


def with_nameplate(rating_w: int) -> RegisterImage:
    """The dump with a nameplate model 120 (WRtg, WRtg_SF = 0) before the end marker."""
    values = list(dumps.INVERTER_AND_METER_AT_40000)
    end = len(values) - 2
    assert values[end:] == dumps.END
    nameplate = [NAMEPLATE_MODEL_ID, 26, 4, rating_w, 0, *([0] * 23)]
    return RegisterImage.from_blocks([(40000, values[:end] + nameplate + dumps.END)])


@pytest.mark.parametrize(("rating_w", "accepted"), [(20_000, True), (10_000, False)])
def test_the_nameplate_rating_bounds_inverter_output(rating_w: int, accepted: bool) -> None:
    """The dump's inverter reports 15230 W: plausible for a 20 kW rating, not for 10 kW."""
    clock = SimulatedClock(START)
    reader = MeterReader(with_nameplate(rating_w), meter_id="m", clock=clock)
    (reading,) = poll_n(reader, clock, 1)
    assert (reading is not None) is accepted
    assert reader.quarantined == ({} if accepted else {"production_w": 1})


class Busy:
    """A device that answers "server device busy" (or times out) to chosen reads, a few times."""

    def __init__(self, image: RegisterImage, address: int, times: int, code: int = 6) -> None:
        self.image = image
        self.address = address
        self.left = times
        self.code = code

    async def read(self, register_type: RegisterType, address: int, count: int) -> list[int]:
        if address == self.address and self.left > 0:
            self.left -= 1
            raise ModbusExceptionError("busy", function_code=3, exception_code=self.code)
        return await self.image.read(register_type, address, count)


@pytest.mark.parametrize("code", [5, 6])
def test_a_busy_model_header_during_discovery_is_retried(code: int) -> None:
    clock = SimulatedClock(START)
    busy = Busy(device(), METER_HEADER, times=3, code=code)
    reader = MeterReader(busy, meter_id="m", clock=clock, discovery_retry=NO_WAIT)
    (reading,) = poll_n(reader, clock, 1)
    assert reading is not None  # the meter model was not dropped
    assert asyncio.run(reader.describe())["models"][-1]["id"] == 203


def test_a_burst_longer_than_the_retries_fails_discovery_then_recovers() -> None:
    clock = SimulatedClock(START)
    busy = Busy(device(), METER_HEADER, times=7)
    reader = MeterReader(busy, meter_id="m", clock=clock, discovery_retry=NO_WAIT)
    assert poll_n(reader, clock, 1) == [None]  # not a map without its meter
    assert poll_n(reader, clock, 1)[0] is not None
    assert [m["id"] for m in asyncio.run(reader.describe())["models"]] == [1, 103, 203]


def test_models_found_are_kept_when_a_rediscovery_ends_early() -> None:
    """After a changed header forces rediscovery, an "illegal address" at the meter's
    header does not drop the meter found before."""
    clock = SimulatedClock(START)
    image = device()
    busy = Busy(image, METER_HEADER, times=0, code=2)
    reader = MeterReader(busy, meter_id="m", clock=clock, discovery_retry=NO_WAIT)
    assert poll_n(reader, clock, 1)[0] is not None
    image.set(METER_HEADER + 1, [104])  # header length changed: malformed, rediscover
    assert poll_n(reader, clock, 1) == [None]
    image.set(METER_HEADER + 1, [105])
    busy.left = 1  # the rediscovery's walk sees "illegal data address" at the meter header
    (reading,) = poll_n(reader, clock, 1)
    assert reading is not None
    assert [m["id"] for m in asyncio.run(reader.describe())["models"]] == [1, 103, 203]

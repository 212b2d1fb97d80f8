"""The home battery over SunSpec model 802: decoded against a hand dump, plausible, quarantined."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meter_adapter.errors import DecodeError, ImplausibleReadingError
from meter_adapter.reader import MeterReader
from meter_adapter.reading import Reading
from meter_adapter.registers import RegisterImage
from meter_adapter.sunspec.battery import decode_battery
from meter_adapter.sunspec.models import BATTERY_MODEL
from tests.meter_adapter import dumps
from tests.meter_adapter.strategies import register

T0 = datetime(2024, 6, 21, 10, tzinfo=UTC)
DATA = dumps.BATTERY_802[2:]
OFF = dumps.BATTERY_802_OFFSETS


def with_points(**points: int) -> list[int]:
    """The hand dump's data with some points (by name) replaced by raw register values."""
    data = list(DATA)
    for name, value in points.items():
        data[OFF[name]] = value & 0xFFFF
    return data


BATTERY_DATA_AT = 40000 + 2 + 68 + 107 + 2  # SunS, model 1 (2 + 66), 203 (2 + 105), 802 header


def device(battery_data: list[int]) -> RegisterImage:
    registers = dumps.SUNS + dumps.COMMON_1 + dumps.METER_203 + [802, 62, *battery_data]
    return RegisterImage.from_blocks([(40000, registers + dumps.END)])


def poll(battery_data: list[int], *, max_power_w: float = 100_000.0) -> tuple[Reading, MeterReader]:
    reader = MeterReader(
        device(battery_data), meter_id="home", clock=lambda: T0, max_power_w=max_power_w
    )
    reading = asyncio.run(reader.poll())
    assert reading is not None  # the meter's values never depend on the battery's
    assert reading.power_w == 1234
    assert reading.energy_export_wh == 12_345_670
    return reading, reader


# -- decoding against the hand dump ---------------------------------------------------


def test_the_layout_puts_each_point_where_model_802_does() -> None:
    assert BATTERY_MODEL.length == 62
    for name, offset in OFF.items():
        assert BATTERY_MODEL.point(name).offset == offset, name


def test_model_802_decodes_to_the_hand_computed_values() -> None:
    b = decode_battery(802, DATA)
    assert b.capacity_wh == 13_500
    assert b.soc_percent == Fraction(667, 10)
    assert b.soc_wh == 9_004  # ⌊9004.5⌋
    assert b.min_soc_wh == 2_025  # max(SoCMin 5 %, SoCRsvMin 15 %)
    assert b.max_soc_wh == 12_825  # SoCMax 95 %
    assert (b.max_charge_w, b.max_discharge_w) == (5_000, 4_600)
    assert b.power_w == -3_840  # charging
    assert b.charge_status == 4
    assert b.soc_resolution_wh == 14  # 0.1 % of 13.5 kWh, rounded up
    assert b.to_json_dict()["charge_status"] == "charging"


def test_the_reader_puts_the_battery_in_the_reading() -> None:
    reading, reader = poll(DATA)
    assert reading.battery == decode_battery(802, DATA)
    assert reader.quarantined.total() == 0
    assert asyncio.run(reader.describe())["models"][-1] == {
        "id": 802,
        "address": 40000 + 2 + 68 + 107,  # SunS, model 1 (2 + 66), model 203 (2 + 105)
        "length": 62,
    }


def test_rounding_of_the_soc_band_is_conservative() -> None:
    # 10 000 Wh, SoC_SF = -2: SoC 33.33 % -> 3333 Wh, band 12.34 % .. 87.66 % -> 1234 .. 8766 Wh
    data = with_points(WHRtg=1000, SoC=3333, SoCMin=1234, SoCRsvMin=1234, SoCMax=8766, SoC_SF=-2)
    data[OFF["SoCRsvMax"]] = 0xFFFF
    b = decode_battery(802, data)
    assert (b.capacity_wh, b.soc_wh, b.min_soc_wh, b.max_soc_wh) == (10_000, 3_333, 1_234, 8_766)
    data = with_points(WHRtg=1001, SoC=3333, SoCMin=1234, SoCRsvMin=0, SoCMax=8766, SoC_SF=-2)
    b = decode_battery(802, data)  # 10 010 Wh
    assert b.soc_wh == math.floor(10_010 * 0.3333)  # 3336.333 -> 3336
    assert b.min_soc_wh == 1_236  # ⌈1235.234⌉
    assert b.max_soc_wh == 8_774  # ⌊8774.766⌋


# -- refused and quarantined ----------------------------------------------------------


@pytest.mark.parametrize(
    ("points", "quantity"),
    [
        pytest.param({"SoC": 1001}, "battery.SoC", id="soc-above-100"),
        pytest.param({"SoCMax": 1200}, "battery.SoCMax", id="limit-above-100"),
        pytest.param({"SoCRsvMin": 960}, "battery.SoCMin", id="reserve-above-highest"),
        pytest.param({"WHRtg": 0xFFFF}, "battery", id="capacity-not-implemented"),
        pytest.param({"SoC": 0xFFFF}, "battery", id="soc-not-implemented"),
        pytest.param({"SoC_SF": 11}, "battery", id="scale-factor-out-of-range"),
        pytest.param({"W_SF": -11}, "battery", id="power-scale-out-of-range"),
        pytest.param({"WHRtg": 60000, "WHRtg_SF": 4}, "battery.WHRtg", id="capacity-absurd"),
        pytest.param({"WHRtg": 0}, "battery.WHRtg", id="capacity-zero"),
        pytest.param(
            {"WChaRteMax": 32767, "WChaDisChaMax_SF": 4},
            "battery.WChaRteMax",
            id="charge-limit-beyond-site",
        ),
        pytest.param({"W": 6000}, "battery.W", id="power-beyond-discharge-limit"),
        pytest.param({"W": -5600}, "battery.W", id="power-beyond-charge-limit"),
        pytest.param({"W": 32767, "W_SF": 10}, "battery.W", id="power-absurd"),
    ],
)
def test_an_implausible_battery_is_quarantined_and_the_meter_still_reads(
    points: dict[str, int], quantity: str
) -> None:
    reading, reader = poll(with_points(**points))
    assert reading.battery is None
    assert reader.quarantined == {quantity: 1}
    assert reader.quarantine[-1].quantity == quantity


def test_power_at_the_limit_with_tolerance_is_plausible() -> None:
    # discharge limit 4600 W × 1.1 + 50 W standby = 5110 W
    assert poll(with_points(W=5110))[0].battery is not None
    assert poll(with_points(W=5111))[0].battery is None


def test_a_soc_that_jumps_faster_than_the_battery_can_move_is_quarantined() -> None:
    now = [T0]
    image = device(DATA)
    reader = MeterReader(image, meter_id="home", clock=lambda: now[0])
    assert asyncio.run(reader.poll()).battery is not None  # type: ignore[union-attr]
    # 10 s later at 5000 W at most 13.9 Wh (+ 2 × 14 Wh resolution + 1) may move; 66.7 % -> 60.0 %
    image.set(BATTERY_DATA_AT, with_points(SoC=600))
    now[0] = T0 + timedelta(seconds=10)
    reading = asyncio.run(reader.poll())
    assert reading is not None
    assert reading.battery is None
    assert reader.quarantined == {"battery.SoC": 1}
    # an hour after the last accepted one, 904 Wh (6.7 %) is within 5000 Wh: accepted again
    now[0] = T0 + timedelta(hours=1)
    reading = asyncio.run(reader.poll())
    assert reading is not None
    assert reading.battery is not None
    assert reading.battery.soc_wh == 8_100


def test_a_soc_step_within_the_rating_is_accepted() -> None:
    now = [T0]
    image = device(DATA)
    reader = MeterReader(image, meter_id="home", clock=lambda: now[0])
    asyncio.run(reader.poll())
    # 60 s at 5000 W moves 83 Wh: 66.7 % -> 67.3 % is 81 Wh (9085 Wh)
    image.set(BATTERY_DATA_AT, with_points(SoC=673))
    now[0] = T0 + timedelta(seconds=60)
    reading = asyncio.run(reader.poll())
    assert reading is not None
    assert reading.battery is not None
    assert reading.battery.soc_wh == 9_085


# -- properties -----------------------------------------------------------------------


def _signed(v: int) -> int:
    return v - 0x10000 if v >= 0x8000 else v


def reference(data: list[int]) -> dict[str, object] | None:
    """An independent decoding straight from model_802.json's offsets; None: must be refused."""

    def sf(name: str) -> int | None:
        v = data[OFF[name]]
        if v == 0x8000:
            return None
        return _signed(v)

    sfs = [sf(n) for n in ("WHRtg_SF", "WChaDisChaMax_SF", "SoC_SF", "W_SF")]
    if any(s is not None and not -10 <= s <= 10 for s in sfs):
        return None
    wh_sf, rate_sf, soc_sf, w_sf = sfs
    mandatory = [data[OFF[n]] for n in ("WHRtg", "WChaRteMax", "WDisChaRteMax", "SoC")]
    if 0xFFFF in mandatory or None in (wh_sf, rate_sf, soc_sf):
        return None
    assert wh_sf is not None
    assert rate_sf is not None
    assert soc_sf is not None

    def pct(name: str) -> Fraction | None:
        v = data[OFF[name]]
        return None if v == 0xFFFF else v * Fraction(10) ** soc_sf

    percents = {n: pct(n) for n in ("SoC", "SoCMin", "SoCRsvMin", "SoCMax", "SoCRsvMax")}
    if any(p is not None and not 0 <= p <= 100 for p in percents.values()):
        return None
    lows = [p for n in ("SoCMin", "SoCRsvMin") if (p := percents[n]) is not None]
    highs = [p for n in ("SoCMax", "SoCRsvMax") if (p := percents[n]) is not None]
    low, high = max(lows, default=Fraction(0)), min(highs, default=Fraction(100))
    if low > high:
        return None
    capacity = math.floor(data[OFF["WHRtg"]] * Fraction(10) ** wh_sf)
    soc = percents["SoC"]
    assert soc is not None
    w = data[OFF["W"]]
    return {
        "capacity_wh": capacity,
        "soc_wh": math.floor(capacity * soc / 100),
        "min_soc_wh": math.ceil(capacity * low / 100),
        "max_soc_wh": math.floor(capacity * high / 100),
        "max_charge_w": math.floor(data[OFF["WChaRteMax"]] * Fraction(10) ** rate_sf),
        "max_discharge_w": math.floor(data[OFF["WDisChaRteMax"]] * Fraction(10) ** rate_sf),
        "power_w": None
        if w == 0x8000 or w_sf is None
        else round(_signed(w) * Fraction(10) ** w_sf),
    }


@st.composite
def battery_data(draw: st.DrawFn) -> list[int]:
    """The hand dump with any of the points gridex reads overwritten by arbitrary registers."""
    data = list(DATA)
    for name in draw(st.sets(st.sampled_from(sorted(OFF)))):
        data[OFF[name]] = draw(register())
    return data


@given(battery_data())
def test_decoding_arbitrary_points_is_exact_or_refused(data: list[int]) -> None:
    expected = reference(data)
    try:
        b = decode_battery(802, data)
    except (DecodeError, ImplausibleReadingError):
        assert expected is None
        return
    assert expected is not None
    got = {k: getattr(b, k) for k in expected}
    assert got == expected


@given(st.lists(register(), min_size=62, max_size=62))
def test_arbitrary_registers_decode_or_raise_a_decode_error(data: list[int]) -> None:
    try:
        b = decode_battery(802, data)
    except DecodeError:  # ImplausibleReadingError is one
        return
    assert 0 <= b.min_soc_wh <= b.max_soc_wh + 1
    assert 0 <= b.soc_wh <= b.capacity_wh


@given(battery_data())
def test_the_reader_never_reports_an_implausible_battery(data: list[int]) -> None:
    reading, reader = poll(data, max_power_w=20_000.0)
    if reading.battery is None:
        assert reader.quarantined.total() == 1
        return
    b = reading.battery
    assert b == decode_battery(802, data)  # exactly what the registers say
    assert 0 < b.capacity_wh <= 20_000 * 24
    assert b.max_charge_w <= 20_000
    assert b.max_discharge_w <= 20_000
    assert 0 <= b.soc_wh <= b.capacity_wh
    if b.power_w is not None:
        assert -(1.1 * b.max_charge_w + 50) <= b.power_w <= 1.1 * b.max_discharge_w + 50


def test_decoding_refuses_a_short_model_and_another_model_id() -> None:
    with pytest.raises(DecodeError, match="62"):
        decode_battery(802, DATA[:61])
    with pytest.raises(DecodeError, match="not the battery model"):
        decode_battery(124, DATA)

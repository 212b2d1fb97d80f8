"""SunSpec discovery and decoding against register dumps written out by hand (dumps.py)."""

from __future__ import annotations

import asyncio
import contextlib
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meter_adapter.errors import (
    DecodeError,
    DeviceError,
    ModbusExceptionError,
    SunSpecNotFoundError,
)
from meter_adapter.registers import RegisterImage, RegisterType
from meter_adapter.sources import Measurement, SunSpecSource
from meter_adapter.sunspec.decode import decode_common, decode_inverter, decode_meter
from meter_adapter.sunspec.discovery import ModelHeader, discover, read_model
from meter_adapter.sunspec.encode import encode_model, encode_sunspec_map
from meter_adapter.sunspec.models import COMMON_MODEL, INVERTER_MODEL, METER_MODEL
from tests.meter_adapter import dumps
from tests.meter_adapter.strategies import register_lists, sunspec_like_maps


def image(base: int, registers: list[int]) -> RegisterImage:
    return RegisterImage.from_blocks([(base, registers)])


def test_common_model_decodes_to_the_identity() -> None:
    common = decode_common(dumps.COMMON_1[2:])
    assert common.manufacturer == "Fronius"
    assert common.model == "Symo 5.0-3-M"
    assert common.options is None
    assert common.version == "1.2.3"
    assert common.serial_number == "12345678"
    assert common.device_address == 1


def test_inverter_103_power_and_lifetime_energy() -> None:
    values = decode_inverter(103, dumps.INVERTER_103[2:])
    assert values.ac_power_w == 15230.0  # 1523 × 10^1
    assert values.ac_energy is not None
    assert values.ac_energy.raw == 123456
    assert values.ac_energy.wh_per_unit == 10
    assert values.ac_energy.bits == 32
    assert values.ac_energy.energy_wh == 1_234_560


def test_meter_203_power_and_counters() -> None:
    values = decode_meter(203, dumps.METER_203[2:])
    assert values.power_w == -1234.0  # meter convention: exporting
    assert values.energy_exported is not None
    assert values.energy_imported is not None
    assert values.energy_exported.energy_wh == 12_345_670
    assert values.energy_imported.energy_wh == 123_450


def test_meter_201_negative_scale_factors() -> None:
    values = decode_meter(201, dumps.METER_201[2:])
    assert values.power_w == 250.0  # 2500 × 10^-1
    assert values.energy_imported is not None
    assert values.energy_exported is not None
    assert values.energy_imported.wh_per_unit == Fraction(1, 10)
    assert values.energy_imported.energy_wh == 9876  # 9876.5 Wh, rounded down
    assert values.energy_exported.energy_wh == 0  # acc32 "not implemented" is zero


def test_not_implemented_power_and_scale_factor() -> None:
    data = list(dumps.METER_203[2:])
    data[16] = 0x8000  # W
    assert decode_meter(203, data).power_w is None
    data = list(dumps.METER_203[2:])
    data[20] = 0x8000  # W_SF
    assert decode_meter(203, data).power_w is None
    data[52] = 0x8000  # TotWh_SF
    assert decode_meter(203, data).energy_imported is None


@pytest.mark.parametrize("scale_factor", [11, 0xFFF5, 0x7FFF])  # 11, -11, 32767
def test_scale_factor_out_of_range_is_a_decode_error(scale_factor: int) -> None:
    data = list(dumps.METER_203[2:])
    data[20] = scale_factor
    with pytest.raises(DecodeError, match=r"outside -10\.\.10"):
        decode_meter(203, data)


def test_wrong_model_or_short_data_is_a_decode_error() -> None:
    with pytest.raises(DecodeError):
        decode_meter(103, dumps.METER_203[2:])
    with pytest.raises(DecodeError):
        decode_inverter(103, dumps.INVERTER_103[2:20])
    with pytest.raises(DecodeError):
        decode_common(dumps.COMMON_1[2:40])


@pytest.mark.parametrize(
    ("base", "registers", "expected"),
    [
        pytest.param(
            40000,
            dumps.INVERTER_AND_METER_AT_40000,
            [(1, 40002, 66), (103, 40070, 50), (203, 40122, 105)],
            id="base-40000",
        ),
        pytest.param(0, dumps.METER_ONLY_AT_0, [(1, 2, 66), (201, 70, 105)], id="base-0"),
        pytest.param(
            50000,
            dumps.inverter_only_at_50000(0, 1),
            [(1, 50002, 66), (101, 50070, 50)],
            id="base-50000",
        ),
    ],
)
def test_discovery_finds_marker_and_walks_models(
    base: int, registers: list[int], expected: list[tuple[int, int, int]]
) -> None:
    found = asyncio.run(discover(image(base, registers)))
    assert found.base_address == base
    assert [(m.model_id, m.address, m.length) for m in found.models] == expected


def test_no_marker_anywhere() -> None:
    with pytest.raises(SunSpecNotFoundError):
        asyncio.run(discover(image(40000, [0x1234, 0x5678, 1, 66])))


def test_chain_without_end_marker_stops_at_the_map_edge() -> None:
    registers = dumps.INVERTER_AND_METER_AT_40000[:-2]  # no end marker
    found = asyncio.run(discover(image(40000, registers)))
    assert found.model_ids == (1, 103, 203)


@pytest.mark.parametrize(
    "chain",
    [
        pytest.param([1, 0], id="zero-length"),
        pytest.param([1, 0xFFF0], id="runs-past-65535"),
        pytest.param([7, 1, 0] * 70, id="too-many-models"),
    ],
)
def test_malformed_chains(chain: list[int]) -> None:
    with pytest.raises(DecodeError):
        asyncio.run(discover(image(40000, [*dumps.SUNS, *chain])))


def test_read_model_notices_a_changed_header() -> None:
    device = image(40000, dumps.INVERTER_AND_METER_AT_40000)
    header = ModelHeader(203, 40122, 105)
    assert asyncio.run(read_model(device, header)) == dumps.METER_203[2:]
    device.set(40122, [204])
    with pytest.raises(DecodeError, match="header"):
        asyncio.run(read_model(device, header))


def test_source_with_meter_and_inverter() -> None:
    async def measure() -> tuple[SunSpecSource, Measurement]:
        source = await SunSpecSource.discover(image(40000, dumps.INVERTER_AND_METER_AT_40000))
        return source, await source.measure()

    source, measurement = asyncio.run(measure())
    assert source.common is not None
    assert source.common.serial_number == "12345678"
    assert source.describe()["models"][2] == {"id": 203, "address": 40122, "length": 105}
    assert measurement.power_w == 1234.0  # gridex convention: exporting is positive
    assert measurement.energy_import.energy_wh == 123_450
    assert measurement.energy_export.energy_wh == 12_345_670
    assert measurement.production_w == 15230.0
    assert measurement.production is not None
    assert measurement.production.energy_wh == 1_234_560


def test_inverter_only_device_is_metered_as_a_generator() -> None:
    async def measure() -> Measurement:
        source = await SunSpecSource.discover(image(50000, dumps.inverter_only_at_50000(1, 2)))
        return await source.measure()

    measurement = asyncio.run(measure())
    assert measurement.power_w == 3000.0
    assert measurement.energy_import.energy_wh == 0
    assert measurement.energy_export.energy_wh == 65538  # 0x0001_0002
    assert measurement.production is not None
    assert measurement.production.energy_wh == 65538


def test_device_without_usable_models() -> None:
    registers = [*dumps.SUNS, *dumps.COMMON_1, *dumps.END]
    with pytest.raises(DecodeError, match="no meter"):
        asyncio.run(SunSpecSource.discover(image(40000, registers)))


def test_encoder_round_trips_through_the_decoders() -> None:
    meter = encode_model(METER_MODEL, 203, {"W": -1234, "W_SF": 0, "TotWhExp": 1234567,
                                            "TotWhImp": 12345, "TotWh_SF": 1})  # fmt: skip
    inverter = encode_model(INVERTER_MODEL, 103, {"W": 1523, "W_SF": 1, "WH": 123456, "WH_SF": 1})
    common = encode_model(COMMON_MODEL, 1, {"Mn": "Fronius", "SN": "12345678"})
    assert meter[:2] == [203, 105]
    assert len(meter) == 107
    assert decode_meter(203, meter[2:]).power_w == -1234.0
    assert decode_inverter(103, inverter[2:]).ac_power_w == 15230.0
    assert decode_common(common[2:]).manufacturer == "Fronius"
    assert encode_sunspec_map([common])[:2] == dumps.SUNS
    with pytest.raises(KeyError):
        encode_model(METER_MODEL, 203, {"Watts": 1})


@given(st.sampled_from([101, 102, 103]), register_lists(max_size=60))
def test_inverter_decoder_never_crashes(model_id: int, data: list[int]) -> None:
    with contextlib.suppress(DecodeError):
        decode_inverter(model_id, data)


@given(st.sampled_from([201, 202, 203, 204]), register_lists(max_size=110))
def test_meter_decoder_never_crashes(model_id: int, data: list[int]) -> None:
    with contextlib.suppress(DecodeError):
        decode_meter(model_id, data)


@given(register_lists(max_size=70))
def test_common_decoder_never_crashes(data: list[int]) -> None:
    with contextlib.suppress(DecodeError):
        decode_common(data)


@given(sunspec_like_maps())
def test_discovery_and_measurement_never_crash(case: tuple[int, list[int]]) -> None:
    base, registers = case

    async def go() -> None:
        source = await SunSpecSource.discover(image(base, registers))
        await source.measure()

    with contextlib.suppress(DecodeError, DeviceError):
        asyncio.run(go())


def test_image_answers_illegal_address_like_a_device() -> None:
    device = image(40000, dumps.SUNS)
    with pytest.raises(ModbusExceptionError) as caught:
        asyncio.run(device.read(RegisterType.HOLDING, 40001, 2))
    assert caught.value.exception_code == 2

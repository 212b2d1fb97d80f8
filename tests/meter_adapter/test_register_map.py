"""Register maps as data: validation, the shipped maps, decoding hand-written dumps."""

from __future__ import annotations

import asyncio
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given

from meter_adapter.errors import DecodeError, MeterConfigError
from meter_adapter.maps import builtin_map_names, load_map
from meter_adapter.register_map import (
    load_register_map,
    parse_register_map,
    validate_register_map,
)
from meter_adapter.registers import RegisterImage, RegisterType
from meter_adapter.sources import RegisterMapSource
from tests.meter_adapter.strategies import register_lists

VALID: dict[str, Any] = {
    "device": {"name": "test meter", "register_type": "input"},
    "registers": {
        "power_w": {"address": 0, "type": "int16", "unit": "W"},
        "energy_import_wh": {"address": 1, "type": "uint32", "unit": "Wh", "accumulator": True},
        "energy_export_wh": {"address": 3, "type": "uint32", "unit": "kWh", "scale": 0.01},
    },
}


def test_shipped_maps_load() -> None:
    assert set(builtin_map_names()) >= {"sdm630", "sdm120", "em24"}
    for name in builtin_map_names():
        register_map = load_map(name)
        assert {"power_w", "energy_import_wh", "energy_export_wh"} <= set(register_map.registers)


def test_shipped_maps_say_where_they_come_from() -> None:
    folder = Path(__file__).parents[2] / "meter_adapter" / "maps"
    for path in folder.glob("*.toml"):
        assert "public" in path.read_text().lower(), path.name


def test_valid_map() -> None:
    register_map = parse_register_map(VALID)
    spec = register_map.registers["energy_export_wh"]
    assert spec.factor == 10  # 0.01 kWh per count
    assert spec.register_type is RegisterType.INPUT
    assert [(s.address, s.count) for s in register_map.spans()] == [(0, 5)]


def test_every_problem_is_reported_at_once() -> None:
    document: dict[str, Any] = {
        "device": {"name": "", "colour": "red"},
        "registers": {
            "power_w": {"address": -1, "type": "int128", "unit": "kWh", "scale": 0},
            "energy_import_wh": {
                "address": 70000,
                "type": "float32",
                "unit": "Wh",
                "accumulator": True,
                "word_order": "middle",
            },
            "voltage_v": {"address": 5, "type": "int16", "unit": "V"},
        },
        "extra": {},
    }
    problems = validate_register_map(document)
    for fragment in [
        "unknown top-level table 'extra'",
        "device.name",
        "unknown key 'colour'",
        "registers.power_w.address",
        "registers.power_w.type",
        "registers.power_w.unit",
        "registers.power_w.scale",
        "registers.energy_import_wh.address",
        "registers.energy_import_wh.word_order",
        "registers.energy_import_wh.accumulator",
        "registers.voltage_v: unknown quantity",
        "registers.energy_export_wh: required",
    ]:
        assert any(fragment in problem for problem in problems), fragment
    with pytest.raises(MeterConfigError) as caught:
        parse_register_map(document)
    assert str(caught.value).count("\n") == len(problems)


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(MeterConfigError, match="cannot read"):
        load_register_map(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[device\n")
    with pytest.raises(MeterConfigError, match="not valid TOML"):
        load_register_map(bad)
    with pytest.raises(MeterConfigError, match="neither a map file nor a shipped map"):
        load_map("no-such-meter")


def test_map_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "meter.toml"
    path.write_text(
        '[device]\nname = "m"\n'
        '[registers.power_w]\naddress = 0x10\ntype = "float32"\nunit = "kW"\n'
        '[registers.energy_import_wh]\naddress = 0x20\ntype = "uint32"\nunit = "Wh"\n'
        '[registers.energy_export_wh]\naddress = 0x22\ntype = "uint32"\nunit = "Wh"\n'
    )
    assert load_map(path).registers["power_w"].factor == 1000
    assert validate_register_map(tomllib.loads(path.read_text())) == []


def measure(register_map_name: str, registers: dict[int, int], kind: RegisterType) -> Any:
    tables = {kind: registers}
    device = RegisterImage(tables.get(RegisterType.HOLDING, {}), tables.get(RegisterType.INPUT, {}))
    return asyncio.run(RegisterMapSource(device, load_map(register_map_name)).measure())


def test_sdm630_float_dump() -> None:
    # input registers, float32, big word order
    registers = {
        0x0034: 0x44BB, 0x0035: 0x8800,  # total system power 1500.25 W (importing)
        0x0048: 0x4640, 0x0049: 0xE600,  # total import 12345.5 kWh
        0x004A: 0x4429, 0x004B: 0x9000,  # total export 678.25 kWh
    }  # fmt: skip
    measurement = measure("sdm630", registers, RegisterType.INPUT)
    assert measurement.power_w == -1500.25
    assert measurement.energy_import.energy_wh == 12_345_500
    assert measurement.energy_export.energy_wh == 678_250


def test_em24_little_endian_dump() -> None:
    # holding registers, int32 least significant word first
    registers = {
        0x0028: 0xA460, 0x0029: 0xFFFF,  # W sys = -23456 -> -2345.6 W (exporting)
        0x0034: 0xE240, 0x0035: 0x0001,  # kWh (+) TOT = 123456 -> 12345.6 kWh
        0x004E: 0x1ED2, 0x004F: 0x0000,  # kWh (-) TOT = 7890 -> 789.0 kWh
    }  # fmt: skip
    measurement = measure("em24", registers, RegisterType.HOLDING)
    assert measurement.power_w == pytest.approx(2345.6)
    assert measurement.energy_import.energy_wh == 12_345_600
    assert measurement.energy_export.energy_wh == 789_000


def test_negative_energy_is_a_decode_error() -> None:
    registers = {0x0028: 0, 0x0029: 0, 0x0034: 0xFFFF, 0x0035: 0xFFFF, 0x004E: 0, 0x004F: 0}
    with pytest.raises(DecodeError, match="negative"):
        measure("em24", registers, RegisterType.HOLDING)


@given(register_lists(min_size=4, max_size=4))
def test_map_decoding_never_crashes(words: list[int]) -> None:
    for name in builtin_map_names():
        for spec in load_map(name).registers.values():
            try:
                if spec.quantity.endswith("_w"):
                    spec.decode_power(words[: spec.count])
                else:
                    spec.decode_counter(words[: spec.count])
            except DecodeError:
                pass

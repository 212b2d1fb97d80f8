"""The gridex-meter command line: parsing (the real-TCP runs are in tests/integration)."""

from __future__ import annotations

import argparse

import pytest

from meter_adapter.cli import build_parser
from meter_adapter.commands._args import host_port


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10.0.0.5:1502", ("10.0.0.5", 1502)),
        ("meter.local", ("meter.local", 502)),
        ("[::1]:5020", ("::1", 5020)),
        ("[fe80::1]", ("fe80::1", 502)),
    ],
)
def test_host_port(text: str, expected: tuple[str, int]) -> None:
    assert host_port(text) == expected


@pytest.mark.parametrize("text", [":502", "host:port", "host:0", "host:70000", "[::1]x"])
def test_bad_host_port(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        host_port(text)


def test_subcommands_are_wired() -> None:
    parser = build_parser()
    read = parser.parse_args(["read", "--modbus", "127.0.0.1:1502", "--unit", "3", "--map", "em24"])
    assert read.modbus == ("127.0.0.1", 1502)
    assert read.unit == 3
    assert read.map == "em24"
    simulate = parser.parse_args(
        [
            "simulate",
            "--port",
            "0",
            "--kwp",
            "7.5",
            "--seed",
            "4",
            "--start",
            "2024-06-21T06:00:00+00:00",
            "--speed",
            "60",
        ]
    )
    assert simulate.kwp == 7.5
    assert simulate.seed == 4
    assert simulate.speed == 60
    assert callable(read.func)
    assert callable(simulate.func)
    with pytest.raises(SystemExit):
        parser.parse_args(["simulate", "--port", "0", "--start", "2024-06-21T06:00:00"])


def test_storage_flags_become_the_agents_storage_settings() -> None:
    from meter_adapter.agent import StorageConfig
    from meter_adapter.commands.run import _configs

    parser = build_parser()
    base = ["run", "--modbus", "127.0.0.1:1502", "--engine", "127.0.0.1:50051", "--key", "k"]
    args = parser.parse_args(
        [*base, "--agent", "--storage-cycling-price", "20000", "--storage-reserve-percent", "20",
         "--storage-end-percent", "50", "--storage-drift-wh", "250",
         "--storage-charge-efficiency", "0.9"]
    )  # fmt: skip
    agent, _ = _configs(args)
    assert agent.storage == StorageConfig(
        cycling_price=20_000,
        reserve_percent=20.0,
        end_soc_percent=50.0,
        charge_efficiency=0.9,
        drift_wh=250,
    )
    assert agent.sell_min_price is None  # storage alone is a valid agent
    plain, _ = _configs(parser.parse_args([*base, "--agent", "--sell-min-price", "1"]))
    assert plain.storage is None
    bad = parser.parse_args([*base, "--agent", "--storage-cycling-price", "1",
                             "--storage-reserve-percent", "120"])  # fmt: skip
    with pytest.raises(ValueError, match=r"storage\.reserve_percent"):
        _configs(bad)


def test_simulate_battery_flags_build_the_battery() -> None:
    from datetime import UTC, datetime

    from meter_adapter.commands.simulate import _battery
    from meter_adapter.errors import MeterConfigError

    parser = build_parser()
    base = ["simulate", "--port", "0"]
    start = datetime(2024, 6, 21, tzinfo=UTC)
    assert _battery(parser.parse_args(base), start) is None
    args = parser.parse_args([*base, "--battery-kwh", "13.5", "--battery-kw", "4.6"])
    battery = _battery(args, start)
    assert (battery.spec.capacity_wh, battery.spec.max_charge_w) == (13_500, 4_600)
    assert battery.state.soc_wh == 6_750  # 50 % by default
    low = parser.parse_args([*base, "--battery-kwh", "10", "--battery-soc-percent", "5"])
    with pytest.raises(MeterConfigError, match="--battery-soc-percent"):
        _battery(low, start)

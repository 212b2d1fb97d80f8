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

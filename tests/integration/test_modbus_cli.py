"""``gridex-meter simulate`` in its own process, read with ``gridex-meter read`` over TCP."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from meter_adapter.cli import main

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def simulator_port() -> Iterator[int]:
    process = subprocess.Popen(
        [sys.executable, "-m", "meter_adapter.cli", "simulate", "--port", "0", "--seed", "3",
         "--kwp", "6", "--start", "2024-06-21T10:00:00+00:00", "--initial-import-wh", "4000"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"127\.0\.0\.1:(\d+)", line)
        assert match, f"simulator did not start: {line!r}"
        yield int(match.group(1))
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_read_prints_the_decoded_reading(
    simulator_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["read", "--modbus", f"127.0.0.1:{simulator_port}", "--meter-id", "home"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["protocol"] == "sunspec"
    assert [m["id"] for m in result["models"]] == [1, 103, 203]
    assert result["common"]["serial_number"] == "SIM-3"
    assert result["meter_id"] == "home"
    assert result["energy_import_wh"] >= 4000
    assert result["production_w"] > 0  # mid-morning in June
    assert {"power_w", "energy_export_wh", "production_wh", "timestamp"} <= set(result)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--unit", "9"], "wrong unit id"),
        (["--map", "sdm630"], "illegal data address"),
    ],
)
def test_read_explains_what_went_wrong(
    simulator_port: int, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    assert main(["read", "--modbus", f"127.0.0.1:{simulator_port}", *extra]) == 1
    assert message in capsys.readouterr().err


def test_read_of_nothing_fails_cleanly(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["read", "--modbus", "127.0.0.1:1", "--timeout", "1"]) == 1
    assert "cannot connect" in capsys.readouterr().err

"""The Reading value: validation and its JSON and protobuf-facing forms."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from meter_adapter.errors import DecodeError
from meter_adapter.reading import Reading

WHEN = datetime(2024, 1, 1, tzinfo=UTC)


def reading(**changes: object) -> Reading:
    fields: dict[str, object] = {
        "meter_id": "m",
        "sequence": 1,
        "timestamp": WHEN,
        "energy_import_wh": 10,
        "energy_export_wh": 20,
        "power_w": -300,
    }
    fields.update(changes)
    return Reading(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "changes",
    [
        {"meter_id": ""},
        {"sequence": 0},
        {"timestamp": datetime(2024, 1, 1)},
        {"energy_import_wh": -1},
        {"production_wh": -5},
    ],
)
def test_invalid_readings(changes: dict[str, object]) -> None:
    with pytest.raises(DecodeError):
        reading(**changes)


def test_timestamp_ms_and_json() -> None:
    local = WHEN.astimezone(timezone(timedelta(hours=2)))
    value = reading(timestamp=local + timedelta(microseconds=1500))
    assert value.timestamp_ms == 1_704_067_200_001
    assert value.to_json_dict()["power_w"] == -300
    assert value.to_json_dict()["production_wh"] is None

"""Building SunSpec register maps: the inverse of :mod:`meter_adapter.sunspec.decode`.

Used by the simulator to serve a SunSpec device. Points not given a value are
filled with their "not implemented" sentinel, as a real device does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from meter_adapter.datatypes import encode, encode_string, not_implemented
from meter_adapter.sunspec.models import END_MODEL_ID, SUNS_MARKER, ModelLayout

__all__ = ["encode_model", "encode_sunspec_map"]


def encode_model(
    layout: ModelLayout, model_id: int, values: Mapping[str, int | float | str]
) -> list[int]:
    """A model's registers, header included.

    Args:
        layout: The model's points.
        model_id: The id to announce (e.g. 103 for the three-phase inverter).
        values: Raw point values by name (already divided by their scale
            factor; accumulators wrap); strings for string points.

    Raises:
        KeyError: A name that is not a point of ``layout``.
        ValueError: A value that does not fit its point.
    """
    unknown = set(values) - {point.name for point in layout.points}
    if unknown:
        raise KeyError(f"not points of {layout.name}: {sorted(unknown)}")
    registers = [model_id, layout.length]
    for point in layout.points:
        value = values.get(point.name)
        if point.data_type is None:
            registers.extend(encode_string(str(value or ""), point.size))
        elif value is None:
            registers.extend(not_implemented(point.data_type))
        elif isinstance(value, str):
            raise ValueError(f"{point.name} is numeric, got {value!r}")
        else:
            registers.extend(encode(value, point.data_type))
    return registers


def encode_sunspec_map(models: Iterable[list[int]]) -> list[int]:
    """The ``SunS`` marker, the given models back to back, and the end marker."""
    registers = list(SUNS_MARKER)
    for model in models:
        registers.extend(model)
    registers.extend([END_MODEL_ID, 0])
    return registers

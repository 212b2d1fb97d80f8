"""Register maps shipped with the adapter for common non-SunSpec meters.

Each is a TOML file in this package (see :mod:`meter_adapter.register_map`
for the format), written from the manufacturer's public register documentation.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from meter_adapter.errors import MeterConfigError
from meter_adapter.register_map import RegisterMap, load_register_map

__all__ = ["builtin_map_names", "load_map"]


def builtin_map_names() -> tuple[str, ...]:
    """Names of the shipped maps (``sdm630``, ``em24``, ...), sorted."""
    files = resources.files(__name__).iterdir()
    return tuple(sorted(f.name.removesuffix(".toml") for f in files if f.name.endswith(".toml")))


def load_map(name_or_path: str | Path) -> RegisterMap:
    """Load a shipped map by name, or any map file by path.

    Raises:
        MeterConfigError: Neither a shipped map nor a readable, valid map file.
    """
    text = str(name_or_path)
    if text in builtin_map_names():
        with resources.as_file(resources.files(__name__) / f"{text}.toml") as path:
            return load_register_map(path)
    if not Path(text).is_file():
        names = ", ".join(builtin_map_names())
        raise MeterConfigError(f"{text!r} is neither a map file nor a shipped map ({names})")
    return load_register_map(text)

"""The physical network: feeders, linear sensitivities and AC validation.

Typical use::

    from grid import load_feeder, linearise, check_schedule

    feeder = load_feeder("cigre-lv")
    sens = linearise(feeder, mode="ac")      # flows and voltages per MW injected
    report = check_schedule(feeder, injection_mw)
"""

from typing import TYPE_CHECKING, Any

from grid.errors import (
    FeederFileError,
    FeederNotFoundError,
    GridError,
    InjectionShapeError,
    PowerFlowError,
    UnsupportedFeederError,
)

if TYPE_CHECKING:  # imported on first use: numpy, scipy and pandapower take a while
    from grid.feeders import BUILTIN_FEEDERS, load_feeder
    from grid.model import Branch, Bus, ExtGrid, Feeder, FloatArray
    from grid.sensitivities import Mode, Sensitivities, linearise
    from grid.validation import AcReport, Violation, check_schedule

_LAZY = {
    "BUILTIN_FEEDERS": "grid.feeders",
    "load_feeder": "grid.feeders",
    "Branch": "grid.model",
    "Bus": "grid.model",
    "ExtGrid": "grid.model",
    "Feeder": "grid.model",
    "FloatArray": "grid.model",
    "Mode": "grid.sensitivities",
    "Sensitivities": "grid.sensitivities",
    "linearise": "grid.sensitivities",
    "AcReport": "grid.validation",
    "Violation": "grid.validation",
    "check_schedule": "grid.validation",
}

__all__ = [
    "BUILTIN_FEEDERS",
    "AcReport",
    "Branch",
    "Bus",
    "ExtGrid",
    "Feeder",
    "FeederFileError",
    "FeederNotFoundError",
    "FloatArray",
    "GridError",
    "InjectionShapeError",
    "Mode",
    "PowerFlowError",
    "Sensitivities",
    "UnsupportedFeederError",
    "Violation",
    "check_schedule",
    "linearise",
    "load_feeder",
]


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use (``gridex --help`` needs none of them)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'grid' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value

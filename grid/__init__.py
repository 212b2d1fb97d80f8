"""The physical network: feeders, linear sensitivities and AC validation.

Typical use::

    from grid import load_feeder, linearise, check_schedule

    feeder = load_feeder("cigre-lv")
    sens = linearise(feeder, mode="ac")      # flows and voltages per MW injected
    report = check_schedule(feeder, injection_mw)
"""

from grid.errors import (
    FeederFileError,
    FeederNotFoundError,
    GridError,
    InjectionShapeError,
    PowerFlowError,
    UnsupportedFeederError,
)
from grid.feeders import BUILTIN_FEEDERS, load_feeder
from grid.model import Branch, Bus, ExtGrid, Feeder, FloatArray
from grid.sensitivities import Mode, Sensitivities, linearise
from grid.validation import AcReport, Violation, check_schedule

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

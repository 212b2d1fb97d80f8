"""A cleared schedule's AC power flow as journal data, and back.

The engine's clearing runs the AC power flow of the schedule it publishes
(:attr:`~market.clearing.result.ClearingResult.flows`); the engine journals
it beside the result (the ``flows`` key of the ``cleared`` entry) so the
report reads voltages and loadings instead of running the power flow again.
The arrays follow the feeder's ``buses``, ``lines``, ``trafos`` and
``branches`` order; a NaN (an out-of-service bus) is written as ``null``.
Floats are written at full precision, so a flow read back is the flow that
was computed, bit for bit.

Limits are not journaled: they depend on the tolerance a reader applies,
and :func:`flows_from_body` checks them against the feeder with
:func:`grid.check_schedule`'s rule.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from grid import AcReport, Feeder, FloatArray
from grid.validation import limit_report

__all__ = ["flows_from_body", "flows_to_body"]

#: The per-element arrays of an :class:`~grid.AcReport` that are journaled.
_ARRAYS = ("vm_pu", "line_loading_percent", "trafo_loading_percent", "branch_p_mw")
#: Its scalar figures.
_SCALARS = ("losses_mw", "ext_grid_p_mw")


def _floats(values: FloatArray) -> list[float | None]:
    return [None if math.isnan(v) else v for v in values.tolist()]


def flows_to_body(report: AcReport) -> dict[str, Any]:
    """The journal form of ``report``: plain lists and floats."""
    out: dict[str, Any] = {name: _floats(getattr(report, name)) for name in _ARRAYS}
    out.update({name: float(getattr(report, name)) for name in _SCALARS})
    return out


def _array(body: Mapping[str, Any], name: str, size: int) -> FloatArray:
    raw = body[name]
    if not isinstance(raw, list) or len(raw) != size:
        raise ValueError(f"flows.{name}: expected {size} values")
    return np.array([np.nan if v is None else float(v) for v in raw], dtype=np.float64)


def flows_from_body(feeder: Feeder, body: Mapping[str, Any], *, tolerance: float) -> AcReport:
    """The :class:`~grid.AcReport` journaled in ``body``, its limits checked on ``feeder``.

    A limit counts as violated exactly as :func:`grid.check_schedule` counts it
    with the same ``tolerance``.

    Raises:
        ValueError: ``body`` does not hold a flow of ``feeder`` (wrong sizes,
            missing or non-numeric fields).
    """
    vm = _array(body, "vm_pu", feeder.n_bus)
    line = _array(body, "line_loading_percent", len(feeder.lines))
    trafo = _array(body, "trafo_loading_percent", len(feeder.trafos))
    branch_p = _array(body, "branch_p_mw", len(feeder.branches))
    losses, ext_p = (float(body[name]) for name in _SCALARS)
    return limit_report(
        feeder,
        line_loading_percent=line,
        trafo_loading_percent=trafo,
        vm_pu=vm,
        losses_mw=losses,
        ext_grid_p_mw=ext_p,
        branch_p_mw=branch_p,
        tolerance=tolerance,
    )

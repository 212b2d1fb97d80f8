"""AC validation of a schedule: the fast AC power flow and its limit check."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import numpy.typing as npt

from grid.model import Feeder, FloatArray
from grid.powerflow import AcFlow, solve_ac

__all__ = ["AcReport", "Violation", "check_schedule", "limit_report"]


@dataclass(frozen=True, slots=True)
class Violation:
    """One element outside its limit in an AC power flow.

    Attributes:
        element: ``"line"``, ``"trafo"`` or ``"bus"``.
        index: pandapower index of the element.
        quantity: ``"loading_percent"`` or ``"vm_pu"``.
        value: the power flow's value.
        limit: the limit it breaks (max loading, or the violated voltage bound).
    """

    element: Literal["line", "trafo", "bus"]
    index: int
    name: str
    quantity: Literal["loading_percent", "vm_pu"]
    value: float
    limit: float

    def __str__(self) -> str:
        return (
            f"{self.element} {self.index} ({self.name}): {self.quantity} "
            f"{self.value:.4g} beyond limit {self.limit:.4g}"
        )


@dataclass(frozen=True)
class AcReport:
    """Result of an AC power flow for a schedule.

    Per-element arrays follow ``feeder.lines``, ``feeder.trafos`` and
    ``feeder.buses``. ``losses_mw`` is the active power lost in lines and
    transformers. ``ok`` is true when nothing is violated. ``ext_grid_p_mw``
    is the active power the external grid injects (positive: the feeder
    imports). ``branch_p_mw`` is the from-side active flow per branch in
    ``feeder.branches`` order (a line's from bus, a transformer's HV side),
    the quantity :class:`grid.Sensitivities` linearises. ``flow`` is the
    converged power flow itself when the report is a fresh one (not one read
    back from a journal), which :func:`grid.linearise` can start from.
    """

    max_line_loading_percent: float
    max_trafo_loading_percent: float
    vm_min_pu: float
    vm_max_pu: float
    losses_mw: float
    ext_grid_p_mw: float
    line_loading_percent: FloatArray
    trafo_loading_percent: FloatArray
    vm_pu: FloatArray
    violations: tuple[Violation, ...]
    branch_p_mw: FloatArray
    flow: AcFlow | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        """Whether the schedule respects every limit."""
        return not self.violations


def check_schedule(
    feeder: Feeder, injection_mw: npt.ArrayLike, *, tolerance: float = 0.0
) -> AcReport:
    """Run an AC power flow for base load plus ``injection_mw`` and check every limit.

    Args:
        feeder: the feeder.
        injection_mw: market injection per bus, MW, positive into the grid.
        tolerance: slack allowed before a value counts as a violation, in
            percentage points of loading and, divided by 100, in p.u. of
            voltage (``tolerance=0.5`` allows 100.5 % and 0.895 p.u.).

    Raises:
        InjectionShapeError: ``injection_mw`` has the wrong shape.
        PowerFlowError: the AC power flow did not converge.
    """
    inj = feeder.check_injection(injection_mw)
    with feeder.lock():
        flow = solve_ac(feeder, inj)
    n_lines = len(feeder.lines)
    line_loading = flow.loading_percent[:n_lines]
    trafo_loading = flow.loading_percent[n_lines:]
    vm = flow.vm_pu
    losses = flow.losses_mw
    ext_p = flow.ext_grid_p_mw
    branch_p = np.asarray(flow.s_from_mva.real, dtype=np.float64)

    report = limit_report(
        feeder,
        line_loading_percent=line_loading,
        trafo_loading_percent=trafo_loading,
        vm_pu=vm,
        losses_mw=losses,
        ext_grid_p_mw=ext_p,
        branch_p_mw=branch_p,
        tolerance=tolerance,
    )
    return replace(report, flow=flow)


def limit_report(
    feeder: Feeder,
    *,
    line_loading_percent: FloatArray,
    trafo_loading_percent: FloatArray,
    vm_pu: FloatArray,
    losses_mw: float,
    ext_grid_p_mw: float,
    branch_p_mw: FloatArray,
    tolerance: float = 0.0,
) -> AcReport:
    """The :class:`AcReport` of a power flow's results, every limit of ``feeder`` checked.

    The one rule for what counts as a violation (:func:`check_schedule`'s
    ``tolerance``), used for fresh flows and for flows read back from a journal.
    """
    line_loading, trafo_loading, vm = line_loading_percent, trafo_loading_percent, vm_pu
    limits = feeder.limits
    violations: list[Violation] = []
    loading = np.r_[line_loading, trafo_loading]
    over = limits.branch_limited & (loading > limits.max_loading_percent + tolerance)
    branches = feeder.branches
    for i in np.flatnonzero(over):
        branch = branches[i]
        violations.append(
            Violation(
                branch.kind,
                branch.index,
                branch.name,
                "loading_percent",
                float(loading[i]),
                branch.max_loading_percent,
            )
        )
    low = vm < limits.vm_min_pu - tolerance / 100.0  # NaN (out of service) is neither
    high = vm > limits.vm_max_pu + tolerance / 100.0
    for k in np.flatnonzero(low | high):
        bus = feeder.buses[k]
        bound = bus.vm_min_pu if low[k] else bus.vm_max_pu
        violations.append(Violation("bus", bus.index, bus.name, "vm_pu", float(vm[k]), bound))
    return AcReport(
        max_line_loading_percent=float(np.nanmax(np.r_[line_loading, 0.0])),
        max_trafo_loading_percent=float(np.nanmax(np.r_[trafo_loading, 0.0])),
        vm_min_pu=float(np.nanmin(vm)),
        vm_max_pu=float(np.nanmax(vm)),
        losses_mw=losses_mw,
        ext_grid_p_mw=ext_grid_p_mw,
        line_loading_percent=line_loading,
        trafo_loading_percent=trafo_loading,
        vm_pu=vm,
        violations=tuple(violations),
        branch_p_mw=branch_p_mw,
    )

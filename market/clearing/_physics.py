"""The AC power flow of a schedule, as the clearing reads it: limits missed and the grid exchange.

Every power flow goes through :func:`grid.check_schedule`, so the grid
package decides how it is computed. A limit counts as *missed* by the
market only where the schedule takes it beyond ``max(limit, base value)``
by more than the tolerance: a limit the feeder already breaks without any
market is the feeder's own, and the market may not make it worse.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from grid import AcReport, Feeder, FloatArray, PowerFlowError, check_schedule
from market.clearing._cache import base_report
from market.clearing.books import physical_grid_net_wh
from market.clearing.result import AcCheck, rounded

__all__ = ["AcState", "Miss", "evaluate"]

logger = logging.getLogger(__name__)

_CONSTRAINT_OF = {"line": "lines", "trafo": "trafos", "bus": "voltage"}


@dataclass(frozen=True, slots=True)
class Miss:
    """One limit the schedule breaks in the AC power flow.

    Attributes:
        kind: ``"line"``, ``"trafo"`` or ``"bus"``.
        position: row in ``feeder.branches`` (branches) or ``feeder.buses``.
        value: loading in percent, or voltage in p.u.
        limit: the limit it breaks (loading limit, or the violated voltage bound).
        label: human-readable text.
    """

    kind: str
    position: int
    value: float
    limit: float
    label: str

    @property
    def constraint(self) -> str:
        """The clearing constraint (``lines``, ``trafos``, ``voltage``) that covers it."""
        return _CONSTRAINT_OF[self.kind]


@dataclass(frozen=True)
class AcState:
    """The AC power flow of one schedule.

    Attributes:
        report: the power flow, or ``None`` when it did not converge.
        error: why it did not converge (empty otherwise).
        misses: limits the market breaks.
        grid_net_wh: the external grid's energy change against the base case, Wh.
        losses_change_wh: the losses' change against the base case, Wh.
    """

    report: AcReport | None
    error: str
    misses: tuple[Miss, ...]
    grid_net_wh: float
    losses_change_wh: float

    @property
    def converged(self) -> bool:
        """Whether the power flow converged."""
        return self.report is not None

    @property
    def feasible(self) -> bool:
        """Converged and no limit missed."""
        return self.report is not None and not self.misses


def _misses(feeder: Feeder, report: AcReport, base: AcReport, tolerance: float) -> list[Miss]:
    out: list[Miss] = []
    limits = feeder.limits
    loading = np.r_[report.line_loading_percent, report.trafo_loading_percent]
    base_loading = np.r_[base.line_loading_percent, base.trafo_loading_percent]
    # a limit the base case already breaks is held where the base case has it
    allowed = np.maximum(limits.max_loading_percent, np.nan_to_num(base_loading))
    over = limits.branch_limited & np.isfinite(loading) & (loading > allowed + tolerance)
    branches = feeder.branches
    for i in np.flatnonzero(over):
        br = branches[i]
        out.append(
            Miss(
                br.kind,
                int(i),
                float(loading[i]),
                float(allowed[i]),
                f"{br.label} ({br.name}): loading_percent {loading[i]:.4g} "
                f"beyond limit {allowed[i]:.4g}",
            )
        )
    tol_pu = tolerance / 100.0
    v, v0 = report.vm_pu, base.vm_pu
    known = np.isfinite(v0)
    hi = np.where(known, np.maximum(limits.vm_max_pu, v0), limits.vm_max_pu)
    lo = np.where(known, np.minimum(limits.vm_min_pu, v0), limits.vm_min_pu)
    above, below = v > hi + tol_pu, v < lo - tol_pu  # NaN (out of service) is neither
    for k in np.flatnonzero(above | below):
        bus = feeder.buses[k]
        for limit, beyond in ((hi[k], above[k]), (lo[k], below[k])):
            if beyond:
                out.append(
                    Miss(
                        "bus",
                        int(k),
                        float(v[k]),
                        float(limit),
                        f"bus {bus.index} ({bus.name}): vm_pu {v[k]:.4g} beyond limit {limit:.4g}",
                    )
                )
    return out


def evaluate(
    feeder: Feeder, injection_mw: FloatArray, *, tolerance: float, interval_s: int
) -> AcState:
    """AC power flow of base load plus ``injection_mw`` (MW per bus), read for the market.

    Raises:
        PowerFlowError: the *base case* does not converge (the feeder itself is ill-posed).
    """
    base = base_report(feeder)
    try:
        report = check_schedule(feeder, injection_mw)
    except PowerFlowError as exc:
        logger.info("AC power flow of the schedule: %s", exc)
        return AcState(None, str(exc), (), 0.0, 0.0)
    net = physical_grid_net_wh(report.ext_grid_p_mw, base.ext_grid_p_mw, interval_s)
    dloss = physical_grid_net_wh(report.losses_mw, base.losses_mw, interval_s)
    return AcState(report, "", tuple(_misses(feeder, report, base, tolerance)), net, dloss)


def ac_check_of(
    state: AcState,
    *,
    tolerance: float,
    agreed: bool | None = None,
    flow_mismatch: float = 0.0,
    vm_mismatch_pu: float = 0.0,
    slack_mismatch_wh: float = 0.0,
) -> AcCheck:
    """The serialisable :class:`~market.clearing.result.AcCheck` of ``state``."""
    report = state.report
    if report is None:
        return AcCheck(
            passed=False,
            converged=False,
            tolerance=rounded(tolerance),
            max_line_loading_percent=0.0,
            max_trafo_loading_percent=0.0,
            vm_min_pu=0.0,
            vm_max_pu=0.0,
            losses_mw=0.0,
            violations=(f"AC power flow did not converge: {state.error}",),
            agreed=agreed,
        )
    return AcCheck(
        passed=state.feasible,
        converged=True,
        tolerance=rounded(tolerance),
        max_line_loading_percent=rounded(report.max_line_loading_percent),
        max_trafo_loading_percent=rounded(report.max_trafo_loading_percent),
        vm_min_pu=rounded(report.vm_min_pu),
        vm_max_pu=rounded(report.vm_max_pu),
        losses_mw=rounded(report.losses_mw),
        violations=tuple(m.label for m in state.misses),
        ext_grid_change_wh=rounded(state.grid_net_wh),
        losses_change_wh=rounded(state.losses_change_wh),
        agreed=agreed,
        flow_mismatch=rounded(flow_mismatch),
        vm_mismatch_pu=rounded(vm_mismatch_pu),
        slack_mismatch_wh=rounded(slack_mismatch_wh),
    )

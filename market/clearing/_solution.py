"""What a solver hands back for a :class:`~market.clearing._problem.ClearingProblem`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from grid import FloatArray
from market.clearing.status import Status

__all__ = ["LpSolution"]


@dataclass(frozen=True)
class LpSolution:
    """Primal and dual values of a clearing LP, in the LP's units.

    Attributes:
        status: termination and solution status.
        x_kwh: fill per order, kWh.
        m_kwh: net market injection per node, kWh.
        g_in_kwh: import from the external grid, kWh.
        g_out_kwh: export to the external grid, kWh.
        balance_dual: λ, base units per kWh (already multiplied by the price scale).
        row_dual: dual per network row, base units per row unit.
        welfare: minus the objective, base units (net of the grid-usage fee).
        iterations: simplex (or IPM) iterations.
        build_s: seconds spent building the solver's model.
        solve_s: seconds spent in the solver call, wall clock.
        solver_s: the solver's own run time, seconds.
        n_nonzeros: constraint-matrix nonzeros.
    """

    status: Status
    x_kwh: FloatArray
    m_kwh: FloatArray
    g_in_kwh: float
    g_out_kwh: float
    balance_dual: float
    row_dual: FloatArray
    welfare: float
    iterations: int
    build_s: float
    solve_s: float
    solver_s: float
    n_nonzeros: int

    @classmethod
    def empty(
        cls, status: Status, n_order: int, n_node: int, n_row: int, **timing: float
    ) -> LpSolution:
        """A solution without values (the solver found none)."""
        return cls(
            status=status,
            x_kwh=np.zeros(n_order),
            m_kwh=np.zeros(n_node),
            g_in_kwh=0.0,
            g_out_kwh=0.0,
            balance_dual=0.0,
            row_dual=np.zeros(n_row),
            welfare=0.0,
            iterations=0,
            build_s=timing.get("build_s", 0.0),
            solve_s=timing.get("solve_s", 0.0),
            solver_s=timing.get("solver_s", 0.0),
            n_nonzeros=0,
        )

"""Dispatch a clearing LP to the fast (highspy) or the reference (pyomo) solver."""

from __future__ import annotations

from market.clearing._problem import ClearingProblem
from market.clearing._solution import LpSolution
from market.clearing.options import SolverName

__all__ = ["solve"]


def solve(
    problem: ClearingProblem, *, solver: SolverName, time_limit_s: float | None
) -> LpSolution:
    """Solve ``problem`` with the named solver path.

    Raises:
        SolverError: the solver failed.
    """
    if solver == "pyomo":
        from market.clearing._pyomo import solve_pyomo

        return solve_pyomo(problem, time_limit_s=time_limit_s)
    from market.clearing._highs import solve_fast

    return solve_fast(problem, time_limit_s=time_limit_s)

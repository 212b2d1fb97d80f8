"""Solver outcome as a value: the termination condition kept apart from the solution status.

Follows linopy: *why* the solver stopped (:class:`Termination`) says nothing
by itself about *what* it left behind (:class:`SolutionStatus`) — a time
limit may leave a feasible point or none.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["SolutionStatus", "Status", "Termination"]


class Termination(StrEnum):
    """Why the solver stopped."""

    OPTIMAL = "optimal"
    INFEASIBLE = "infeasible"
    UNBOUNDED = "unbounded"
    TIME_LIMIT = "time_limit"
    ITERATION_LIMIT = "iteration_limit"
    ERROR = "error"
    UNKNOWN = "unknown"
    #: the LP solved, but the AC power flow of its schedule breaks a limit
    #: even after the tightening rounds: not cleared
    AC_INFEASIBLE = "ac_infeasible"
    #: the LP solved, but the AC power flow of its schedule does not converge
    AC_NOT_CONVERGED = "ac_not_converged"


class SolutionStatus(StrEnum):
    """What the solver left behind."""

    OPTIMAL = "optimal"
    FEASIBLE = "feasible"
    INFEASIBLE = "infeasible"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class Status:
    """Termination condition and solution status of one clearing."""

    termination: Termination
    solution: SolutionStatus

    @property
    def ok(self) -> bool:
        """Whether the clearing found an optimal solution."""
        return self.termination == Termination.OPTIMAL and self.solution == SolutionStatus.OPTIMAL

    @property
    def ac_failed(self) -> bool:
        """Whether the LP solved but its schedule failed the AC power flow (not cleared)."""
        return self.termination in (Termination.AC_INFEASIBLE, Termination.AC_NOT_CONVERGED)

    @property
    def has_solution(self) -> bool:
        """Whether there are primal values to read (optimal or merely feasible)."""
        return self.solution in (SolutionStatus.OPTIMAL, SolutionStatus.FEASIBLE)

    def __str__(self) -> str:
        return f"{self.termination.value}/{self.solution.value}"

    @classmethod
    def optimal(cls) -> Status:
        """The status of an optimal solve."""
        return cls(Termination.OPTIMAL, SolutionStatus.OPTIMAL)

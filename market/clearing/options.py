"""Options of a clearing run: one frozen value, validated on construction."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from market.errors import ConfigError

__all__ = ["ALL_CONSTRAINTS", "ClearingOptions", "Constraint", "Mechanism", "SolverName"]

Mechanism = Literal["uniform", "nodal"]
SolverName = Literal["fast", "pyomo"]
Constraint = Literal["lines", "trafos", "voltage"]

#: Every grid constraint the ``nodal`` mechanism knows.
ALL_CONSTRAINTS: frozenset[str] = frozenset({"lines", "trafos", "voltage"})
#: Stands for "not given": every constraint with ``ac``, DC_CONSTRAINTS with ``dc``.
_DEFAULT: frozenset[str] = frozenset({"<default>"})
#: What ``dc`` sensitivities can enforce (no voltages): their default.
DC_CONSTRAINTS: frozenset[str] = frozenset({"lines", "trafos"})


def _constraint_set(value: Iterable[str] | str) -> frozenset[str]:
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    return frozenset(v.strip() for v in value)


@dataclass(frozen=True)
class ClearingOptions:
    """How to clear an interval.

    Attributes:
        sensitivities: ``"ac"`` (Jacobian of the AC power flow, with marginal
            losses) or ``"dc"`` (lossless DC power flow) linearisation of the
            grid for the ``nodal`` mechanism.
        constraints: which limits the ``nodal`` LP enforces, any of
            ``lines``, ``trafos``, ``voltage`` (a set, or a comma-separated
            string); default all with ``ac``, ``lines,trafos`` with ``dc``
            (``voltage`` with ``dc`` is a :class:`ConfigError`).
        solver: ``"fast"`` (the LP built as sparse arrays and passed to
            HiGHS in one call) or ``"pyomo"`` (the readable reference model,
            solved by HiGHS through pyomo).
        max_rounds: most successive-linearisation rounds of the ``nodal``
            mechanism (``ac`` sensitivities): after each LP solve the AC
            power flow of the rounded schedule is compared with the LP's
            prediction; until they agree (``flow_tolerance``,
            ``voltage_tolerance_pu``, ``slack_tolerance_wh``) and no limit is
            broken, the grid is re-linearised there and the LP solved again.
        tighten_rounds: further solves after ``max_rounds`` when the
            schedule still breaks a limit: each tightens the rows that
            missed by the observed error (see :mod:`market.clearing._rounds`).
        ac_check: run the AC power flow at all. Without it nothing is checked
            physically and the books are the LP's (a study option; the
            engine always checks).
        ac_tolerance: numerical allowance before the AC power flow counts a
            violation, in percentage points of loading and, divided by 100,
            in p.u. of voltage (as :func:`grid.check_schedule`); default
            0.01 (0.01 % loading, 1e-4 p.u.).
        flow_tolerance: agreement of predicted and AC branch flows, as a
            fraction of the branch's limit (default 0.5 %).
        voltage_tolerance_pu: agreement of predicted and AC voltages, p.u.
        slack_tolerance_wh: agreement of the predicted and the AC external
            grid energy, Wh; the larger of this and 0.5 % of the traded
            energy applies.
        time_limit_s: wall-clock limit per LP solve in seconds (``None``: none).
        validate: check the orders with :func:`market.validation.validate_orders`
            first (the engine, which validated at entry, may skip it).
    """

    sensitivities: Literal["ac", "dc"] = "ac"
    constraints: frozenset[str] = field(default=_DEFAULT)
    solver: SolverName = "fast"
    max_rounds: int = 8
    tighten_rounds: int = 3
    ac_check: bool = True
    ac_tolerance: float = 0.01
    flow_tolerance: float = 0.005
    voltage_tolerance_pu: float = 0.0005
    slack_tolerance_wh: float = 20.0
    time_limit_s: float | None = None
    validate: bool = True

    def __post_init__(self) -> None:
        if self.constraints is _DEFAULT:
            default = ALL_CONSTRAINTS if self.sensitivities != "dc" else DC_CONSTRAINTS
            object.__setattr__(self, "constraints", default)
        object.__setattr__(self, "constraints", _constraint_set(self.constraints))
        problems = self.problems()
        if problems:
            raise ConfigError("; ".join(problems))

    def problems(self) -> list[str]:
        """Every rule the options break, each naming the field."""
        out: list[str] = []
        if self.sensitivities not in ("ac", "dc"):
            out.append(f"sensitivities: expected 'ac' or 'dc', got {self.sensitivities!r}")
        unknown = sorted(self.constraints - ALL_CONSTRAINTS)
        if unknown:
            out.append(
                f"constraints: unknown {', '.join(unknown)}; "
                f"expected any of {', '.join(sorted(ALL_CONSTRAINTS))}"
            )
        if self.solver not in ("fast", "pyomo"):
            out.append(f"solver: expected 'fast' or 'pyomo', got {self.solver!r}")
        if not isinstance(self.max_rounds, int) or self.max_rounds < 1:
            out.append(f"max_rounds: must be a positive integer, got {self.max_rounds!r}")
        if not isinstance(self.tighten_rounds, int) or self.tighten_rounds < 0:
            out.append(f"tighten_rounds: must be an integer >= 0, got {self.tighten_rounds!r}")
        for name in (
            "ac_tolerance",
            "flow_tolerance",
            "voltage_tolerance_pu",
            "slack_tolerance_wh",
        ):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                out.append(f"{name}: must be finite and >= 0, got {value!r}")
        if self.sensitivities == "dc" and "voltage" in self.constraints:
            out.append(
                "constraints: 'voltage' needs sensitivities='ac' (the dc model has no "
                "voltages); drop voltage or use ac"
            )
        if self.time_limit_s is not None and not self.time_limit_s > 0:
            out.append(f"time_limit_s: must be positive or None, got {self.time_limit_s!r}")
        return out
